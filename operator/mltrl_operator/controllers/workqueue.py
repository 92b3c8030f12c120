"""Our own work queue of keys, in controller-runtime's model (issue 17).

kopf gives every object a worker that holds the object's raw watch events until its
handler returns. When the handler did the whole reconcile, every object listed at start-up
(with managedFields, as a real API server sends them) stayed in memory until it had been
reconciled, and each of our own writes came back as one more event to hold: peak memory
followed the length of the start-up. So the handlers only bring the cache up to the event
and add a key here; a fixed number of our own workers reconcile keys from the cache.

What the queue guarantees, as client-go's workqueue does:
- a key already waiting is not queued twice, so repeated events for one object (our own
  write coming back, a technology's event and its review's) are one reconcile;
- one key is never reconciled by two workers at once;
- a key added while it is being reconciled is queued again once that reconcile is over,
  so a change seen mid-reconcile is never lost;
- while kopf is paused (a peer of higher priority took over the peering) no key is taken,
  and once stopped none is: keys left waiting are not lost, since a replica that resumes
  or restarts lists every object again and queues it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Protocol

logger = logging.getLogger(__name__)

WORKERS = 64
"""Reconciles at once. Each mostly waits on its own requests in sequence; the client sends
at most Etiquette.in_flight (100) at once, so more workers would only queue there."""

Reconcile = Callable[[Hashable], Awaitable[None]]


class Pause(Protocol):
    """What the queue needs of kopf's pause (its `operator_paused` ToggleSet)."""

    def is_on(self) -> bool: ...

    async def wait_for(self, state: bool, /) -> None: ...


_STOP = object()


class WorkQueue:
    def __init__(self) -> None:
        self._keys: asyncio.Queue[object] = asyncio.Queue()
        self._queued: set[Hashable] = set()  # in _keys, or taken but not started
        self._running: set[Hashable] = set()
        self._again: set[Hashable] = set()  # added while being reconciled
        self._workers: list[asyncio.Task[None]] = []
        self._pause: Pause | None = None
        self._stopped = False

    # --- producers ------------------------------------------------------------------------

    def add(self, key: Hashable) -> None:
        """Queue `key` unless it is already waiting; if it is being reconciled, queue it
        again once that reconcile is over. Never blocks: kopf's handler returns at once."""
        if self._stopped:
            return
        if key in self._running:
            self._again.add(key)
            return
        if key in self._queued:
            return
        self._queued.add(key)
        self._keys.put_nowait(key)

    # --- workers --------------------------------------------------------------------------

    def start(self, reconcile: Reconcile, *, workers: int = WORKERS,
              pause: Pause | None = None) -> None:
        """Start the workers; `pause`, when given, is kopf's: no key is taken while on."""
        self._pause = pause
        loop = asyncio.get_running_loop()
        self._workers = [
            loop.create_task(self._work(reconcile), name=f"mltrl worker {number}")
            for number in range(workers)
        ]

    async def _take(self) -> Hashable | None:
        key = await self._keys.get()
        if self._pause is not None and self._pause.is_on():
            # Held (still counted as waiting, so not queued twice) until kopf resumes.
            await self._pause.wait_for(False)
        if self._stopped or key is _STOP:
            return None
        assert isinstance(key, Hashable)
        self._queued.discard(key)
        self._running.add(key)
        return key

    async def _work(self, reconcile: Reconcile) -> None:
        while (key := await self._take()) is not None:
            try:
                await reconcile(key)
            except Exception:  # one broken key must not stop a worker
                logger.exception("reconciling %r failed", key)
            finally:
                self._running.discard(key)
                if key in self._again:
                    self._again.discard(key)
                    self.add(key)

    # --- stopping -------------------------------------------------------------------------

    def stop(self) -> None:
        """Take no more keys; reconciles under way go on until `close`."""
        if self._stopped:
            return
        self._stopped = True
        for _ in self._workers:
            self._keys.put_nowait(_STOP)  # wakes every worker waiting for a key

    async def close(self, grace: float = 0.0) -> None:
        """Stop, give reconciles under way `grace` seconds, then cancel what is left (a
        reconcile cut short is a crash between two steps, which the next one repairs)."""
        self.stop()
        workers, self._workers = self._workers, []
        if not workers:
            return
        left: set[asyncio.Task[None]] = set(workers)
        if grace > 0:
            _, left = await asyncio.wait(workers, timeout=grace)
        for task in left:
            task.cancel()
        for task in left:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # --- observing ------------------------------------------------------------------------

    def waiting(self) -> int:
        """Keys waiting (not those being reconciled)."""
        return len(self._queued)

    def busy(self) -> int:
        return len(self._running)
