"""`python -m mltrl_sandbox`: run the sandbox API server in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from pathlib import Path

from mltrl_operator.cli.process import stop_on_signals

from .faults import from_options
from .inflight import add_inflight_options, limits_from_options
from .server import SandboxServer, serve_forever, tune_garbage_collector


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m mltrl_sandbox",
        description="An in-memory Kubernetes-compatible API server for tests and demos.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001, help="0 picks a free port")
    parser.add_argument(
        "--crds", type=Path, default=Path("crds"), help="directory of CRD *.yaml files"
    )
    parser.add_argument("--kubeconfig", type=Path, default=Path(".sandbox/kubeconfig"))
    parser.add_argument("--faults", default=None, metavar="RATE", help="see faults.py")
    parser.add_argument("--latency", default=None, metavar="READ_MS,WRITE_MS")
    parser.add_argument("--fault-seed", type=int, default=0)
    add_inflight_options(parser)
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO)

    def ready(server: SandboxServer) -> None:
        tune_garbage_collector()
        print(f"sandbox API server at {server.url}; kubeconfig: {args.kubeconfig}", flush=True)
        print(f"  export KUBECONFIG={args.kubeconfig.resolve()}", flush=True)

    async def serve() -> None:
        stop = asyncio.Event()
        stop_on_signals(stop)  # SIGINT or SIGTERM, even if inherited as ignored
        faults = from_options(args.faults, args.latency, args.fault_seed)
        await serve_forever(
            args.crds, args.host, args.port, args.kubeconfig, on_ready=ready, stop=stop,
            faults=faults, inflight=limits_from_options(args),
        )

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
