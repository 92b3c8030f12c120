"""Prometheus metrics of the operator, in one registry.

Controllers, the alert receiver and the webhooks report through the functions below rather
than touching the metric objects, so that label values stay within the documented sets.
`metrics_app` serves the registry at /metrics.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import GaugeMetricFamily
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry(auto_describe=True)

TECHNOLOGY_LABELS = ("namespace", "technology")

REVIEW_PHASES = ("Pending", "Approved", "Applied", "Rejected", "Invalid", "Superseded")
DIRECTIONS = ("promotion", "switchback")
SWITCHBACK_TYPES = ("discovery", "embedded", "review", "none")
ALERT_ACTIONS = ("rollback", "demote", "retrain", "notify", "none")
ALERT_RESULTS = (
    "acted", "failed", "duplicate", "unknown-technology", "resolved", "beyond-horizon",
    "deferred",
)
GATE_SOURCES = ("reconciler", "governance", "admission")
GATE_DECISIONS = ("allow", "stop", "delete", "keep", "warn", "deny")
RECONCILE_KINDS = ("MLTechnology", "LevelReview", "MLTRLPolicy", "Namespace", "InferenceService")
ALERT_STATUSES = ("firing", "resolved")


def _listing(name: str, values: tuple[str, ...]) -> str:
    return f"{name}: {'|'.join(values)}"


class _TechnologyGauges(Collector):
    """The per-technology gauges, built at scrape time from one small record per
    technology. A labelled child per series costs about 0.8 KiB: 30 MiB for the four
    series of 10,000 technologies (docs/benchmarks.md), where a record costs a tenth."""

    FAMILIES = (
        ("mltrl_technology_level",
         "An MLTechnology's current readiness level (0-9). Labels: namespace, technology."),
        ("mltrl_technology_target_level",
         "An MLTechnology's spec.targetLevel (0-9). Labels: namespace, technology."),
        ("mltrl_technology_effective_level",
         "The lowest of an MLTechnology's level and its components' effective levels. "
         "Labels: namespace, technology."),
        ("mltrl_serving_allowed",
         "1 when an MLTechnology's effective level meets the serving gate, else 0. "
         "Labels: namespace, technology."),
    )

    def __init__(self) -> None:
        # (namespace, name) -> (level, target level, effective level, serving allowed)
        self.records: dict[tuple[str, str], tuple[int | None, int, int | None, int]] = {}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families = [
            GaugeMetricFamily(name, documentation, labels=TECHNOLOGY_LABELS)
            for name, documentation in self.FAMILIES
        ]
        for (namespace, name), values in list(self.records.items()):
            for family, value in zip(families, values, strict=True):
                if value is not None:
                    family.add_metric((namespace, name), value)
        yield from families


TECHNOLOGY_GAUGES = _TechnologyGauges()
REGISTRY.register(TECHNOLOGY_GAUGES)
REVIEW_OUTCOMES = Counter(
    "mltrl_review_outcomes",
    "LevelReviews reaching a phase. " + _listing("phase", REVIEW_PHASES) + ".",
    ("phase",),
    registry=REGISTRY,
)
LEVEL_TRANSITIONS = Counter(
    "mltrl_level_transitions",
    "Level changes recorded in MLTechnology histories. "
    + _listing("direction", DIRECTIONS)
    + "; "
    + _listing("switchback_type", SWITCHBACK_TYPES)
    + " (none for promotions).",
    ("direction", "switchback_type"),
    registry=REGISTRY,
)
ALERT_ACTIONS_TOTAL = Counter(
    "mltrl_alert_actions",
    "What became of monitoring alerts. "
    + _listing("action", ALERT_ACTIONS)
    + " (none when no technology was found); "
    + _listing("result", ALERT_RESULTS)
    + ".",
    ("action", "result"),
    registry=REGISTRY,
)
GATE_DECISIONS_TOTAL = Counter(
    "mltrl_gate_decisions",
    "Serving gate decisions. "
    + _listing("source", GATE_SOURCES)
    + "; "
    + _listing("decision", GATE_DECISIONS)
    + ".",
    ("source", "decision"),
    registry=REGISTRY,
)
RECONCILE_DURATION = Histogram(
    "mltrl_reconcile_duration_seconds",
    "Time spent handling one watch event. " + _listing("kind", RECONCILE_KINDS) + ".",
    ("kind",),
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
RECONCILE_ERRORS = Counter(
    "mltrl_reconcile_errors",
    "Reconciliations that failed. " + _listing("kind", RECONCILE_KINDS) + ".",
    ("kind",),
    registry=REGISTRY,
)
ALERTS_RECEIVED = Counter(
    "mltrl_alerts_received",
    "Alerts accepted from Alertmanager, one per alert in a notification. "
    + _listing("status", ALERT_STATUSES)
    + ".",
    ("status",),
    registry=REGISTRY,
)
ALERT_TO_ACTION = Histogram(
    "mltrl_alert_to_action_seconds",
    "From an alert's startsAt to the operator acting on its incident.",
    buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600),
    registry=REGISTRY,
)


def _initialise() -> None:
    # Counters that exist at zero from the start let rate() and absent() see them.
    for phase in REVIEW_PHASES:
        REVIEW_OUTCOMES.labels(phase)
    for kind in RECONCILE_KINDS:
        RECONCILE_ERRORS.labels(kind)
        RECONCILE_DURATION.labels(kind)
    for status in ALERT_STATUSES:
        ALERTS_RECEIVED.labels(status)


_initialise()


def _checked(value: str, allowed: tuple[str, ...], label: str) -> str:
    if value not in allowed:
        raise ValueError(f"{label} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def observe_technology(
    namespace: str,
    name: str,
    *,
    level: int | None,
    target_level: int,
    effective_level: int | None,
    serving_allowed: bool,
) -> None:
    TECHNOLOGY_GAUGES.records[(namespace, name)] = (
        level, target_level, effective_level, 1 if serving_allowed else 0
    )


def forget_technology(namespace: str, name: str) -> None:
    """A deleted technology's series go away, rather than keep reporting its last level."""
    TECHNOLOGY_GAUGES.records.pop((namespace, name), None)


