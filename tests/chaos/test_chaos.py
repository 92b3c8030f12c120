"""A short, seeded chaos round in `make test`; `make chaos` runs the long one."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.run import ChaosConfig, report, run

pytestmark = pytest.mark.integration


def test_promotions_and_alerts_survive_kills_and_faults(tmp_path: Path) -> None:
    figures = run(tmp_path, ChaosConfig(
        seed=12, promotions=18, alerts=18, model_changes=4, fault_rate=0.1, latency="1,3",
        kill_between=(0.5, 2.0), deadline=240,
    ))
    summary = report(figures)
    assert figures.kills >= 1, summary
    assert sum(figures.injected.values()) > 0, summary
    assert (figures.lost, figures.doubled, figures.stuck, figures.served_early) == (
        [], [], [], []), summary
    assert (figures.promotions, figures.alerts) == (18, 18), summary
    assert figures.checked["history entries"] == figures.promotions, summary
    assert figures.checked["settlement events"] == figures.alerts, summary
    assert figures.checked["InferenceService versions served"] > 0, summary
    assert figures.checked["served models approved"] == figures.checked[
        "InferenceService versions served"], summary
