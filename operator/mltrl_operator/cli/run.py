"""`mltrl run`: the operator against a cluster."""

from __future__ import annotations

import argparse
import asyncio
import random

from mltrl_operator.cli.clock import operator_clock
from mltrl_operator.cli.process import stop_on_signals
from mltrl_operator.cli.services import alert_services, webhook_services
from mltrl_operator.controllers.runtime import run_operator
from mltrl_operator.k8s.connection import discover


async def run(args: argparse.Namespace) -> int:
    services = [*alert_services(args), *webhook_services(args)]
    stop = asyncio.Event()
    stop_on_signals(stop)
    await run_operator(
        discover(args.kubeconfig, args.context),
        stop_flag=stop,
        liveness_endpoint=args.liveness,
        clock=operator_clock(args.clock_file),
        metrics_port=args.metrics_port,
        metrics_host=args.metrics_host,
        services=services,
        peering=args.peering,
        # Replicas of equal priority would all pause each other: make each one distinct.
        priority=args.priority if args.priority is not None else random.randint(1, 2**31 - 1),
    )
    return 0
