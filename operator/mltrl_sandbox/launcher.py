"""`mltrl sandbox`: the in-memory API server with the operator (and KServe's stand-in).

The only part of the sandbox that knows the operator (it runs it beside the API server);
the API server itself knows nothing of it (import-linter keeps it so).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import yaml

from mltrl_operator.api import crdgen
from mltrl_operator.cli.process import stop_on_signals
from mltrl_operator.cli.services import alert_services
from mltrl_operator.controllers.runtime import Clock, Service, run_operator
from mltrl_operator.k8s.client import KubeClient
from mltrl_operator.k8s.connection import load_connection
from mltrl_operator.k8s.lookups import TechnologyLookup
from mltrl_operator.webhooks.cluster import KubeClusterState
from mltrl_operator.webhooks.config import WebhookConfig, WebhookConfigError
from mltrl_operator.webhooks.configuration import operator_username, webhook_configurations
from mltrl_operator.webhooks.server import WebhookServer

from .certs import make_serving_certificate
from .client import SandboxClient
from .crds import default_crd_documents
from .faults import from_options as faults_from_options
from .inflight import limits_from_options
from .kserve import USER_ROLES as KSERVE_USER_ROLES
from .kserve import KServeStandIn
from .server import SandboxServer

SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"


def sandbox_alerts_token(directory: Path) -> Path:
    """A token for the sandbox's alert receiver, made once and kept beside the kubeconfig."""
    path = directory / "alerts-token"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(24) + "\n")
        path.chmod(0o600)
    return path


def sandbox_users(args: argparse.Namespace) -> dict[str, tuple[str, list[str]]]:
    """--user NAME[=GROUP,...] -> {name: (token, groups)}; service accounts get their
    groups as in a cluster. --webhooks adds the operator's service account."""
    specs = list(args.user or [])
    if args.webhooks:
        specs.append(operator_username())
    users: dict[str, tuple[str, list[str]]] = {}
    for spec in specs:
        name, _, listed = spec.partition("=")
        if not name or name == "admin":
            raise WebhookConfigError(f"--user {spec!r}: give a user name other than admin")
        groups = [g for g in listed.split(",") if g]
        if name.startswith(SERVICE_ACCOUNT_PREFIX):
            namespace = name[len(SERVICE_ACCOUNT_PREFIX):].partition(":")[0]
            groups += ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"]
        users[name] = (secrets.token_urlsafe(18), list(dict.fromkeys(groups)))
    return users


def _sandbox_webhooks(server: SandboxServer, directory: Path, trusted: list[str]) -> Service:
    """The webhooks beside the sandbox's operator, registered once they listen."""
    certificate = make_serving_certificate(directory / "webhook")
    config = WebhookConfig(
        port=0, cert_file=certificate.cert_file, key_file=certificate.key_file,
        host="127.0.0.1", trusted_groups=frozenset(trusted),
    )

    @contextlib.asynccontextmanager
    async def webhooks(
        client: KubeClient, clock: Clock, _: TechnologyLookup
    ) -> AsyncIterator[WebhookServer]:
        async with WebhookServer(config, KubeClusterState(client), clock) as running:
            url = f"https://127.0.0.1:{running.port}"
            for document in webhook_configurations(url, certificate.ca_pem):
                plural = document["kind"].lower() + "s"
                kind = server.registry.get("admissionregistration.k8s.io/v1", plural)
                assert kind is not None
                await server.api.create(kind, None, document)
            print(f"Admission webhooks: {url} (certificate in {directory / 'webhook'})",
                  flush=True)
            yield running

    return webhooks


# The plain install: the chart rendered by Helm with its default values (make manifests).
PLAIN_INSTALL = Path("manifests") / "install" / "mltrl-operator.yaml"
RBAC_KINDS = ("Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role",
              "RoleBinding")


def _plain_install() -> Path | None:
    """The checkout's plain install, from the working directory or beside the operator's
    sources (an editable install)."""
    import mltrl_operator

    for root in (Path.cwd(), Path(mltrl_operator.__file__).resolve().parents[2]):
        if (root / PLAIN_INSTALL).is_file():
            return root / PLAIN_INSTALL
    return None


async def _install_operator_rbac(server: SandboxServer) -> str:
    """The operator runs as its service account with exactly the chart's RBAC, taken from
    the plain install; without a checkout (an installed sandbox), as cluster-admin, and
    it says so."""
    found = _plain_install()
    if found is None:
        await server.grant("cluster-admin", users=[operator_username()])
        return "cluster-admin (the chart's RBAC, manifests/install/, was not found)"
    for document in yaml.safe_load_all(found.read_text()):
        if not document or document.get("kind") not in RBAC_KINDS:
            continue
        version = str(document["apiVersion"])
        kind = server.registry.get(version, str(document["kind"]).lower() + "s")
        assert kind is not None, document["kind"]
        namespace = document["metadata"].get("namespace")
        if server.store.get(kind.storage, namespace, document["metadata"]["name"]) is None:
            await server.api.create(kind, namespace, document)
    return str(found)


