"""The work queue (controllers/workqueue.py): what client-go's workqueue promises."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable

import kopf
import pytest
from kopf._cogs.aiokits.aiotoggles import ToggleSet

from mltrl_operator.controllers.runtime import kopf_pause
from mltrl_operator.controllers.workqueue import WorkQueue

DEADLINE = 10.0  # only bounds a failure


async def until(condition: object, what: str) -> None:
    async def poll() -> None:
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.001)

    try:
        await asyncio.wait_for(poll(), DEADLINE)
    except TimeoutError:
        raise AssertionError(f"never: {what}") from None


class Recorder:
    """A reconcile that records each call and, for keys in `gates`, waits to be let go."""

    def __init__(self) -> None:
        self.calls: list[Hashable] = []
        self.running: set[Hashable] = set()
        self.overlaps: list[Hashable] = []
        self.gates: dict[Hashable, asyncio.Event] = {}

    async def __call__(self, key: Hashable) -> None:
        if key in self.running:
            self.overlaps.append(key)
        self.running.add(key)
        self.calls.append(key)
        try:
            gate = self.gates.get(key)
            if gate is not None:
                await gate.wait()
            await asyncio.sleep(0)
        finally:
            self.running.discard(key)


async def test_a_key_added_many_times_while_waiting_is_reconciled_once() -> None:
    queue, reconcile = WorkQueue(), Recorder()
    for _ in range(5):
        queue.add("a")
        queue.add("b")
    assert queue.waiting() == 2
    queue.start(reconcile, workers=4)
    try:
        await until(lambda: len(reconcile.calls) == 2 and not queue.busy(), "both reconciled")
        await asyncio.sleep(0.05)
        assert sorted(reconcile.calls) == ["a", "b"]
    finally:
        await queue.close()


async def test_one_key_is_never_reconciled_by_two_workers_at_once() -> None:
    queue, reconcile = WorkQueue(), Recorder()
    reconcile.gates["a"] = gate = asyncio.Event()
    queue.start(reconcile, workers=8)
    try:
        queue.add("a")
        await until(lambda: "a" in reconcile.running, "a to start")
        for _ in range(10):  # every idle worker could take it, were it queued
            queue.add("a")
            await asyncio.sleep(0.001)
        assert reconcile.calls == ["a"] and not reconcile.overlaps
        gate.set()
        await until(lambda: len(reconcile.calls) == 2 and not queue.busy(), "a once more")
        await asyncio.sleep(0.05)
        assert reconcile.calls == ["a", "a"]
        assert not reconcile.overlaps
    finally:
        await queue.close()


async def test_a_key_changed_while_being_reconciled_is_reconciled_again_after() -> None:
    queue, reconcile = WorkQueue(), Recorder()
    reconcile.gates["a"] = gate = asyncio.Event()
    queue.start(reconcile, workers=2)
    try:
        queue.add("a")
        await until(lambda: "a" in reconcile.running, "a to start")
        queue.add("a")  # the object changed under the reconcile
        gate.set()
        await until(lambda: len(reconcile.calls) == 2, "a again")
        # ...and not a third time: the change was one.
        await asyncio.sleep(0.05)
        assert reconcile.calls == ["a", "a"]
    finally:
        await queue.close()


async def test_a_failing_reconcile_does_not_stop_its_worker() -> None:
    queue = WorkQueue()
    seen: list[Hashable] = []

    async def reconcile(key: Hashable) -> None:
        seen.append(key)
        if key == "broken":
            raise RuntimeError("boom")

    queue.start(reconcile, workers=1)
    try:
        queue.add("broken")
        queue.add("fine")
        await until(lambda: seen == ["broken", "fine"], "the next key after a failure")
    finally:
        await queue.close()


async def test_no_key_is_taken_while_paused_and_none_is_lost() -> None:
    paused = ToggleSet(any)
    peer = await paused.make_toggle(True, name="a peer of higher priority")
    queue, reconcile = WorkQueue(), Recorder()
    queue.start(reconcile, workers=4, pause=paused)
    try:
        queue.add("a")
        queue.add("b")
        await asyncio.sleep(0.1)
        assert reconcile.calls == []
        queue.add("a")  # still one key
        await peer.turn_to(False)
        await until(lambda: sorted(reconcile.calls) == ["a", "b"], "both, once resumed")
        await asyncio.sleep(0.05)
        assert sorted(reconcile.calls) == ["a", "b"]
    finally:
        await queue.close()


async def test_after_stop_no_key_is_taken_and_close_cancels_what_runs() -> None:
    queue, reconcile = WorkQueue(), Recorder()
    reconcile.gates["slow"] = asyncio.Event()  # never let go
    queue.start(reconcile, workers=2)
    queue.add("slow")
    await until(lambda: "slow" in reconcile.running, "slow to start")
    queue.stop()
    queue.add("late")
    await asyncio.sleep(0.05)
    assert reconcile.calls == ["slow"]
    started = asyncio.get_running_loop().time()
    await queue.close(grace=0.2)
    assert asyncio.get_running_loop().time() - started < 1.0
    assert not reconcile.running  # cancelled, not left behind


async def test_close_waits_its_grace_for_a_reconcile_under_way() -> None:
    queue = WorkQueue()
    finished: list[str] = []

    async def reconcile(key: Hashable) -> None:
        await asyncio.sleep(0.05)
        finished.append(str(key))

    queue.start(reconcile, workers=1)
    queue.add("a")
    await asyncio.sleep(0.01)
    await queue.close(grace=2.0)
    assert finished == ["a"]


@pytest.mark.parametrize("peering", [None, "mltrl-operator"])
async def test_kopfs_pause_is_found_among_the_tasks_kopf_spawns(peering: str | None) -> None:
    """kopf 1.45 does not expose it: if an upgrade moves it, this fails (and `mltrl run
    --peering` refuses to start rather than run workers a pause cannot stop)."""
    stop = asyncio.Event()
    tasks = await kopf.spawn_tasks(
        registry=kopf.OperatorRegistry(), clusterwide=True, standalone=peering is None,
        peering_name=peering, stop_flag=stop,
    )
    try:
        pause = kopf_pause(tasks)
        assert isinstance(pause, ToggleSet)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
