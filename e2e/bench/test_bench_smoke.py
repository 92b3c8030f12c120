"""The benchmark harness works: every scenario at toy sizes, and a JSON of the right shape.

Not a timed test: the figures are only checked to be there and to make sense together.
`make bench` runs the real sizes.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from e2e.bench import report
from e2e.bench.cli import run
from e2e.bench.scenarios import Config

pytestmark = pytest.mark.integration

TINY = Config(
    world=12, promotions=3, steps=2, rollbacks=2, demotes=2, idle_seconds=1.0,
    rtt_samples=10, scale=(12, 24), start_timeout=60.0, quiet=0.5, gap=0.0,
    latency="2,10", latency_scale=(12,),
)
PERCENTILES = ("n", "p50", "p95", "p99", "max", "mean")


def _latency(summary: dict[str, Any], n: int) -> None:
    assert set(PERCENTILES) <= set(summary), summary
    assert summary["n"] == n
    assert 0 < summary["p50"] <= summary["p95"] <= summary["p99"] <= summary["max"] < 30_000


async def test_every_scenario_runs_and_reports(tmp_path: Path) -> None:
    results = await run(TINY, tmp_path)
    results = json.loads(json.dumps(results))  # what is written is plain JSON

    assert results["meta"]["machine"]["cpus"] >= 1
    assert results["meta"]["machine"]["kopf"].startswith("1.")
    sandbox = results["baseline"]["sandbox"]
    for name in ("get_ms", "patch_ms", "status_patch_ms", "write_to_watch_ms"):
        _latency(sandbox[name], TINY.rtt_samples)
    bare = results["baseline"]["bare_kopf"]
    _latency(bare["reaction_ms"], TINY.promotions)
    assert bare["cost"]["writes_per_action"] == 1  # its one status patch per write

    ops = results["operator"]
    promotion = ops["promotion"]
    for name in ("to_level_ms", "to_inference_service_ms", "to_review_applied_ms"):
        _latency(promotion[name], TINY.promotions)
    assert set(promotion["to_level_ms"]["x_bare_kopf"]) == {"p50", "p95", "p99"}
    assert promotion["to_level_ms"]["round_trips"]["p50"] > 1
    # The approval and everything after it: the level in status precedes the review's
    # Applied, which the operator writes second.
    assert promotion["to_level_ms"]["p50"] <= promotion["to_review_applied_ms"]["p50"]
    level_only = ops["promotion_level_only"]
    _latency(level_only["to_level_ms"], TINY.steps)
    # Two status patches, one event (Promoted, naming the review: one per transition), and
    # the promotion's audit record entry.
    assert level_only["cost"]["writes_per_action"] == 4
    assert promotion["cost"]["writes_per_action"] == 5  # and the InferenceService
    assert promotion["cost"]["writes"]["create inferenceservices.serving.kserve.io main"] == (
        TINY.promotions
    )
    for kind, count in (("alert_rollback", TINY.rollbacks), ("alert_demote", TINY.demotes)):
        for name in ("to_answer_ms", "to_inference_service_ms", "to_recorded_ms"):
            _latency(ops[kind][name], count)
        assert ops[kind]["cost"]["writes_per_action"] >= 2
    assert ops["idle"]["writes_per_minute"] == 0

    runs = results["scale"]["runs"]
    assert sorted((r["who"], r["technologies"]) for r in runs) == sorted(
        (who, n) for who in TINY.variants for n in TINY.scale
    )
    for entry in runs:
        assert 0 < entry["seconds_to_current"] < TINY.start_timeout
        assert entry["peak_rss_mib"] > 20
        assert entry["writes_until_settled"] >= entry["technologies"]
        if entry["who"] == "mltrl":
            assert entry["promoted_events"] == entry["promoted_at_start"] > 0
    growth = results["scale"]["growth"]
    assert growth["between"] == [12, 24]
    for who in TINY.variants:
        assert math.isfinite(growth[who]["seconds_to_current"]), growth
    latency = results["latency"]
    assert (latency["read_ms"], latency["write_ms"]) == (2, 10)
    assert sorted(r["who"] for r in latency["runs"]) == sorted(TINY.variants)
    for entry in latency["runs"]:
        assert entry["technologies"] == 12
        # every request held back by about its latency: no start-up beats the floor
        assert 0 < entry["floor_seconds"] < entry["seconds_to_current"] < TINY.start_timeout
        assert entry["inflight"]["limits"] == {"read_only": 400, "mutating": 200}
    assert {t["target"] for t in results["targets"]} >= {
        "alert to InferenceService patched, p99, in round trips",
        "writes and requests per minute idle",
    }
    table = report.render(results)
    assert "promotion: approval -> level in status" in table


def test_latency_and_large_runs_measure_start_up_only() -> None:
    from e2e.bench.cli import config_from, parse

    latency = config_from(parse(["--latency", "2,10"]))
    assert (latency.main, latency.scale, latency.latency, latency.latency_scale) == (
        False, (), "2,10", (10000,)
    )
    large = config_from(parse(["--large"]))
    assert (large.main, large.scale) == (False, (10000, 50000))
    assert config_from(parse([])).main and not config_from(parse([])).latency
