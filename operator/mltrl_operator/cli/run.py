"""`mltrl run`: the operator against a cluster."""

from __future__ import annotations

import argparse
import asyncio
import logging
import random

import aiohttp

from mltrl_operator.cli.clock import operator_clock
from mltrl_operator.cli.process import stop_on_signals
from mltrl_operator.cli.services import alert_services, webhook_services
from mltrl_operator.controllers.runtime import run_operator
from mltrl_operator.k8s.client import Etiquette, KubeClient
from mltrl_operator.k8s.connection import Connection, CredentialsError, load_connection
from mltrl_operator.k8s.errors import ApiError, Unauthorized

logger = logging.getLogger(__name__)


async def check_credentials(connection: Connection, etiquette: Etiquette) -> None:
    """One request before anything starts, so credentials the API server refuses stop
    `mltrl run` with one line, rather than kopf retrying them forever."""
    async with KubeClient(connection, etiquette=etiquette) as client:
        try:
            await client.request("GET", "/version")
        except Unauthorized:
            raise CredentialsError(
                f'context "{connection.context}": the API server at {connection.server} '
                "refused the credentials (401 Unauthorized)"
            ) from None
        except (ApiError, aiohttp.ClientError, TimeoutError) as error:
            # Not a credentials problem: kopf keeps trying, as a pod started before its
            # API server is reachable must.
            logger.warning("the API server at %s did not answer yet: %s", connection.server,
                           error)


async def run(args: argparse.Namespace) -> int:
    services = [*alert_services(args), *webhook_services(args)]
    stop = asyncio.Event()
    reclaim_signals = stop_on_signals(stop)
    # Off the event loop: loading may run an exec credential plugin.
    connection = await asyncio.to_thread(load_connection, args.kubeconfig, args.context)
    etiquette = Etiquette(qps=args.qps, burst=args.burst, timeout=args.request_timeout)
    await check_credentials(connection, etiquette)
    await run_operator(
        connection,
        stop_flag=stop,
        liveness_endpoint=args.liveness,
        clock=operator_clock(args.clock_file),
        metrics_port=args.metrics_port,
        metrics_host=args.metrics_host,
        services=services,
        peering=args.peering,
        # Replicas of equal priority would all pause each other: make each one distinct.
        priority=args.priority if args.priority is not None else random.randint(1, 2**31 - 1),
        etiquette=etiquette,
        reclaim_signals=reclaim_signals,
    )
    return 0
