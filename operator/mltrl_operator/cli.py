"""`mltrl`: run the operator, start the sandbox, or regenerate the CRDs."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import secrets
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrl_operator.alerts.config import (
    DEFAULT_INFERENCE_SERVICE_LABEL,
    DEFAULT_NAMESPACE_LABEL,
    DEFAULT_TECHNOLOGY_LABEL,
    MAX_BODY_BYTES,
    TOKEN_ENV,
    ConfigError,
    ReceiverConfig,
    TokenSource,
    tls_files,
)
from mltrl_operator.alerts.server import AlertReceiver
from mltrl_operator.api import crdgen
from mltrl_operator.controllers.runtime import Clock, Service, run_operator
from mltrl_operator.k8s.client import KubeClient
from mltrl_operator.k8s.connection import discover, from_kubeconfig
from mltrl_operator.webhooks.certs import make_serving_certificate
from mltrl_operator.webhooks.cluster import KubeClusterState
from mltrl_operator.webhooks.config import WebhookConfig, WebhookConfigError, webhook_config
from mltrl_operator.webhooks.configuration import operator_username, webhook_configurations
from mltrl_operator.webhooks.server import WebhookServer

if TYPE_CHECKING:
    from mltrl_operator.sandbox.server import SandboxServer


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    if not verbose:
        # kopf narrates every watch event at INFO; our own events say what matters.
        logging.getLogger("kopf").setLevel(logging.WARNING)
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)


def _receiver_config(args: argparse.Namespace) -> ReceiverConfig | None:
    if args.alerts_port is None:
        return None
    return ReceiverConfig(
        port=args.alerts_port,
        host=args.alerts_host,
        token=TokenSource.from_options(args.alerts_token_file),
        tls=tls_files(args.alerts_tls_cert, args.alerts_tls_key, args.alerts_client_ca),
        technology_label=args.alerts_technology_label,
        namespace_label=args.alerts_namespace_label,
        inference_service_label=args.alerts_inferenceservice_label,
        max_body_bytes=args.alerts_max_body_bytes,
    )


def _services(args: argparse.Namespace) -> list[Service]:
    """What runs beside kopf; raises ConfigError before anything has started."""
    config = _receiver_config(args)
    if config is None:
        return []

    def receiver(client: KubeClient, clock: Clock) -> AlertReceiver:
        return AlertReceiver(config, client, clock)

    return [receiver]


def _webhook_service(config: WebhookConfig) -> Service:
    def webhooks(client: KubeClient, clock: Clock) -> WebhookServer:
        return WebhookServer(config, KubeClusterState(client), clock)

    return webhooks


def _webhook_services(args: argparse.Namespace) -> list[Service]:
    """The admission webhooks, when --webhook-port is given; raises WebhookConfigError."""
    config = webhook_config(
        args.webhook_port, args.webhook_cert, args.webhook_key,
        host=args.webhook_host, trusted_groups=args.webhook_trusted_group,
    )
    return [] if config is None else [_webhook_service(config)]


async def _run(args: argparse.Namespace) -> int:
    services = [*_services(args), *_webhook_services(args)]
    stop = asyncio.Event()
    _stop_on_signals(stop)
    await run_operator(
        discover(args.kubeconfig, args.context),
        stop_flag=stop,
        liveness_endpoint=args.liveness,
        metrics_port=args.metrics_port,
        metrics_host=args.metrics_host,
        services=services,
        peering=args.peering,
        # Replicas of equal priority would all pause each other: make each one distinct.
        priority=args.priority if args.priority is not None else random.randint(1, 2**31 - 1),
    )
    return 0


SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
DEFAULT_PEERING = "mltrl-operator"


def _sandbox_users(args: argparse.Namespace) -> dict[str, tuple[str, list[str]]]:
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


async def _sandbox(args: argparse.Namespace) -> int:
    from mltrl_operator.sandbox.crds import default_crd_documents
    from mltrl_operator.sandbox.kserve import KServeStandIn
    from mltrl_operator.sandbox.server import SandboxServer

    if args.webhooks and args.no_operator:
        raise WebhookConfigError("--webhooks runs the webhooks in the operator: drop --no-operator")
    services = [] if args.no_operator else _services(args)
    users = _sandbox_users(args)
    tokens: dict[str, tuple[str, list[str]]] | None = None
    if users:
        tokens = {"admin-token": ("admin", ["system:masters"])}
        tokens.update({token: (name, groups) for name, (token, groups) in users.items()})
    server = SandboxServer(
        default_crd_documents(None) + crdgen.crd_documents(), port=args.port,
        tokens=tokens, tls=args.tls or bool(users),
    )
    await server.start()
    kubeconfig = server.write_kubeconfig(
        Path(args.dir) / "kubeconfig", others={name: token for name, (token, _) in users.items()}
    ).resolve()
    stop = asyncio.Event()
    _stop_on_signals(stop)
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


def _crds(args: argparse.Namespace) -> int:
    for path in crdgen.write(Path(args.directory)):
        print(f"wrote {path}")
    return 0


def _add_monitoring(command: argparse.ArgumentParser) -> None:
    group = command.add_argument_group("monitoring")
    group.add_argument(
        "--metrics-port", type=int, default=None,
        help="serve Prometheus metrics at :PORT/metrics (default: off)",
    )
    group.add_argument("--metrics-host", default="0.0.0.0", help="address for the metrics")
    group.add_argument(
        "--alerts-port", type=int, default=None,
        help="serve the Alertmanager webhook receiver at :PORT/alerts (default: off)",
    )
    group.add_argument("--alerts-host", default="0.0.0.0", help="address for the receiver")
    group.add_argument(
        "--alerts-token-file", default=None,
        help=f"file holding the bearer token Alertmanager must send (or ${TOKEN_ENV}); "
        "the receiver refuses to start without one",
    )
    group.add_argument("--alerts-tls-cert", default=None, help="serve the receiver over TLS")
    group.add_argument("--alerts-tls-key", default=None, help="the TLS certificate's key")
    group.add_argument(
        "--alerts-client-ca", default=None,
        help="require client certificates signed by this CA (mTLS)",
    )
    group.add_argument(
        "--alerts-technology-label", default=DEFAULT_TECHNOLOGY_LABEL,
        help="alert label naming the MLTechnology (default: %(default)s)",
    )
    group.add_argument(
        "--alerts-namespace-label", default=DEFAULT_NAMESPACE_LABEL,
        help="alert label naming its namespace (default: %(default)s)",
    )
    group.add_argument(
        "--alerts-inferenceservice-label", default=DEFAULT_INFERENCE_SERVICE_LABEL,
        help="alert label naming an InferenceService, whose mltrl.dev/technology label "
        "names the technology (default: %(default)s)",
    )
    group.add_argument(
        "--alerts-max-body-bytes", type=int, default=MAX_BODY_BYTES,
        help="larger notifications are refused with 413 (default: %(default)s)",
    )


def _add_webhooks(command: argparse.ArgumentParser) -> None:
    group = command.add_argument_group("admission webhooks")
    group.add_argument(
        "--webhook-port", type=int, default=None,
        help="serve the admission webhooks over HTTPS at :PORT (default: off)",
    )
    group.add_argument("--webhook-host", default="0.0.0.0", help="address for the webhooks")
    group.add_argument("--webhook-cert", default=None, help="the serving certificate (PEM)")
    group.add_argument("--webhook-key", default=None, help="the certificate's key (PEM)")
    _add_trusted_group(group)


def _add_trusted_group(group: Any) -> None:
    group.add_argument(
        "--webhook-trusted-group", action="append", default=[], metavar="GROUP",
        help="members may record LevelReview approvals in other reviewers' names, e.g. "
        "system:serviceaccounts:ci (repeatable; default: nobody)",
    )


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="mltrl", description="ML Technology Readiness Levels on Kubernetes."
    )
    root.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    commands = root.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the operator against a cluster")
    run.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, in-cluster)")
    run.add_argument("--context", help="kubeconfig context to use")
    run.add_argument(
        "--liveness", default=None, help="serve kopf's liveness probe, e.g. http://0.0.0.0:8080/healthz"
    )
    run.add_argument(
        "--peering", nargs="?", const=DEFAULT_PEERING, default=None, metavar="NAME",
        help="high availability: take part in the kopf ClusterKopfPeering NAME (default "
        f"{DEFAULT_PEERING}); only the live replica of highest priority acts",
    )
    run.add_argument(
        "--priority", type=int, default=None,
        help="this replica's peering priority (default: random, so replicas differ)",
    )
    _add_monitoring(run)
    _add_webhooks(run)

    sandbox = commands.add_parser(
        "sandbox", help="start a local sandbox API server with the operator running in it"
    )
    sandbox.add_argument("--port", type=int, default=8001, help="port to listen on (0: any)")
    sandbox.add_argument("--dir", default=".sandbox", help="where to write the kubeconfig")
    sandbox.add_argument("--no-operator", action="store_true", help="start the API server only")
    sandbox.add_argument(
        "--no-kserve", action="store_true",
        help="do not run the stand-in that marks InferenceServices Ready",
    )
    sandbox.add_argument(
        "--tls", action="store_true",
        help="serve HTTPS with a made-up CA (in the kubeconfig); implied by --user",
    )
    sandbox.add_argument(
        "--user", action="append", default=[], metavar="NAME[=GROUP,...]",
        help="a user kubectl can act as (--user NAME): adds a token user and a context of "
        "that name to the kubeconfig; repeatable. Service accounts "
        "(system:serviceaccount:NS:NAME) get their groups",
    )
    webhooks = sandbox.add_argument_group("admission webhooks")
    webhooks.add_argument(
        "--webhooks", action="store_true",
        help="run the admission webhooks in the operator (as its service account "
        f"{operator_username()}) and register them with the sandbox; implies --tls",
    )
    _add_trusted_group(webhooks)
    _add_monitoring(sandbox)

    crds = commands.add_parser("crds", help="regenerate the CRDs from the API models")
    crds.add_argument("directory", nargs="?", default="crds")
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    _configure_logging(args.verbose)
    if args.command == "crds":
        return _crds(args)
    runner = {"run": _run, "sandbox": _sandbox}[args.command]
    try:
        return asyncio.run(runner(args))
    except (ConfigError, WebhookConfigError) as error:
        print(f"mltrl {args.command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
