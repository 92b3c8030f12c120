from __future__ import annotations

import pytest

from mltrl_operator.api.policy import Enforcement, OnDemotion
from mltrl_operator.domain.gating import (
    GateAction,
    GateDecision,
    demotion_action,
    foreign_inference_service_action,
    required_serving_level,
    serving_gate,
)
from mltrl_operator.domain.policy import DEFAULT_POLICY, EffectivePolicy

from .builders import with_policy

PRODUCTION = with_policy(sources=("production",), minimum_serving_level=7)


@pytest.mark.parametrize(
    ("minimum", "technology", "required"),
    [(6, None, 6), (6, 8, 8), (7, 5, 7), (7, 7, 7)],
    ids=[
        "the policy alone",
        "a stricter technology wins",
        "a looser technology cannot undercut the policy",
        "equal requirements",
    ],
)
def test_required_serving_level_is_the_stricter(
    minimum: int, technology: int | None, required: int
) -> None:
    policy = with_policy(minimum_serving_level=minimum)
    assert required_serving_level(policy, technology) == required


@pytest.mark.parametrize(
    ("effective", "technology", "policy", "allowed", "reason", "message"),
    [
        (
            5,
            None,
            PRODUCTION,
            False,
            "LevelBelowServingRequirement",
            'mltech fraud-detection is at level 5 (Machine Learning "Capability"); '
            "serving requires level 7 (policy production)",
        ),
        (
            7,
            None,
            PRODUCTION,
            True,
            "LevelMeetsServingRequirement",
            "mltech fraud-detection is at level 7 (Integrations); "
            "serving requires level 7 (policy production)",
        ),
        (
            9,
            None,
            DEFAULT_POLICY,
            True,
            "LevelMeetsServingRequirement",
            "mltech fraud-detection is at level 9 (Deployment); "
            "serving requires level 6 (built-in default)",
        ),
        (
            7,
            8,
            PRODUCTION,
            False,
            "LevelBelowServingRequirement",
            "mltech fraud-detection is at level 7 (Integrations); "
            "serving requires level 8 (spec.serving.requiredLevel)",
        ),
        (
            6,
            6,
            with_policy(sources=("a", "b")),
            True,
            "LevelMeetsServingRequirement",
            "mltech fraud-detection is at level 6 (Application Development); "
            "serving requires level 6 (policies a, b)",
        ),
        (
            None,
            None,
            DEFAULT_POLICY,
            False,
            "LevelBelowServingRequirement",
            "mltech fraud-detection has no effective level yet; "
            "serving requires level 6 (built-in default)",
        ),
    ],
    ids=[
        "below the policy's level is refused",
        "at the policy's level is allowed",
        "above the default level is allowed",
        "the technology's stricter level is named as the source",
        "several policies are all named",
        "no effective level yet is refused",
    ],
)
def test_the_serving_gate(
    effective: int | None,
    technology: int | None,
    policy: EffectivePolicy,
    allowed: bool,
    reason: str,
    message: str,
) -> None:
    decision = serving_gate(effective, technology, policy, "fraud-detection")
    assert (decision.allowed, decision.effective_level, decision.reason, decision.message) == (
        allowed,
        effective,
        reason,
        message,
    )
    assert f"serving requires level {decision.required_level} (" in message


@pytest.mark.parametrize(
    ("enforcement", "on_demotion", "action"),
    [
        (Enforcement.ENFORCE, OnDemotion.STOP, GateAction.STOP),
        (Enforcement.ENFORCE, OnDemotion.DELETE, GateAction.DELETE),
        (Enforcement.ENFORCE, OnDemotion.KEEP, GateAction.KEEP),
        (Enforcement.AUDIT, OnDemotion.DELETE, GateAction.WARN),
        (Enforcement.AUDIT, OnDemotion.STOP, GateAction.WARN),
    ],
    ids=[
        "enforce and stop stops",
        "enforce and delete deletes",
        "enforce and keep keeps",
        "audit only warns even when asked to delete",
        "audit only warns even when asked to stop",
    ],
)
def test_what_happens_when_the_gate_closes_on_a_served_technology(
    enforcement: Enforcement, on_demotion: OnDemotion, action: GateAction
) -> None:
    assert demotion_action(with_policy(enforcement=enforcement, on_demotion=on_demotion)) is action


OPEN = GateDecision(True, 6, 7, "LevelMeetsServingRequirement", "fraud is at level 7")
CLOSED = GateDecision(False, 6, 4, "LevelBelowServingRequirement", "fraud is at level 4")
GOVERNED = with_policy(sources=("prod",), governed=True)
GOVERNED_AUDIT = with_policy(sources=("prod",), governed=True, enforcement=Enforcement.AUDIT)
UNCLAIMED = (
    "the InferenceService claims no MLTechnology (label mltrl.dev/technology) and the "
    "namespace is governed (policy prod)"
)


@pytest.mark.parametrize(
    ("claimed", "decision", "policy", "action", "message"),
    [
        (
            None,
            None,
            DEFAULT_POLICY,
            GateAction.ALLOW,
            "the namespace is not governed by an MLTRL policy",
        ),
        (None, None, GOVERNED, GateAction.STOP, UNCLAIMED),
        (None, None, GOVERNED_AUDIT, GateAction.WARN, f"{UNCLAIMED} (audit: reported only)"),
        ("fraud", OPEN, GOVERNED, GateAction.ALLOW, "fraud is at level 7"),
        ("fraud", OPEN, DEFAULT_POLICY, GateAction.ALLOW, "fraud is at level 7"),
        ("fraud", CLOSED, GOVERNED, GateAction.STOP, "fraud is at level 4"),
        ("fraud", CLOSED, DEFAULT_POLICY, GateAction.STOP, "fraud is at level 4"),
        (
            "fraud",
            CLOSED,
            GOVERNED_AUDIT,
            GateAction.WARN,
            "fraud is at level 4 (audit: reported only)",
        ),
        (
            "ghost",
            None,
            DEFAULT_POLICY,
            GateAction.STOP,
            "the InferenceService claims mltech ghost, which does not exist",
        ),
        (
            "ghost",
            None,
            GOVERNED_AUDIT,
            GateAction.WARN,
            "the InferenceService claims mltech ghost, which does not exist (audit: reported only)",
        ),
    ],
    ids=[
        "unclaimed in an ungoverned namespace is left alone",
        "unclaimed in a governed namespace is stopped",
        "unclaimed in a governed namespace under audit is reported",
        "claimed and allowed is left alone",
        "claimed and allowed outside governance is left alone",
        "claimed and below the gate is stopped",
        "a claim opts into the gate even outside governance",
        "claimed and below the gate under audit is reported",
        "claiming a missing technology fails the gate",
        "claiming a missing technology under audit is reported",
    ],
)
def test_foreign_inference_services(
    claimed: str | None,
    decision: GateDecision | None,
    policy: EffectivePolicy,
    action: GateAction,
    message: str,
) -> None:
    assert foreign_inference_service_action(claimed, decision, policy) == (action, message)
