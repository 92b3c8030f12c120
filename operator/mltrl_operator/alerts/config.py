"""How the receiver listens, whom it believes, and which alert labels name a technology."""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from pathlib import Path

TOKEN_ENV = "MLTRL_ALERTS_TOKEN"
DEFAULT_TECHNOLOGY_LABEL = "mltrl_technology"
DEFAULT_NAMESPACE_LABEL = "namespace"
DEFAULT_INFERENCE_SERVICE_LABEL = "inferenceservice"
MAX_BODY_BYTES = 1024 * 1024


class ConfigError(ValueError):
    """The receiver cannot start as configured."""


class TokenSource:
    """The bearer token Alertmanager must present.

    A file is read again when it changes, so a rotated Secret takes effect without a
    restart; an empty or unreadable file refuses every request rather than accept any.
    """

    def __init__(self, *, token: str | None = None, path: Path | None = None) -> None:
        if (token is None) == (path is None):
            raise ConfigError("give the alerts token either inline or as a file, not both")
        self._token = (token or "").strip().encode() or None
        self._path = path
        self._stamp: tuple[int, int] | None = None
        if path is not None:
            self._reload(path)
        if self._token is None:
            where = f"{path} is empty" if path else f"{TOKEN_ENV} is empty"
            raise ConfigError(f"the alerts receiver needs a token: {where}")

    def _reload(self, path: Path) -> None:
        stat = path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            self._token = path.read_bytes().strip() or None
            self._stamp = stamp

    def current(self) -> bytes | None:
        if self._path is not None:
            try:
                self._reload(self._path)
            except OSError:
                return None
        return self._token

    @classmethod
    def from_options(cls, token_file: str | None) -> TokenSource:
        if token_file:
            try:
                return cls(path=Path(token_file))
            except OSError as error:
                raise ConfigError(f"cannot read the alerts token file: {error}") from None
        token = os.environ.get(TOKEN_ENV)
        if not token:
            raise ConfigError(
                f"the alerts receiver needs a token: --alerts-token-file or ${TOKEN_ENV}"
            )
        return cls(token=token)


@dataclass(frozen=True)
class TLSFiles:
    cert: str
    key: str
    client_ca: str | None = None
    """With a client CA, Alertmanager must also present a certificate it signed (mTLS)."""

    def context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert, self.key)
        if self.client_ca:
            context.load_verify_locations(cafile=self.client_ca)
            context.verify_mode = ssl.CERT_REQUIRED
        return context


@dataclass(frozen=True)
class ReceiverConfig:
    port: int
    token: TokenSource
    host: str = "0.0.0.0"
    tls: TLSFiles | None = None
    technology_label: str = DEFAULT_TECHNOLOGY_LABEL
    namespace_label: str = DEFAULT_NAMESPACE_LABEL
    inference_service_label: str = DEFAULT_INFERENCE_SERVICE_LABEL
    max_body_bytes: int = MAX_BODY_BYTES
    policy_cache_seconds: float = 5.0


def tls_files(cert: str | None, key: str | None, client_ca: str | None) -> TLSFiles | None:
    if not cert and not key:
        if client_ca:
            raise ConfigError("--alerts-client-ca needs --alerts-tls-cert and --alerts-tls-key")
        return None
    if not cert or not key:
        raise ConfigError("--alerts-tls-cert and --alerts-tls-key go together")
    return TLSFiles(cert=cert, key=key, client_ca=client_ca)
