"""Run the operator: kopf embedded in our own event loop, with our client and settings."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

import kopf

from mltrl_operator.controllers.context import OperatorContext, utc_now
from mltrl_operator.controllers.handlers import build_registry
from mltrl_operator.controllers.settings import configure
from mltrl_operator.k8s.client import KubeClient
from mltrl_operator.k8s.connection import Connection


async def run_operator(
    connection: Connection,
    *,
    stop_flag: asyncio.Event | None = None,
    ready_flag: asyncio.Event | None = None,
    liveness_endpoint: str | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> None:
    client = KubeClient(connection)
    context = OperatorContext(client=client, clock=clock)
    try:
        await kopf.operator(
            registry=build_registry(connection),
            settings=configure(kopf.OperatorSettings()),
            memo=kopf.Memo(ctx=context),
            clusterwide=True,
            standalone=True,
            stop_flag=stop_flag,
            ready_flag=ready_flag,
            liveness_endpoint=liveness_endpoint,
        )
    finally:
        await client.close()
