"""What a reconcile tells the metrics: the levels as they stand, and what changed.

Changes are counted from the difference between the stored status and the one written,
and only after the write succeeded, so a retried reconcile does not count twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from mltrl_operator import metrics
from mltrl_operator.api.technology import (
    MLTechnologySpec,
    MLTechnologyStatus,
    TransitionKind,
)
from mltrl_operator.domain.alerts import ACTED
from mltrl_operator.domain.gating import demotion_action
from mltrl_operator.domain.incidents import Settlement
from mltrl_operator.domain.policy import EffectivePolicy


def observe_levels(
    namespace: str, name: str, spec: MLTechnologySpec, status: MLTechnologyStatus
) -> None:
    metrics.observe_technology(
        namespace,
        name,
        level=status.level,
        target_level=spec.target_level,
        effective_level=status.effective_level,
        serving_allowed=bool(status.serving and status.serving.allowed),
    )


def observe_written(
    old: MLTechnologyStatus, new: MLTechnologyStatus, policy: EffectivePolicy
) -> None:
    for transition in new.history:
        if transition in old.history or transition.kind is TransitionKind.ENTRY:
            continue
        direction = "promotion" if transition.kind is TransitionKind.PROMOTION else "switchback"
        switchback = transition.switchback_type.value if transition.switchback_type else None
        metrics.count_transition(direction, switchback)
    was_allowed = bool(old.serving and old.serving.allowed)
    allowed = bool(new.serving and new.serving.allowed)
    if allowed and not was_allowed:
        metrics.count_gate_decision("reconciler", "allow")
    elif was_allowed and not allowed:
        # The gate closed on a technology that was allowed to serve: onDemotion decides.
        metrics.count_gate_decision("reconciler", demotion_action(policy).value)


def _seconds_since(starts_at: str) -> float | None:
    try:
        started = datetime.fromisoformat(starts_at)
    except ValueError:
        return None
    if started.tzinfo is None:
        started = started.replace(tzinfo=UTC)
    return (datetime.now(UTC) - started).total_seconds()


def observe_settled(settlements: Sequence[Settlement]) -> None:
    """Counted once the status that settles them is stored: a redo finds nothing Pending."""
    for settlement in settlements:
        incident = settlement.incident
        acted = settlement.state == ACTED
        metrics.count_alert_action(str(incident.action), "acted" if acted else "failed")
        if acted and (seconds := _seconds_since(incident.starts_at)) is not None:
            metrics.observe_alert_to_action(seconds)
