"""Run the operator: kopf embedded in our own event loop, with our client and settings."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any

import kopf
from aiohttp import web

from mltrl_operator.controllers.context import OperatorContext, utc_now
from mltrl_operator.controllers.handlers import build_registry, reconcile_key
from mltrl_operator.controllers.settings import configure
from mltrl_operator.controllers.technology import TechnologiesForServices
from mltrl_operator.controllers.workqueue import Pause
from mltrl_operator.k8s.client import Etiquette, KubeClient
from mltrl_operator.k8s.connection import Connection
from mltrl_operator.k8s.lookups import OperatorTechnologies
from mltrl_operator.metrics import metrics_app

Clock = Callable[[], datetime]
Service = Callable[[KubeClient, Clock, OperatorTechnologies], AbstractAsyncContextManager[Any]]
"""Something that runs beside kopf in the same loop with the operator's client and cache,
such as the alert receiver; the entry point builds it, since controllers may not import
it."""

logger = logging.getLogger(__name__)


HANDLER_GRACE_SECONDS = 2.0
"""After a stop, how long kopf's handlers and requests in flight may take to finish before
they are cancelled (kopf's own wait is 5 s, the whole stop's budget: docs/operations.md)."""


def kopf_pause(tasks: Collection[asyncio.Task[Any]]) -> Pause | None:
    """kopf's `operator_paused` toggles (on while a peer of higher priority holds the
    peering, or the peering is missing), which kopf 1.45 does not expose: read from the
    arguments of the tasks spawn_tasks made (as given; a guarded task's coroutine holds
    the guarded one as `coro`). Our workers take no key while it is on."""
    for task in tasks:
        coroutine: Any = task.get_coro()
        for _ in range(2):
            frame = getattr(coroutine, "cr_frame", None)
            if frame is None:
                break
            found = frame.f_locals.get("operator_paused")
            if found is not None and callable(getattr(found, "is_on", None)):
                return found  # type: ignore[no-any-return]
            coroutine = frame.f_locals.get("coro")
    return None


async def run_kopf_until_stopped(
    tasks: Collection[asyncio.Task[Any]], ignored: Collection[asyncio.Task[Any]],
    stop_flag: asyncio.Event | None, on_stop: Callable[[], None] = lambda: None,
) -> None:
    """kopf.run_tasks, but once `stop_flag` is set, kopf gets HANDLER_GRACE_SECONDS to
    wind down; then it is cancelled, which it answers by cancelling what is left (a
    request retrying against an API server that has gone, say). `on_stop` is called as
    soon as the stop flag is seen."""
    runner = asyncio.create_task(kopf.run_tasks(tasks, ignored=ignored), name="kopf")
    if stop_flag is None:
        await runner
        return
    stopped = asyncio.create_task(stop_flag.wait(), name="stop flag")
    try:
        await asyncio.wait({runner, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if stopped.done():
            on_stop()
        if not runner.done():
            await asyncio.wait({runner}, timeout=HANDLER_GRACE_SECONDS)
        if not runner.done():
            logger.info("kopf did not stop within %gs: cancelling what is left",
                        HANDLER_GRACE_SECONDS)
            quiet_kopf_watch_closing(asyncio.get_running_loop())
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
            return
        await runner
    finally:
        stopped.cancel()


def _is_kopf_watch_closing(context: dict[str, Any]) -> bool:
    generator = context.get("asyncgen")
    code = getattr(generator, "ag_code", None)
    return code is not None and f"{os.sep}kopf{os.sep}" in code.co_filename


def quiet_kopf_watch_closing(loop: asyncio.AbstractEventLoop) -> None:
    """kopf cancelled mid-stream leaves its watch generators (infinite_watch) to be closed
    by the loop, and their pause context awaits inside that close, which asyncio reports
    with a traceback ("generator didn't stop after athrow()"): nothing is lost (the process
    is ending, the watch held no work), but an operator that merely took more than the
    grace to stop under load must not print a traceback. From the cancel on, that one
    report is logged at debug; any other goes to the handler as before."""
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if _is_kopf_watch_closing(context):
            logger.debug("kopf's watch closed after the cancel: %s", context.get("message"))
        elif previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


class NotKopfs(Collection[asyncio.Task[Any]]):
    """The tasks kopf's shutdown must leave alone: those running before it started (as
    kopf.operator() does; we call its two halves to re-take the signals in between), and
    any not running kopf's own code. kopf waits up to 5 s for every other task in the loop
    to finish, and an idle keep-alive connection to our webhook or alerts server (the API
    server keeps them open) never does: SIGTERM would then take over 5 s. Our servers
    close their own connections when kopf returns."""

    def __init__(self) -> None:
        self._before = set(asyncio.all_tasks())

    def __contains__(self, task: object) -> bool:
        if task in self._before:
            return True
        if not isinstance(task, asyncio.Task):
            return False
        code = getattr(task.get_coro(), "cr_code", None)
        return code is None or f"{os.sep}kopf{os.sep}" not in code.co_filename

    def __iter__(self) -> Iterator[asyncio.Task[Any]]:
        return iter(self._before)

    def __len__(self) -> int:
        return len(self._before)


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


EXPIRY_MARGIN_SECONDS = 300.0
"""kopf logs in again this long before an exec credential expires, as the package does."""


def connection_info(connection: Connection) -> kopf.ConnectionInfo:
    """What kopf needs to connect, from the credentials our own client uses right now."""
    scheme, _, token = (connection.headers().get("Authorization") or "").partition(" ")
    expiry = connection.expiry() if connection.loader is not None else None
    expiration = None
    if expiry is not None and connection.context != "in-cluster":
        renew_at = max(time.time() + 10, expiry - EXPIRY_MARGIN_SECONDS)
        expiration = datetime.fromtimestamp(renew_at, UTC)
    return kopf.ConnectionInfo(
        server=connection.server,
        scheme=scheme or None,
        token=token or None,
        ca_path=connection.ca_file,
        insecure=connection.insecure,
        certificate_path=connection.cert_file,
        private_key_path=connection.key_file,
        default_namespace=connection.default_namespace,
        proxy_url=connection.effective_proxy(),
        expiration=expiration,
    )


def install_login(registry: kopf.OperatorRegistry, connection: Connection) -> None:
    """kopf logs in through the same credentials as our client, never a frozen copy.

    kopf calls this at start, when the credential it was given expires, and after any 401
    it meets: the first call takes the credentials just loaded; an expiry asks the package
    for the current ones (which re-runs an exec plugin); a 401 logs in afresh."""
    handed_out: list[kopf.ConnectionInfo] = []

    @kopf.on.login(registry=registry)
    async def login(**_: object) -> kopf.ConnectionInfo:
        if handed_out:
            last = handed_out[-1].expiration
            if last is not None and datetime.now(UTC) >= last:
                connection.recheck()
                await connection.authorization()
            else:
                await connection.relogin()
        info = connection_info(connection)
        handed_out[:] = [info]
        return info


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
    etiquette: Etiquette | None = None,
    reclaim_signals: Callable[[], None] | None = None,
) -> None:
    """Run until `stop_flag` is set. Without `peering` the operator is standalone: run one
    replica. With it, replicas meet in that ClusterKopfPeering and only the live one of
    highest priority handles events; the peering object must exist (the chart creates it).

    `reclaim_signals` puts the caller's SIGINT/SIGTERM handlers back once kopf has
    installed its own (which fail on a second signal and know nothing of our deadline)."""
    if connection.tls_server_name:
        logger.warning("tls-server-name %s: kopf's own connection cannot set it; its TLS "
                       "check uses the server's host name", connection.tls_server_name)
    client = KubeClient(connection, etiquette=etiquette)
    context = OperatorContext(client=client, clock=clock)
    try:
        async with contextlib.AsyncExitStack() as stack:
            if metrics_port is not None:
                await stack.enter_async_context(serve_metrics(metrics_host, metrics_port))
            cached = TechnologiesForServices(context)
            for service in services:
                await stack.enter_async_context(service(client, clock, cached))
            tune_garbage_collector()
            settings = configure(kopf.OperatorSettings())
            settings.peering.mandatory = peering is not None
            registry = build_registry()
            install_login(registry, connection)
            existing = NotKopfs()
            tasks = await kopf.spawn_tasks(
                registry=registry,
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
            if reclaim_signals is not None:
                reclaim_signals()
            pause = kopf_pause(tasks)
            if pause is None and peering is not None:
                raise RuntimeError("kopf's pause toggles were not found: with peering, "
                                   "a paused replica's workers would go on reconciling")
            context.queue.start(lambda key: reconcile_key(context, key), pause=pause)
            await run_kopf_until_stopped(tasks, existing, stop_flag, context.queue.stop)
    finally:
        # Reconciles under way had kopf's grace; what is left is cut short.
        await context.queue.close()
        await context.retries.close()
        await context.wakeups.close()
        await client.close()
