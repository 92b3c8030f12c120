"""Timers for instants the domain names: a waiver's expiry, a level's warning or lapse.

A decision that changes by itself at some instant (`wake_at`) is re-made at that instant,
not at the next resync. The timer asks the operator's clock rather than trusting one long
sleep: it naps at most `nap` seconds at a time, so a clock moved by hand in a test
(`mltrl run --clock-file`) or a machine resumed from suspend is noticed within a nap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Hashable
from datetime import datetime

logger = logging.getLogger(__name__)

Action = Callable[[], Awaitable[None]]


class Wakeups:
    def __init__(self, *, nap: float = 1.0) -> None:
        self._nap = nap
        self._timers: dict[Hashable, tuple[datetime, asyncio.Task[None]]] = {}

    def at(
        self, key: Hashable, when: datetime, clock: Callable[[], datetime], action: Action
    ) -> None:
        """Run `action` once `clock()` reaches `when`; one timer per key, the latest call
        replacing an earlier one for another instant."""
        current = self._timers.get(key)
        if current is not None:
            if current[0] == when and not current[1].done():
                return
            current[1].cancel()

        async def wait_then_act() -> None:
            while (remaining := (when - clock()).total_seconds()) > 0:
                await asyncio.sleep(min(remaining, self._nap))
            if self._timers.get(key, (None, None))[1] is asyncio.current_task():
                del self._timers[key]
            try:
                await action()
            except Exception:  # a timer must not die silently, nor kill the loop
                logger.exception("the timer %r for %s failed", key, when.isoformat())

        self._timers[key] = (when, asyncio.get_running_loop().create_task(wait_then_act()))

    def cancel(self, key: Hashable) -> None:
        current = self._timers.pop(key, None)
        if current is not None:
            current[1].cancel()

    def pending(self) -> dict[Hashable, datetime]:
        return {key: when for key, (when, task) in self._timers.items() if not task.done()}

    async def close(self) -> None:
        timers = [task for _, task in self._timers.values()]
        self._timers.clear()
        for task in timers:
            task.cancel()
        for task in timers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
