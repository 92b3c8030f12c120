"""An experiment, never shipped: `mltrl run` with kopf's start-up gate made linear.

    python -m e2e.bench.kopf_gate run --kubeconfig ... (the same arguments as `mltrl`)

kopf 1.45 holds every object's worker until every index is populated. Each worker waits
on one asyncio.Condition shared by the whole operator, and every object that is listed or
indexed notifies it, so each notification wakes every worker already waiting: the
start-up costs O(n^2) wake-ups in the number of objects of indexed kinds. This module
replaces that wait, inside the benchmark's operator process only, with one event per
state that is set when the set's state flips, so each worker wakes once. Everything else
is kopf's and ours, unchanged. It exists to measure how much of the start-up is that gate.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from kopf._cogs.aiokits import aiotoggles


class _GateCondition(asyncio.Condition):
    """The set's condition; each notification also re-evaluates the set once."""

    def __init__(self, toggles: aiotoggles.ToggleSet) -> None:
        super().__init__()
        self.toggles = toggles
        self.states = {True: asyncio.Event(), False: asyncio.Event()}

    def refresh(self) -> None:
        on = self.toggles.is_on()
        self.states[on].set()
        self.states[not on].clear()

    def notify_all(self) -> None:
        self.refresh()
        super().notify_all()


def patch() -> None:
    original_init = aiotoggles.ToggleSet.__init__

    def __init__(self: aiotoggles.ToggleSet, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        condition = _GateCondition(self)
        condition.refresh()
        self._condition = condition

    async def wait_for(self: aiotoggles.ToggleSet, state: bool) -> None:
        condition = self._condition
        assert isinstance(condition, _GateCondition)
        while self.is_on() != bool(state):
            await condition.states[bool(state)].wait()

    aiotoggles.ToggleSet.__init__ = __init__  # type: ignore[method-assign]
    aiotoggles.ToggleSet.wait_for = wait_for  # type: ignore[method-assign]


if __name__ == "__main__":
    patch()
    from mltrl_operator.cli import main

    sys.exit(main(sys.argv[1:]))