async def _install_kserve_user_roles(server: SandboxServer) -> None:
    """KServe's user roles, as its install brings them: users bound to edit or view can use
    InferenceServices (the sandbox carries KServe's CRD)."""
    for document in KSERVE_USER_ROLES:
        kind = server.registry.get(str(document["apiVersion"]), "clusterroles")
        assert kind is not None
        if server.store.get(kind.storage, None, document["metadata"]["name"]) is None:
            await server.api.create(kind, None, document)


async def sandbox(args: argparse.Namespace) -> int:
    if args.webhooks and args.no_operator:
        raise WebhookConfigError("--webhooks runs the webhooks in the operator: drop --no-operator")
    if args.alerts_port is not None and not args.alerts_token_file:
        args.alerts_token_file = str(sandbox_alerts_token(Path(args.dir)))
    services = [] if args.no_operator else alert_services(args)
    users = sandbox_users(args)
    tokens: dict[str, tuple[str, list[str]]] | None = None
    if users:
        tokens = {"admin-token": ("admin", ["system:masters"])}
        tokens.update({token: (name, groups) for name, (token, groups) in users.items()})
    server = SandboxServer(
        default_crd_documents(None) + crdgen.crd_documents(), port=args.port,
        tokens=tokens, tls=args.tls or bool(users),
        faults=faults_from_options(args.faults, args.latency, args.fault_seed),
        inflight=limits_from_options(args),
    )
    await server.start()
    kubeconfig = server.write_kubeconfig(
        Path(args.dir) / "kubeconfig", others={name: token for name, (token, _) in users.items()}
    ).resolve()
    stop = asyncio.Event()
    reclaim_signals = stop_on_signals(stop)
    connection = load_connection(str(kubeconfig))
    operator_connection = connection
    rbac_source = ""
    if users:
        await _install_kserve_user_roles(server)
    if args.webhooks:
        rbac_source = await _install_operator_rbac(server)
        operator_connection = load_connection(str(kubeconfig), operator_username())
        services.append(
            _sandbox_webhooks(server, Path(args.dir).resolve(), args.webhook_trusted_group)
        )
    tasks = []
    ending: list[asyncio.Task[Any]] = [asyncio.create_task(stop.wait())]
    if not args.no_kserve:
        stand_in = KServeStandIn(SandboxClient.from_kubeconfig(kubeconfig))
        tasks.append(asyncio.create_task(stand_in.run(stop)))
    if not args.no_operator:
        tasks.append(asyncio.create_task(run_operator(
            operator_connection, stop_flag=stop, metrics_port=args.metrics_port,
            metrics_host=args.metrics_host, services=services,
            reclaim_signals=reclaim_signals,
        )))
        ending.append(tasks[-1])
    print(f"Sandbox API server listening on {server.url}", flush=True)
    print(
        "Operator: " + ("not started (--no-operator)" if args.no_operator else "running"),
        flush=True,
    )
    print(f"\n    export KUBECONFIG={kubeconfig}\n", flush=True)
    if rbac_source:
        print(f"Operator: as {operator_username()}, with the RBAC of {rbac_source}", flush=True)
    if users:
        print("Users (kubectl --user NAME): " + ", ".join(users), flush=True)
        print("  RBAC: they may do nothing until bound, as in a cluster, e.g.\n"
              "  kubectl create clusterrolebinding NAME-edit --clusterrole=edit --user=NAME",
              flush=True)
    if args.alerts_port is not None and not args.no_operator:
        print(f"Alerts: POST http://127.0.0.1:{args.alerts_port}/alerts with "
              f"'Authorization: Bearer <{args.alerts_token_file}>'", flush=True)
    print("Then try: kubectl apply -f manifests/examples/ && kubectl get mltech", flush=True)
    print("Press Ctrl-C to stop.", flush=True)
    # A signal sets `stop` (the operator puts our handlers back over kopf's); the operator
    # ending on its own ends the sandbox too.
    await asyncio.wait(ending, return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    # The server's ends of the operator's watches run in this loop too, and kopf waits for
    # every task it did not start before it returns: stop the server alongside the
    # operator, not after it, or kopf waits out its 5 s for them.
    await asyncio.gather(server.stop(), *(_finish(task) for task in tasks))
    return 0


async def _finish(task: asyncio.Task[Any]) -> None:
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await asyncio.wait_for(task, timeout=3.5)
