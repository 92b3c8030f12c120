"""Where the API server is and who we are to it, as the `kubernetes` package works it out.

The package's loaders read kubeconfigs exactly as its users expect: merged `KUBECONFIG`
lists, paths relative to the file that names them, exec credential plugins (EKS, GKE, AKS),
OIDC auth-providers, `tokenFile`, `proxy-url`, `tls-server-name`, and in a pod the
projected service-account token, re-read every minute as client-go does. This module only
adapts its answer for our aiohttp client and for kopf, and keeps it fresh:

- `authorization()` asks the package for the current header off the event loop (an exec
  plugin may take seconds), at most every few seconds; the package re-runs the plugin
  only once its credential expires.
- `relogin()` works everything out again from scratch (after a 401: a rotated token, a
  revoked certificate), once however many requests met the 401 at the same time.

`load_connection` is the one public way in: `mltrl run`, the sandbox and the kubectl plugin
all call it, so they all read a kubeconfig the same way.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes.client.configuration import Configuration
from kubernetes.client.rest import should_bypass_proxies
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.incluster_config import (
    SERVICE_CERT_FILENAME,
    SERVICE_HOST_ENV_NAME,
    SERVICE_TOKEN_FILENAME,
    InClusterConfigLoader,
)
from kubernetes.config.kube_config import ENV_KUBECONFIG_PATH_SEPARATOR, KubeConfigLoader
from kubernetes.config.kube_config import KubeConfigMerger as _Merger

SERVICE_ACCOUNT_DIR = Path(SERVICE_TOKEN_FILENAME).parent
DEFAULT_KUBECONFIG = Path("~/.kube/config")
RECHECK_SECONDS = 5.0
"""How often `authorization()` asks the package whether the credential moved on."""

CREDENTIAL_KEYS = ("token", "tokenFile", "exec", "auth-provider", "client-certificate",
                   "client-certificate-data", "username")


class CredentialsError(RuntimeError):
    """The kubeconfig (or the pod's service account) yields no way to authenticate; the
    message names the context and the problem in one line."""


Loader = Callable[[], Configuration]


@dataclass
class Connection:
    """The API server's address and TLS settings, and a source of fresh credentials.

    Built by `load_connection` from a kubeconfig or the pod's service account; tests may
    build one directly with a fixed `token`."""

    server: str
    token: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure: bool = False
    default_namespace: str = "default"
    tls_server_name: str | None = None
    proxy: str | None = None
    context: str = ""
    """What the credentials came from (a context name or `in-cluster`), for messages."""
    loader: Loader | None = field(default=None, repr=False)
    _configuration: Configuration | None = field(default=None, repr=False)
    _header: str | None = field(default=None, repr=False)
    _checked: float = field(default=0.0, repr=False)
    generation: int = 0
    """Counts logins, so requests that met the same 401 trigger one relogin between them."""
    _lock: asyncio.Lock | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.server = self.server.rstrip("/")
        if self.token and self._header is None:
            self._header = f"Bearer {self.token}"

    # --- TLS -------------------------------------------------------------------------------

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

    # --- credentials -----------------------------------------------------------------------

    def _current_header(self) -> str | None:
        """Blocking: the package's refresh hook may run an exec plugin or read a file."""
        if self._configuration is None:
            return self._header
        header = self._configuration.get_api_key_with_prefix("BearerToken")
        return str(header).strip() if header else None

    async def authorization(self) -> str | None:
        """The Authorization header to send now."""
        if self._configuration is None:
            return self._header
        if time.monotonic() - self._checked >= RECHECK_SECONDS:
            self._header = await asyncio.to_thread(self._current_header)
            self._checked = time.monotonic()
        return self._header

    def recheck(self) -> None:
        """Make the next `authorization()` ask the package again, without waiting."""
        self._checked = 0.0

    def headers(self) -> dict[str, str]:
        """The last known Authorization header (for callers that cannot await)."""
        return {"Authorization": self._header} if self._header else {}

    async def relogin(self, seen_generation: int | None = None) -> None:
        """Work the credentials out again from scratch. `seen_generation`: the generation
        a failed request used; if someone has logged in since, that login is enough."""
        if self.loader is None:
            return
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if seen_generation is not None and seen_generation != self.generation:
                return
            configuration = await asyncio.to_thread(self.loader)
            self._adopt(configuration)
            self._header = await asyncio.to_thread(self._current_header)
            self._checked = time.monotonic()
            self.generation += 1

    def _adopt(self, configuration: Configuration) -> None:
        self._configuration = configuration
        self.server = str(configuration.host).rstrip("/")
        self.ca_file = configuration.ssl_ca_cert or None
        self.cert_file = configuration.cert_file or None
        self.key_file = configuration.key_file or None
        self.insecure = not configuration.verify_ssl
        self.tls_server_name = configuration.tls_server_name or None
        bypassed = should_bypass_proxies(str(configuration.host), configuration.no_proxy or "")
        self.proxy = None if not configuration.proxy or bypassed else str(configuration.proxy)

    def effective_proxy(self) -> str | None:
        """The proxy to reach the server through: the kubeconfig's proxy-url, else
        HTTPS_PROXY/HTTP_PROXY unless NO_PROXY spares the server, as the package decides
        (`_adopt`). Worked out once: aiohttp's trust_env would read the environment again
        on every request, a third of a millisecond each."""
        return self.proxy

    def expiry(self) -> float | None:
        """Seconds since the epoch when the current credential should be renewed, if known."""
        if self._configuration is None:
            return None
        loader = _closure_owner(getattr(self._configuration, "refresh_api_key_hook", None))
        expires = getattr(loader, "expiry", None) or getattr(loader, "token_expires_at", None)
        # The in-cluster loader keeps a naive local time, which timestamp() reads as such.
        return None if expires is None else float(expires.timestamp())


def _closure_owner(hook: Any) -> Any:
    """The loader object a refresh hook closes over (the package keeps expiry there)."""
    for cell in getattr(hook, "__closure__", None) or ():
        contents = cell.cell_contents
        if isinstance(contents, KubeConfigLoader | InClusterConfigLoader):
            return contents
    return None


# --- loading -------------------------------------------------------------------------------


class _Captured(logging.Filter):
    """The package logs (rather than raises) why an exec plugin failed: keep that reason
    for our one-line error instead of letting it print."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.module in {"kube_config", "exec_provider"} and record.levelno >= logging.ERROR:
            self.messages.append(record.getMessage().strip())
            return False
        return True


def _kubeconfig_paths(kubeconfig: str | None) -> str:
    listed = kubeconfig or os.environ.get("KUBECONFIG") or str(DEFAULT_KUBECONFIG)
    return ENV_KUBECONFIG_PATH_SEPARATOR.join(
        str(Path(part).expanduser().absolute())
        for part in listed.split(ENV_KUBECONFIG_PATH_SEPARATOR) if part
    )


def _load_kubeconfig(paths: str, context: str | None) -> tuple[Configuration, str, str]:
    """Blocking. (configuration, context name, default namespace)."""
    existing = [p for p in paths.split(ENV_KUBECONFIG_PATH_SEPARATOR) if Path(p).is_file()]
    if not existing:
        raise CredentialsError(f"kubeconfig {paths}: no such file")
    try:
        merged = _Merger(ENV_KUBECONFIG_PATH_SEPARATOR.join(existing))
        if merged.config is None:
            raise CredentialsError(f"kubeconfig {paths}: no configuration found")
        loader = KubeConfigLoader(config_dict=merged.config, config_base_path=None)
        name = context or merged.config.safe_get("current-context")
        if not name:
            raise CredentialsError(f"kubeconfig {paths}: no current-context and no --context")
        loader.set_active_context(name)
    except (ConfigException, KeyError, ValueError) as error:
        where = f'context "{context}"' if context else f"kubeconfig {paths}"
        raise CredentialsError(f"{where}: {error}") from None
    details = loader.current_context["context"]
    user_name = details.get("user")
    node = getattr(loader, "_user", None)  # a ConfigNode, or None for a context without one
    user = dict(node.value) if node is not None else {}
    if not user_name or not any(key in user for key in CREDENTIAL_KEYS):
        raise CredentialsError(
            f'context "{name}": user "{user_name or ""}" has no credentials (token, tokenFile, '
            "client certificate, exec plugin or auth-provider); refusing to connect "
            "anonymously"
        )
    configuration = Configuration()
    captured = _Captured()
    root = logging.getLogger()
    root.addFilter(captured)
    try:
        loader.load_and_set(configuration)
    except (ConfigException, OSError, ValueError) as error:
        raise CredentialsError(f'context "{name}": {error}') from None
    finally:
        root.removeFilter(captured)
    has_token = bool(configuration.api_key.get("BearerToken"))
    has_certificate = bool(configuration.cert_file and configuration.key_file)
    if not has_token and not has_certificate:
        reason = "; ".join(captured.messages) or "its credentials yield neither a token "\
            "nor a client certificate"
        kind = "exec plugin " + repr(user["exec"].get("command")) if "exec" in user else "user"
        raise CredentialsError(f'context "{name}": {kind} failed: {reason}')
    return configuration, str(name), str(details.get("namespace") or "default")


def _load_in_cluster() -> Configuration:
    configuration = Configuration()
    try:
        InClusterConfigLoader(SERVICE_TOKEN_FILENAME, SERVICE_CERT_FILENAME).load_and_set(
            configuration
        )
    except (ConfigException, OSError) as error:
        raise CredentialsError(f"in-cluster: {error}") from None
    return configuration


def load_connection(kubeconfig: str | None = None, context: str | None = None) -> Connection:
    """The connection kubectl would use: `kubeconfig` (a path or a `:`-separated list),
    else $KUBECONFIG, else the pod's service account, else ~/.kube/config; `context`
    overrides the current context. Raises CredentialsError, one line naming the context
    and the problem, when no credentials can be worked out. Blocking (it may run an exec
    plugin): call it before the event loop starts, or in a thread."""
    if kubeconfig is None and not os.environ.get("KUBECONFIG") and os.environ.get(
        SERVICE_HOST_ENV_NAME
    ):
        configuration = _load_in_cluster()
        namespace_file = SERVICE_ACCOUNT_DIR / "namespace"
        connection = Connection(
            server=str(configuration.host), context="in-cluster", loader=_load_in_cluster,
            default_namespace=namespace_file.read_text().strip()
            if namespace_file.exists() else "default",
        )
    else:
        paths = _kubeconfig_paths(kubeconfig)
        configuration, name, namespace = _load_kubeconfig(paths, context)

        def reload() -> Configuration:
            return _load_kubeconfig(paths, name)[0]

        connection = Connection(
            server=str(configuration.host), context=name, loader=reload,
            default_namespace=namespace,
        )
    connection._adopt(configuration)
    connection._header = connection._current_header()
    connection._checked = time.monotonic()
    return connection
