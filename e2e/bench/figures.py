"""Percentiles, ratios and growth exponents, as the report states them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary_ms(seconds: Sequence[float]) -> dict[str, Any]:
    """n, p50, p95, p99, max and mean, in milliseconds."""
    ms = [s * 1000 for s in seconds]
    if not ms:
        return {"n": 0}
    return {
        "n": len(ms),
        "p50": round(percentile(ms, 50), 2),
        "p95": round(percentile(ms, 95), 2),
        "p99": round(percentile(ms, 99), 2),
        "max": round(max(ms), 2),
        "mean": round(sum(ms) / len(ms), 2),
    }


def ratio(value: float | None, base: float | None) -> float | None:
    if value is None or not base or math.isnan(value) or math.isnan(base):
        return None
    return round(value / base, 2)


def relative(summary: dict[str, Any], base: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """The same percentiles divided by a baseline's (another latency, or one round trip)."""
    return {key: ratio(summary.get(key), base.get(key)) for key in keys}


def exponent(n1: float, y1: float | None, n2: float, y2: float | None) -> float | None:
    """k in y = c * n^k through two points: 1 is linear, below 1 sublinear."""
    if not y1 or not y2 or y1 <= 0 or y2 <= 0 or n1 == n2:
        return None
    return round(math.log(y2 / y1) / math.log(n2 / n1), 2)


def per(total: float, count: int) -> float | None:
    return round(total / count, 2) if count else None
