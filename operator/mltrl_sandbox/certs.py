"""A throwaway CA and serving certificate for running the webhooks outside a cluster.

In a cluster cert-manager issues the certificate (see the chart); the sandbox and the
tests make their own with trustme, a development dependency.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ServingCertificate:
    ca_pem: bytes
    cert_file: Path
    key_file: Path


def make_serving_certificate(
    directory: Path, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")
) -> ServingCertificate:
    """Write ca.crt, tls.crt and tls.key (0600) into `directory`."""
    import trustme

    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="mltrl sandbox webhook CA")
    issued = ca.issue_cert(*hosts)
    ca_file, cert_file, key_file = (directory / n for n in ("ca.crt", "tls.crt", "tls.key"))
    ca.cert_pem.write_to_path(str(ca_file))
    issued.cert_chain_pems[0].write_to_path(str(cert_file))
    for extra in issued.cert_chain_pems[1:]:
        extra.write_to_path(str(cert_file), append=True)
    key_file.touch(mode=0o600)
    os.chmod(key_file, 0o600)
    issued.private_key_pem.write_to_path(str(key_file))
    return ServingCertificate(ca.cert_pem.bytes(), cert_file, key_file)
