"""The sandbox API server: an in-memory, Kubernetes-compatible API server on loopback.

It is a test/demo harness, good enough for real `kubectl` and for kopf; it is not a
cluster (no pods run). It authorizes every request with RBAC as kube-apiserver does
(rbac.py, wired in auth.py) and calls the admission webhooks that
Validating/MutatingWebhookConfigurations name (webhooks.py).

    in asyncio code:   async with SandboxServer(crds) as server: ...
                       (or await server.start() ... await server.stop())
    in sync tests:     with SandboxThread(crds) as sandbox: sandbox.kubeconfig(path)
"""

from __future__ import annotations

import asyncio
import base64
import gc
import os
import ssl
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import yaml
from aiohttp import web

from .admission import AdmissionHook
from .aggregation import AggregationController
from .api import CRD_STORAGE, NAMESPACES, Api, WriteOptions
from .auth import Authenticator, auth_middleware
from .bootstrap import cluster_role_bindings, cluster_roles
from .builtin import builtin_types
from .crds import default_crd_documents
from .faults import Faults
from .handlers import Handlers
from .inflight import Inflight, InflightLimits
from .rbac import Authorizer
from .resources import Obj, Registry
from .reviews import Reviews
from .stats import Stats
from .store import Store
from .webhooks import WebhookCaller

T = TypeVar("T")

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
# CRDs can be large (KServe's is megabytes); the real server accepts up to 3 MiB objects.
MAX_BODY = 3 * 1024 * 1024  # kube-apiserver's request body limit


def kubeconfig_document(
    url: str,
    token: str = "admin-token",
    user: str = "admin",
    ca_pem: bytes | None = None,
    others: Mapping[str, str] | None = None,
) -> Obj:
    """`others` (user name -> token) adds a user and a context of the same name for each,
    so `kubectl --user NAME` or `--context NAME` acts as that user."""
    cluster: Obj = {"server": url}
    if ca_pem:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    users = {user: token, **(others or {})}
    contexts = {"sandbox": user, **{name: name for name in others or {}}}
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "sandbox", "cluster": cluster}],
        "users": [{"name": name, "user": {"token": value}} for name, value in users.items()],
        "contexts": [
            {
                "name": context,
                "context": {"cluster": "sandbox", "user": name, "namespace": "default"},
            }
            for context, name in contexts.items()
        ],
        "current-context": "sandbox",
        "preferences": {},
    }


def write_kubeconfig(
    path: Path,
    url: str,
    token: str = "admin-token",
    user: str = "admin",
    ca_pem: bytes | None = None,
    others: Mapping[str, str] | None = None,
) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    document = kubeconfig_document(url, token, user, ca_pem, others)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    os.chmod(path, 0o600)
    return path


