"""The sandbox API server in a process of its own, optionally seeded before it listens.

    python -m e2e.bench.sandbox_main --kubeconfig DIR/kubeconfig --ready DIR/ready \
        [--seed objects.json] [--latency READ_MS,WRITE_MS] [--max-requests-inflight N] ...

Seeding goes through the sandbox's own create path (defaulting, validation, admission) but
not through HTTP, so a 10,000-technology world is there in seconds; the request counters
are reset afterwards, so `/sandbox/stats` counts only what clients asked for. The ready
file, written last, holds the URL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import time
from pathlib import Path
from typing import Any

from mltrl_operator.api import crdgen
from mltrl_sandbox.crds import default_crd_documents
from mltrl_sandbox.faults import from_options as faults_from_options
from mltrl_sandbox.inflight import add_inflight_options, limits_from_options
from mltrl_sandbox.server import SandboxServer, tune_garbage_collector

# Watchers that start from an older resourceVersion than the kept history get 410; with
# tens of thousands of objects written at start-up, keep more than the default.
HISTORY_LIMIT = 50_000


async def seed(server: SandboxServer, objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        rt = server.registry.by_kind(obj["apiVersion"], obj["kind"])
        assert rt is not None, f"the sandbox does not serve {obj['apiVersion']} {obj['kind']}"
        namespace = obj["metadata"].get("namespace") if rt.namespaced else None
        await server.api.create(rt, namespace, obj)


async def main(args: argparse.Namespace) -> None:
    server = SandboxServer(
        default_crd_documents(None) + crdgen.crd_documents(), port=0,
        history_limit=HISTORY_LIMIT,
        faults=faults_from_options(None, args.latency, 0), inflight=limits_from_options(args),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    started = time.perf_counter()
    await server.start()
    try:
        if args.seed:
            await seed(server, json.loads(Path(args.seed).read_text()))
        tune_garbage_collector()  # the seeded world stays: no collection walks it again
        server.stats.reset()
        server.write_kubeconfig(Path(args.kubeconfig))
        seconds = time.perf_counter() - started
        Path(args.ready).write_text(json.dumps({"url": server.url, "seed_seconds": seconds}))
        await stop.wait()
    finally:
        await server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m e2e.bench.sandbox_main")
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--ready", required=True)
    parser.add_argument("--seed", default=None, help="a JSON list of objects to create first")
    parser.add_argument("--latency", default=None, metavar="READ_MS,WRITE_MS",
                        help="as `mltrl sandbox --latency` (mltrl_sandbox.faults)")
    add_inflight_options(parser)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(parser.parse_args()))
