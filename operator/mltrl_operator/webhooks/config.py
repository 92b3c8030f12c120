"""How the webhook server listens and whom it trusts to record approvals for others."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PORT = 9443
MAX_BODY_BYTES = 8 * 1024 * 1024
"""Two objects of up to etcd's 1.5 MiB each, plus the review around them."""


class WebhookConfigError(ValueError):
    """The webhook server cannot start as configured."""


class CertificateFiles:
    """The serving certificate and key, read again when the files change (cert-manager
    renews the Secret and the kubelet updates the mounted files in place)."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.cert, self.key = cert, key
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._stamp: tuple[int, int] | None = None
        try:
            self.reload()
        except (OSError, ssl.SSLError) as error:
            raise WebhookConfigError(f"cannot load the webhook certificate: {error}") from None

    def _current_stamp(self) -> tuple[int, int]:
        return (self.cert.stat().st_mtime_ns, self.key.stat().st_mtime_ns)

    def reload(self) -> bool:
        """Load the files into the same context if they changed; True when they did.
        New connections use the new certificate; open ones keep theirs."""
        stamp = self._current_stamp()
        if stamp == self._stamp:
            return False
        self.context.load_cert_chain(str(self.cert), str(self.key))
        self._stamp = stamp
        return True


@dataclass(frozen=True)
class WebhookConfig:
    port: int
    cert_file: Path
    key_file: Path
    host: str = "0.0.0.0"
    trusted_groups: frozenset[str] = field(default_factory=frozenset)
    """Members may record approvals in other reviewers' names (e.g. a CI service account)."""
    max_body_bytes: int = MAX_BODY_BYTES
    reload_seconds: float = 60.0
    """How often the certificate files are checked for a renewal."""


def webhook_config(
    port: int | None,
    cert: str | None,
    key: str | None,
    *,
    host: str = "0.0.0.0",
    trusted_groups: list[str] | None = None,
) -> WebhookConfig | None:
    """The configuration from the command line; None when the webhooks are off."""
    if port is None:
        if cert or key or trusted_groups:
            raise WebhookConfigError(
                "--webhook-cert, --webhook-key and --webhook-trusted-group need --webhook-port"
            )
        return None
    if not cert or not key:
        raise WebhookConfigError(
            "the webhooks are served over HTTPS only: --webhook-port needs --webhook-cert "
            "and --webhook-key"
        )
    CertificateFiles(Path(cert), Path(key))  # refuse unreadable files before anything starts
    return WebhookConfig(
        port=port,
        cert_file=Path(cert),
        key_file=Path(key),
        host=host,
        trusted_groups=frozenset(g for g in trusted_groups or [] if g),
    )
