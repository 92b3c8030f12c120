"""Timers at the instants the domain names, against a clock that a test moves by hand."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from mltrl_operator.controllers.wakeups import Wakeups

T0 = datetime(2026, 6, 1, tzinfo=UTC)


async def until(predicate: object, timeout: float = 5.0) -> None:
    async def poll() -> None:
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), timeout)


async def test_a_timer_fires_once_the_clock_reaches_its_instant_and_not_before() -> None:
    now = [T0]
    fired: list[datetime] = []
    wakeups = Wakeups(nap=0.01)

    async def act() -> None:
        fired.append(now[0])

    wakeups.at("w", T0 + timedelta(days=7), lambda: now[0], act)
    await asyncio.sleep(0.05)
    assert fired == []
    now[0] = T0 + timedelta(days=7) - timedelta(seconds=1)
    await asyncio.sleep(0.05)
    assert fired == []
    now[0] = T0 + timedelta(days=7)  # a clock moved by days is noticed within a nap
    await until(lambda: fired)
    assert fired == [T0 + timedelta(days=7)] and wakeups.pending() == {}
    await wakeups.close()


async def test_a_new_instant_replaces_the_old_and_cancel_and_close_stop_timers() -> None:
    now = [T0]
    fired: list[str] = []
    wakeups = Wakeups(nap=0.01)

    def action(label: str):  # type: ignore[no-untyped-def]
        async def act() -> None:
            fired.append(label)
        return act

    wakeups.at("w", T0 + timedelta(hours=1), lambda: now[0], action("first"))
    wakeups.at("w", T0 + timedelta(hours=2), lambda: now[0], action("second"))
    wakeups.at("x", T0 + timedelta(hours=1), lambda: now[0], action("other"))
    assert wakeups.pending() == {"w": T0 + timedelta(hours=2), "x": T0 + timedelta(hours=1)}
    wakeups.cancel("x")
    now[0] = T0 + timedelta(hours=3)
    await until(lambda: fired)
    await asyncio.sleep(0.05)
    assert fired == ["second"]
    wakeups.at("y", T0 + timedelta(days=1), lambda: now[0], action("never"))
    await wakeups.close()
    assert wakeups.pending() == {}


async def test_a_failing_action_is_logged_not_raised() -> None:
    wakeups = Wakeups(nap=0.01)
    done = asyncio.Event()

    async def fail() -> None:
        done.set()
        raise RuntimeError("boom")

    wakeups.at("w", T0, lambda: T0, fail)
    await asyncio.wait_for(done.wait(), 5)
    await asyncio.sleep(0.01)
    assert wakeups.pending() == {}
    await wakeups.close()