def _self_signed(host: str) -> tuple[ssl.SSLContext, bytes]:
    """A server TLS context and its CA certificate (PEM), made up on the spot."""
    import trustme  # a development dependency: only needed when tls=True

    ca = trustme.CA()
    cert = ca.issue_cert(host, "localhost", "127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return context, ca.cert_pem.bytes()


# Who the server's own writes are from, as `--show-managed-fields` names them: the
# objects kube-apiserver creates at start (default namespaces, the bootstrap policy) are
# its own; `grant` stands in for an admin's `kubectl create`.
SELF = "kube-apiserver"
AS_KUBECTL_CREATE = "kubectl-create"


def tune_garbage_collector() -> None:
    """For a process that is a sandbox and nothing else, once its CRDs (and any seed) are
    loaded. The sandbox keeps every object and its recent versions (the watch history) as
    plain JSON, without reference cycles, so the collector's default pace walks a heap
    that only grows: at 2,000 technologies a full collection took 200-500 ms, several
    times a minute, each one a stall of whatever request was being answered. As the
    operator does (mltrl_operator.controllers.runtime): what is loaded now lives as long
    as the process, and the young generation is collected less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


class SandboxServer:
    """A Kubernetes-compatible API server on loopback, serving builtin kinds and CRDs.

    `tokens` maps bearer tokens to (username, groups); None accepts any token as user
    "admin" in group "system:masters"; every other user may do only what RBAC grants.
    kubectl sends tokens only over https, so use
    `tls=True` (a self-signed CA, written into kubeconfigs) when tokens matter to
    kubectl; Python clients send them over plain http too.  `history_limit` bounds the
    watch history kept
    per resource (older resourceVersions get 410 Gone).
    """

    def __init__(
        self,
        crds: Iterable[Obj] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        tokens: dict[str, tuple[str, list[str]]] | None = None,
        *,
        history_limit: int = 2000,
        bookmark_interval: float = 5.0,
        first_bookmark_delay: float = 1.0,
        tls: bool = False,
        faults: Faults | None = None,
        inflight: InflightLimits | None = None,
    ) -> None:
        self.host = host
        self.faults = faults
        # kube-apiserver always limits requests in flight; so does the sandbox (inflight.py)
        self.inflight = Inflight(inflight or InflightLimits())
        self.tls = tls
        # PEM of the CA that signed the server certificate (tls=True), for clients to trust
        self.ca_pem: bytes | None = None
        self._ssl: ssl.SSLContext | None = None
        self.port = port
        self.crds = list(crds)
        self.registry = Registry()
        for rt in builtin_types():
            self.registry.add(rt)
        self.store = Store(history_limit)
        self.api = Api(self.registry, self.store)
        self.stats = Stats()
        self.authorizer = Authorizer(self.store)
        self._install_rbac()
        self.authenticator = Authenticator(tokens, self.authorizer)
        self.handlers = Handlers(
            self.api,
            self.registry,
            self.stats,
            bookmark_interval=bookmark_interval,
            first_bookmark_delay=first_bookmark_delay,
        )
        self._runner: web.AppRunner | None = None
        # The webhook configurations' hooks run first; hooks added later run after them.
        self.webhooks = WebhookCaller(self.store)
        self.api.mutating_admission.append(self.webhooks.mutate)
        self.api.validating_admission.append(self.webhooks.validate)

    def _install_rbac(self) -> None:
        """RBAC in one place: access reviews answered by the authorizer, escalation
        checked on writing roles and bindings, aggregated ClusterRoles kept filled."""
        reviews = Reviews(self.authorizer)
        for plural, answer in (
            ("selfsubjectaccessreviews", reviews.self_subject_access_review),
            ("selfsubjectrulesreviews", reviews.self_subject_rules_review),
            ("subjectaccessreviews", reviews.subject_access_review),
            ("localsubjectaccessreviews", reviews.local_subject_access_review),
        ):
            kind = self.registry.get("authorization.k8s.io/v1", plural)
            # builtin.py registers every review kind; one left unwired would answer with
            # NotImplementedError instead of the authorizer's decision
            assert kind is not None, f"authorization.k8s.io/v1 {plural} is not registered"
            kind.virtual = answer
        self.api.validating_admission.append(self.authorizer.admit_escalation)
        self.aggregation = AggregationController(self.api)

    async def _seed_rbac(self) -> None:
        """kube-apiserver's bootstrap roles and bindings (bootstrap.py)."""
        for plural, documents in (("clusterroles", cluster_roles()),
                                  ("clusterrolebindings", cluster_role_bindings())):
            kind = self.registry.get("rbac.authorization.k8s.io/v1", plural)
            assert kind is not None
            for document in documents:
                if self.store.get(kind.storage, None, document["metadata"]["name"]) is None:
                    await self.api.create(kind, None, document, WriteOptions(field_manager=SELF))
        await self.aggregation.reconcile()

    async def grant(
        self, role: str, *, users: Iterable[str] = (), groups: Iterable[str] = (),
        namespace: str | None = None, rules: list[Obj] | None = None,
    ) -> None:
        """Bind a ClusterRole (creating it from `rules` if given) to users and groups, in
        one namespace (RoleBinding) or everywhere (ClusterRoleBinding), as the admin
        would with kubectl; for tests and the launcher."""
        rbac = "rbac.authorization.k8s.io"
        if rules is not None:
            kind = self.registry.get(f"{rbac}/v1", "clusterroles")
            assert kind is not None
            await self.api.create(kind, None, {"metadata": {"name": role}, "rules": rules},
                                  WriteOptions(field_manager=AS_KUBECTL_CREATE))
        subjects = [{"kind": "User", "apiGroup": rbac, "name": u} for u in users]
        subjects += [{"kind": "Group", "apiGroup": rbac, "name": g} for g in groups]
        names = "-".join(s["name"] for s in subjects).replace(":", "-")
        binding = {
            "metadata": {"name": f"{role}-{names}"[:250]},
            "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": role},
            "subjects": subjects,
        }
        plural = "rolebindings" if namespace else "clusterrolebindings"
        kind = self.registry.get(f"{rbac}/v1", plural)
        assert kind is not None
        await self.api.create(kind, namespace, binding,
                              WriteOptions(field_manager=AS_KUBECTL_CREATE))

    @property
    def mutating_admission(self) -> list[AdmissionHook]:
        return self.api.mutating_admission

    @property
    def validating_admission(self) -> list[AdmissionHook]:
        return self.api.validating_admission

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    async def _seed(self) -> None:
        namespaces = self.registry.get("v1", NAMESPACES)
        crd_type = self.registry.get("apiextensions.k8s.io/v1", "customresourcedefinitions")
        assert namespaces is not None and crd_type is not None
        for name in DEFAULT_NAMESPACES:
            if self.store.get(NAMESPACES, None, name) is None:
                namespace = {"metadata": {"name": name}}
                await self.api.create(namespaces, None, namespace, WriteOptions(field_manager=SELF))
        await self._seed_rbac()
        for crd in self.crds:
            name = (crd.get("metadata") or {}).get("name", "")
            if self.store.get(CRD_STORAGE, None, name) is None:
                await self.api.create(crd_type, None, crd)

    async def start(self) -> None:
        await self._seed()
        faults = [self.faults.middleware] if self.faults else []  # before auth
        # Outermost, as kube-apiserver's filter: a request holds its seat through its latency.
        middlewares = [self.inflight.middleware, *faults, auth_middleware(self.authenticator)]
        app = web.Application(client_max_size=MAX_BODY, middlewares=middlewares)
        self.inflight.install(app)
        if self.faults:
            self.faults.install(app)
        self.handlers.install(app)
        self._runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0
        )
        await self._runner.setup()
        if self.tls and self._ssl is None:
            self._ssl, self.ca_pem = _self_signed(self.host)
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self._ssl)
        await site.start()
        self.aggregation.start()
        for address in self._runner.addresses:
            if isinstance(address, tuple):
                self.port = int(address[1])
                break

    async def stop(self) -> None:
        self.handlers.closing.set()
        await self.aggregation.stop()
        self.store.close_all_watchers()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.webhooks.close()

    async def __aenter__(self) -> SandboxServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def write_kubeconfig(
        self,
        path: Path,
        token: str = "admin-token",
        user: str = "admin",
        others: Mapping[str, str] | None = None,
    ) -> Path:
        return write_kubeconfig(path, self.url, token, user, self.ca_pem, others)


