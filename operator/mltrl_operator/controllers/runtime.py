"""Run the operator: kopf embedded in our own event loop, with our client and settings."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any

import kopf
from aiohttp import web

from mltrl_operator.controllers.context import OperatorContext, utc_now
from mltrl_operator.controllers.handlers import build_registry
from mltrl_operator.controllers.settings import configure
from mltrl_operator.k8s.client import KubeClient
from mltrl_operator.k8s.connection import Connection
from mltrl_operator.metrics import metrics_app

Clock = Callable[[], datetime]
Service = Callable[[KubeClient, Clock], AbstractAsyncContextManager[Any]]
"""Something that runs beside kopf in the same loop with the operator's client, such as
the alert receiver; the entry point builds it, since controllers may not import it."""

logger = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def serve_metrics(host: str, port: int) -> AsyncIterator[web.AppRunner]:
    runner = web.AppRunner(metrics_app(), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        logger.info("metrics at http://%s:%d/metrics", host, port)
        yield runner
    finally:
        await runner.cleanup()


def tune_garbage_collector() -> None:
    """The operator holds every object of five kinds, nearly all of it plain JSON without
    reference cycles, so the collector's default pace (a full walk of the heap every few
    hundred thousand allocations) spent a fifth of the start-up at 10,000 technologies
    and stalled handlers for up to 100 ms (docs/benchmarks.md)."""
    # Imported modules, kopf and pydantic's schemas live as long as the process.
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


async def run_operator(
    connection: Connection,
    *,
    stop_flag: asyncio.Event | None = None,
    ready_flag: asyncio.Event | None = None,
    liveness_endpoint: str | None = None,
    clock: Clock = utc_now,
    metrics_port: int | None = None,
    metrics_host: str = "0.0.0.0",
    services: Sequence[Service] = (),
    peering: str | None = None,
    priority: int = 0,
) -> None:
    """Run until `stop_flag` is set. Without `peering` the operator is standalone: run one
    replica. With it, replicas meet in that ClusterKopfPeering and only the live one of
    highest priority handles events; the peering object must exist (the chart creates it)."""
    client = KubeClient(connection)
    context = OperatorContext(client=client, clock=clock)
    try:
        async with contextlib.AsyncExitStack() as stack:
            if metrics_port is not None:
                await stack.enter_async_context(serve_metrics(metrics_host, metrics_port))
            for service in services:
                await stack.enter_async_context(service(client, clock))
            tune_garbage_collector()
            settings = configure(kopf.OperatorSettings())
            settings.peering.mandatory = peering is not None
            await kopf.operator(
                registry=build_registry(connection),
                settings=settings,
                memo=kopf.Memo(ctx=context),
                clusterwide=True,
                standalone=peering is None,
                peering_name=peering,
                priority=priority,
                stop_flag=stop_flag,
                ready_flag=ready_flag,
                liveness_endpoint=liveness_endpoint,
            )
    finally:
        await context.retries.close()
        await context.wakeups.close()
        await client.close()
