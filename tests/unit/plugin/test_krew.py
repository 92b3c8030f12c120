"""The krew manifest names an archive that holds the launcher, with its checksum fresh."""

from __future__ import annotations

import importlib.util
import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from types import ModuleType

import yaml

REPO = Path(__file__).resolve().parents[3]


def archive_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("krew_archive", REPO / "tools" /
                                                  "krew_archive.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_manifest_is_a_krew_plugin_with_a_fresh_checksum() -> None:
    manifest = yaml.safe_load((REPO / "manifests" / "krew" / "mltrl.yaml").read_text())
    assert manifest["apiVersion"] == "krew.googlecontainertools.github.com/v1alpha2"
    assert manifest["kind"] == "Plugin" and manifest["metadata"]["name"] == "mltrl"
    spec = manifest["spec"]
    assert spec["version"].startswith("v") and spec["shortDescription"]
    assert len(spec["shortDescription"]) <= 70, "krew-index keeps short descriptions short"
    tool = archive_tool()
    data = tool.build()
    assert data == tool.build(), "the archive is reproducible"
    for platform in spec["platforms"]:
        assert platform["bin"] == "kubectl-mltrl"
        assert platform["uri"].endswith("/kubectl-mltrl.tar.gz")
        assert platform["sha256"] == tool.sha256(data), \
            "run .venv/bin/python tools/krew_archive.py --write-manifest"
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = tar.getmember("kubectl-mltrl")
        assert member.mode & 0o111


def test_the_launcher_runs_the_plugin_or_says_what_to_install(tmp_path: Path) -> None:
    launcher = REPO / "manifests" / "krew" / "kubectl-mltrl"
    env = {**os.environ, "MLTRL_PYTHON": sys.executable}
    ran = subprocess.run(["/bin/sh", str(launcher), "--help"], capture_output=True, text=True,
                         env=env, timeout=60, check=False)
    assert ran.returncode == 0 and "usage: kubectl mltrl" in ran.stdout
    bare = {"PATH": str(tmp_path), "MLTRL_PYTHON": ""}
    missing = subprocess.run(["/bin/sh", str(launcher), "ls"], capture_output=True, text=True,
                             env=bare, timeout=60, check=False)
    assert missing.returncode == 1
    assert "pip install mltrl-operator" in missing.stderr
