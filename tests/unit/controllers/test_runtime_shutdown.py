"""An operator that took longer than the grace to stop says so once, without the traceback
asyncio prints for kopf's watch generators closed after the cancel."""

from __future__ import annotations

import asyncio
from typing import Any

from kopf._cogs.clients.watching import infinite_watch

from mltrl_operator.controllers.runtime import quiet_kopf_watch_closing


async def _no_kopf() -> Any:
    yield None


def test_only_kopfs_watch_closing_is_quieted_and_everything_else_still_reported() -> None:
    loop = asyncio.new_event_loop()
    try:
        seen: list[str] = []
        loop.set_exception_handler(lambda _loop, context: seen.append(context["message"]))
        quiet_kopf_watch_closing(loop)
        kopfs = infinite_watch(settings=None, resource=None, namespace=None)  # type: ignore[arg-type]
        ours = _no_kopf()
        message = "an error occurred during closing of asynchronous generator"
        loop.call_exception_handler({"message": message, "asyncgen": kopfs,
                                     "exception": RuntimeError("didn't stop after athrow()")})
        loop.call_exception_handler({"message": message, "asyncgen": ours,
                                     "exception": RuntimeError("ours")})
        loop.call_exception_handler({"message": "Task exception was never retrieved"})
        assert seen == [message, "Task exception was never retrieved"]
    finally:
        loop.close()