class SandboxThread:
    """Runs a SandboxServer on its own event loop in a daemon thread (for sync tests).

    Use as a context manager; `run(coro)` executes a coroutine on the server's loop
    (the store is not thread-safe, so touch `server` only through it).
    """

    def __init__(self, crds: Iterable[Obj] = (), **server_kwargs: Any) -> None:
        self._crds = list(crds)
        self._kwargs = server_kwargs
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._server: SandboxServer | None = None

    @property
    def server(self) -> SandboxServer:
        assert self._server is not None, "the sandbox is not running"
        return self._server

    @property
    def url(self) -> str:
        return self.server.url

    def kubeconfig(self, path: Path, token: str = "admin-token", user: str = "admin") -> Path:
        return self.server.write_kubeconfig(path, token, user)

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            self._server = SandboxServer(self._crds, **self._kwargs)
            loop.run_until_complete(self._server.start())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._server.stop())
            # Whatever is still pending (e.g. delayed garbage collection) dies with the loop.
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    def start(self, timeout: float = 30.0) -> SandboxThread:
        self._thread = threading.Thread(target=self._main, name="mltrl-sandbox", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the sandbox did not start in time")
        if self._error is not None:
            raise RuntimeError("the sandbox failed to start") from self._error
        return self

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        assert self._loop is not None
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout)

    def call(self, fn: Callable[[], T], timeout: float = 30.0) -> T:
        async def wrapper() -> T:
            return fn()

        return self.run(wrapper(), timeout)

    def stop(self, timeout: float = 30.0) -> None:
        if self._loop is None or self._thread is None or not self._thread.is_alive():
            return
        try:
            # Close watches and connections while the loop still runs them.
            self.run(self.server.stop(), timeout)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)

    def __enter__(self) -> SandboxThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


async def serve_forever(
    crds_dir: Path | None = None,
    host: str = "127.0.0.1",
    port: int = 8001,
    kubeconfig: Path | None = None,
    tokens: dict[str, tuple[str, list[str]]] | None = None,
    *,
    extra_crds: Iterable[Obj] = (),
    on_ready: Callable[[SandboxServer], Awaitable[None] | None] | None = None,
    stop: asyncio.Event | None = None,
    faults: Faults | None = None,
    inflight: InflightLimits | None = None,
) -> None:
    """Run a sandbox (bundled CRDs + those in `crds_dir`) until `stop` is set or cancelled."""
    server = SandboxServer(
        [*default_crd_documents(crds_dir), *extra_crds], host, port, tokens, faults=faults,
        inflight=inflight,
    )
    await server.start()
    try:
        if kubeconfig is not None:
            server.write_kubeconfig(kubeconfig)
        if on_ready is not None:
            result = on_ready(server)
            if asyncio.iscoroutine(result):
                await result
        await (stop or asyncio.Event()).wait()
    finally:
        await server.stop()
