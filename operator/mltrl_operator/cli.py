"""`mltrl`: run the operator, start the sandbox, or regenerate the CRDs."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

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


async def _run(args: argparse.Namespace) -> int:
    services = _services(args)
    stop = asyncio.Event()
    _stop_on_signals(stop)
    await run_operator(
        discover(args.kubeconfig, args.context),
        stop_flag=stop,
        liveness_endpoint=args.liveness,
        metrics_port=args.metrics_port,
        metrics_host=args.metrics_host,
        services=services,
    )
    return 0


async def _sandbox(args: argparse.Namespace) -> int:
    from mltrl_operator.sandbox.crds import default_crd_documents
    from mltrl_operator.sandbox.kserve import KServeStandIn
    from mltrl_operator.sandbox.server import SandboxServer

    services = [] if args.no_operator else _services(args)
    server = SandboxServer(
        default_crd_documents(None) + crdgen.crd_documents(), port=args.port
    )
    await server.start()
    kubeconfig = server.write_kubeconfig(Path(args.dir) / "kubeconfig").resolve()
    stop = asyncio.Event()
    _stop_on_signals(stop)
    connection = from_kubeconfig(kubeconfig)
    tasks = []
    if not args.no_kserve:
        tasks.append(asyncio.create_task(KServeStandIn(connection).run(stop)))
    if not args.no_operator:
        tasks.append(asyncio.create_task(run_operator(
            connection, stop_flag=stop, metrics_port=args.metrics_port,
            metrics_host=args.metrics_host, services=services,
        )))
    print(f"Sandbox API server listening on {server.url}", flush=True)
    print(
        "Operator: " + ("not started (--no-operator)" if args.no_operator else "running"),
        flush=True,
    )
    print(f"\n    export KUBECONFIG={kubeconfig}\n", flush=True)
    print("Then try: kubectl apply -f manifests/examples/ && kubectl get mltech", flush=True)
    print("Press Ctrl-C to stop.", flush=True)
    await stop.wait()
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
    _add_monitoring(run)

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
    except ConfigError as error:
        print(f"mltrl {args.command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
