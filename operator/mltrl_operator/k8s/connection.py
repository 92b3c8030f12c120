"""Where the API server is and how to authenticate: kubeconfig or in-cluster service account."""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class ConnectionError_(RuntimeError):
    """The cluster connection could not be worked out from the environment."""


@dataclass(frozen=True)
class Connection:
    server: str
    token: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure: bool = False
    default_namespace: str = "default"

    def ssl_context(self) -> ssl.SSLContext | bool:
        if not self.server.startswith("https"):
            return False
        if self.insecure:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        else:
            context = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file and self.key_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


def _materialise(data: str | None, suffix: str) -> str | None:
    """kubeconfigs inline certificates as base64; ssl wants files."""
    if not data:
        return None
    with tempfile.NamedTemporaryFile(delete=False, suffix=suffix, prefix="mltrl-") as handle:
        handle.write(base64.b64decode(data))
    return handle.name


def _named(items: list[dict[str, Any]], name: str, what: str) -> dict[str, Any]:
    for item in items or []:
        if item.get("name") == name:
            return dict(item.get(what) or {})
    raise ConnectionError_(f"kubeconfig has no {what} named {name!r}")


def from_kubeconfig(path: Path, context: str | None = None) -> Connection:
    config = yaml.safe_load(path.read_text()) or {}
    context_name = context or config.get("current-context")
    if not context_name:
        raise ConnectionError_(f"{path}: no current-context and no context given")
    ctx = _named(config.get("contexts", []), context_name, "context")
    cluster = _named(config.get("clusters", []), ctx["cluster"], "cluster")
    user = _named(config.get("users", []), ctx["user"], "user") if ctx.get("user") else {}
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = Path(user["tokenFile"]).read_text().strip()
    return Connection(
        server=cluster["server"].rstrip("/"),
        token=token,
        ca_file=cluster.get("certificate-authority")
        or _materialise(cluster.get("certificate-authority-data"), ".crt"),
        cert_file=user.get("client-certificate")
        or _materialise(user.get("client-certificate-data"), ".crt"),
        key_file=user.get("client-key") or _materialise(user.get("client-key-data"), ".key"),
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        default_namespace=ctx.get("namespace") or "default",
    )


def in_cluster() -> Connection:
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not host:
        raise ConnectionError_("not running in a cluster (KUBERNETES_SERVICE_HOST unset)")
    namespace_file = SERVICE_ACCOUNT_DIR / "namespace"
    return Connection(
        server=f"https://{host}:{port}",
        token=(SERVICE_ACCOUNT_DIR / "token").read_text().strip(),
        ca_file=str(SERVICE_ACCOUNT_DIR / "ca.crt"),
        default_namespace=namespace_file.read_text().strip()
        if namespace_file.exists()
        else "default",
    )


def discover(kubeconfig: str | None = None, context: str | None = None) -> Connection:
    """The same order kubectl uses: an explicit file, $KUBECONFIG, in-cluster, ~/.kube/config."""
    explicit = kubeconfig or os.environ.get("KUBECONFIG")
    if explicit:
        return from_kubeconfig(Path(explicit.split(os.pathsep)[0]), context)
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return in_cluster()
    return from_kubeconfig(Path.home() / ".kube" / "config", context)
