"""Build the krew archive for `kubectl mltrl` and keep manifests/krew/mltrl.yaml's sha256
in step with it. The archive is reproducible (fixed times and owners), so the manifest's
checksum is checked in CI like the generated CRDs:

    .venv/bin/python tools/krew_archive.py [--out DIR] [--write-manifest]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import re
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KREW = REPO / "manifests" / "krew"
MANIFEST = KREW / "mltrl.yaml"
ARCHIVE = "kubectl-mltrl.tar.gz"
MEMBERS = (("kubectl-mltrl", KREW / "kubectl-mltrl", 0o755),)


def build() -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, path, mode in MEMBERS:
            data = path.read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 0
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    packed = io.BytesIO()
    with gzip.GzipFile(fileobj=packed, mode="wb", mtime=0) as archive:
        archive.write(raw.getvalue())
    return packed.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_manifest(digest: str) -> None:
    text = MANIFEST.read_text()
    MANIFEST.write_text(re.sub(r"sha256: [0-9a-f]{64}", f"sha256: {digest}", text))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="where to write the archive")
    parser.add_argument("--write-manifest", action="store_true")
    args = parser.parse_args(argv)
    data = build()
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / ARCHIVE).write_bytes(data)
    if args.write_manifest:
        write_manifest(sha256(data))
    print(sha256(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
