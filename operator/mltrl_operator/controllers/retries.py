"""Retries with backoff for reconciles that failed.

kopf does not retry event handlers, and a failure (the API server briefly down, a Job
that could not be created) must not wait for the object's next change to be tried again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Hashable

logger = logging.getLogger(__name__)

Action = Callable[[], Awaitable[None]]


class Retries:
    def __init__(self, *, first_delay: float = 1.0, max_delay: float = 60.0) -> None:
        self._first = first_delay
        self._max = max_delay
        self._pending: dict[Hashable, asyncio.Task[None]] = {}
        self._attempts: dict[Hashable, int] = {}

    def delay_for(self, key: Hashable) -> float:
        attempts = self._attempts.get(key, 0)
        return float(min(self._max, self._first * 2**attempts))

    def schedule(self, key: Hashable, action: Action) -> None:
        """Run `action` again after a backoff; one pending retry per key at most."""
        if key in self._pending:
            return
        delay = self.delay_for(key)
        self._attempts[key] = self._attempts.get(key, 0) + 1

        async def later() -> None:
            await asyncio.sleep(delay)
            self._pending.pop(key, None)
            await action()

        self._pending[key] = asyncio.get_running_loop().create_task(later())

    def succeeded(self, key: Hashable) -> None:
        self._attempts.pop(key, None)

    def pending(self) -> int:
        return len(self._pending)

    async def close(self) -> None:
        tasks = list(self._pending.values())
        self._pending.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
