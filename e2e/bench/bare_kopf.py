"""The baseline: a bare kopf operator with one handler that does nothing but acknowledge.

    python -m e2e.bench.bare_kopf --kubeconfig FILE --liveness http://127.0.0.1:PORT/healthz

It watches the same MLTechnologies and LevelReviews as the operator, and for every object
whose status.observedGeneration lags its metadata.generation it sets that one field, with
kopf's own patch. So its reaction to a write is what any kopf handler costs on this API
server: the watch event in, kopf's per-object worker, one PATCH out. Settings are kopf's
defaults except those the operator also changes that shape the traffic (standalone,
cluster-wide, no kopf events posted, the same watch timeouts).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from pathlib import Path
from typing import Any

import kopf
import yaml

GROUP, VERSION = "mltrl.dev", "v1alpha1"


def build_registry(server: str, token: str | None, *, index: bool = False) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(
            server=server, token=token, scheme="Bearer" if token else None
        )

    @kopf.on.event(GROUP, VERSION, "mltechnologies", registry=registry)
    @kopf.on.event(GROUP, VERSION, "levelreviews", registry=registry)
    def acknowledge(
        event: kopf.RawEvent, meta: kopf.Meta, status: kopf.Status, patch: kopf.Patch,
        **_: Any,
    ) -> None:
        if event.get("type") == "DELETED":
            return
        generation = meta.get("generation")
        if status.get("observedGeneration") != generation:
            patch.status["observedGeneration"] = generation

    if index:
        # Only to show what kopf's index pre-population costs by itself at start-up.
        @kopf.index(GROUP, VERSION, "mltechnologies", registry=registry)
        @kopf.index(GROUP, VERSION, "levelreviews", registry=registry)
        async def names(namespace: str | None, name: str, **_: Any) -> dict[Any, Any]:
            return {namespace: name}

    return registry


def settings() -> kopf.OperatorSettings:
    configured = kopf.OperatorSettings()
    configured.posting.enabled = False
    configured.watching.server_timeout = 300
    configured.watching.client_timeout = 330
    configured.networking.request_timeout = 30
    return configured


def _connection(kubeconfig: Path) -> tuple[str, str | None]:
    config = yaml.safe_load(kubeconfig.read_text())
    context = next(c for c in config["contexts"] if c["name"] == config["current-context"])
    cluster = next(c for c in config["clusters"] if c["name"] == context["context"]["cluster"])
    user = next(u for u in config["users"] if u["name"] == context["context"]["user"])
    return str(cluster["cluster"]["server"]), user.get("user", {}).get("token")


async def run(kubeconfig: Path, liveness: str | None, index: bool = False) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server, token = _connection(kubeconfig)
    await kopf.operator(
        registry=build_registry(server, token, index=index),
        settings=settings(),
        clusterwide=True,
        standalone=True,
        stop_flag=stop,
        liveness_endpoint=liveness,
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m e2e.bench.bare_kopf")
    parser.add_argument("--kubeconfig", required=True, type=Path)
    parser.add_argument("--liveness", default=None)
    parser.add_argument("--index", action="store_true",
                        help="also keep a kopf index of both kinds (an experiment)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(args.kubeconfig, args.liveness, args.index))


if __name__ == "__main__":
    main()
