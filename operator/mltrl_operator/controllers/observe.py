"""What a reconcile tells the metrics: the levels as they stand, and what changed.

Changes are counted from the difference between the stored status and the one written,
and only after the write succeeded, so a retried reconcile does not count twice.
"""

from __future__ import annotations

from mltrl_operator import metrics
from mltrl_operator.api.technology import (
    MLTechnologySpec,
    MLTechnologyStatus,
    TransitionKind,
)
from mltrl_operator.domain.gating import demotion_action
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
