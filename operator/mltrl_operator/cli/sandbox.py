"""`mltrl sandbox`: the in-memory API server with the operator (and KServe's stand-in)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from mltrl_operator.api import crdgen
from mltrl_operator.cli.process import stop_on_signals
from mltrl_operator.cli.services import alert_services
from mltrl_operator.controllers.runtime import Clock, Service, run_operator
from mltrl_operator.k8s.client import KubeClient
from mltrl_operator.k8s.connection import from_kubeconfig
from mltrl_operator.webhooks.certs import make_serving_certificate
from mltrl_operator.webhooks.cluster import KubeClusterState
from mltrl_operator.webhooks.config import WebhookConfig, WebhookConfigError
from mltrl_operator.webhooks.configuration import operator_username, webhook_configurations
from mltrl_operator.webhooks.server import WebhookServer
from mltrl_sandbox.crds import default_crd_documents
from mltrl_sandbox.faults import from_options as faults_from_options
from mltrl_sandbox.kserve import KServeStandIn
from mltrl_sandbox.server import SandboxServer

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
    async def webhooks(client: KubeClient, clock: Clock) -> AsyncIterator[WebhookServer]:
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
    )
    await server.start()
    kubeconfig = server.write_kubeconfig(
        Path(args.dir) / "kubeconfig", others={name: token for name, (token, _) in users.items()}
    ).resolve()
    stop = asyncio.Event()
    stop_on_signals(stop)
    connection = from_kubeconfig(kubeconfig)
    operator_connection = connection
    if args.webhooks:
        operator_connection = from_kubeconfig(kubeconfig, operator_username())
        services.append(
            _sandbox_webhooks(server, Path(args.dir).resolve(), args.webhook_trusted_group)
        )
    tasks = []
    ending: list[asyncio.Task[Any]] = [asyncio.create_task(stop.wait())]
    if not args.no_kserve:
        tasks.append(asyncio.create_task(KServeStandIn(connection).run(stop)))
    if not args.no_operator:
        tasks.append(asyncio.create_task(run_operator(
            operator_connection, stop_flag=stop, metrics_port=args.metrics_port,
            metrics_host=args.metrics_host, services=services,
        )))
        ending.append(tasks[-1])
    print(f"Sandbox API server listening on {server.url}", flush=True)
    print(
        "Operator: " + ("not started (--no-operator)" if args.no_operator else "running"),
        flush=True,
    )
    print(f"\n    export KUBECONFIG={kubeconfig}\n", flush=True)
    if users:
        print("Users (kubectl --user NAME): " + ", ".join(users), flush=True)
    if args.alerts_port is not None and not args.no_operator:
        print(f"Alerts: POST http://127.0.0.1:{args.alerts_port}/alerts with "
              f"'Authorization: Bearer <{args.alerts_token_file}>'", flush=True)
    print("Then try: kubectl apply -f manifests/examples/ && kubectl get mltech", flush=True)
    print("Press Ctrl-C to stop.", flush=True)
    # kopf installs its own SIGINT/SIGTERM handlers over ours and then ends the operator
    # task: that ends the sandbox too.
    await asyncio.wait(ending, return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, timeout=10)
    await server.stop()
    return 0