def count_review_outcome(phase: str) -> None:
    REVIEW_OUTCOMES.labels(_checked(phase, REVIEW_PHASES, "phase")).inc()


def count_transition(direction: str, switchback_type: str | None) -> None:
    LEVEL_TRANSITIONS.labels(
        _checked(direction, DIRECTIONS, "direction"),
        _checked(switchback_type or "none", SWITCHBACK_TYPES, "switchback_type"),
    ).inc()


def count_alert_action(action: str | None, result: str) -> None:
    ALERT_ACTIONS_TOTAL.labels(
        _checked(action or "none", ALERT_ACTIONS, "action"),
        _checked(result, ALERT_RESULTS, "result"),
    ).inc()


def count_gate_decision(source: str, decision: str) -> None:
    GATE_DECISIONS_TOTAL.labels(
        _checked(source, GATE_SOURCES, "source"), _checked(decision, GATE_DECISIONS, "decision")
    ).inc()


def count_alert_received(status: str) -> None:
    ALERTS_RECEIVED.labels(_checked(status, ALERT_STATUSES, "status")).inc()


def observe_alert_to_action(seconds: float) -> None:
    # A clock skewed against Alertmanager's must not produce negative observations.
    ALERT_TO_ACTION.observe(max(seconds, 0.0))


def count_reconcile_error(kind: str) -> None:
    RECONCILE_ERRORS.labels(_checked(kind, RECONCILE_KINDS, "kind")).inc()


@contextlib.contextmanager
def reconcile_timer(kind: str) -> Iterator[None]:
    """Times a handler; an exception escaping it counts as a reconcile error."""
    _checked(kind, RECONCILE_KINDS, "kind")
    started = time.perf_counter()
    try:
        yield
    except Exception:  # a cancellation at shutdown is no error, so not BaseException
        count_reconcile_error(kind)
        raise
    finally:
        RECONCILE_DURATION.labels(kind).observe(time.perf_counter() - started)


_SERIES_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
}


def exported_names() -> set[str]:
    """Every series name the registry can expose, also for label sets not yet used."""
    names: set[str] = set()
    for family in REGISTRY.collect():
        names.update(family.name + suffix for suffix in _SERIES_SUFFIXES[family.type])
    return names


async def _serve(_: web.Request) -> web.Response:
    return web.Response(
        body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


def metrics_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/metrics", _serve)
    return app
