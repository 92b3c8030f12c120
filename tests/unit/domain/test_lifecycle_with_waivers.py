"""Issue 15's two halves in one plan: a waiver that lowers the serving minimum, and the
model-change and re-certification rules. The waiver opens the gate (and says so in
status.serving.waiver); it never lets a new model through without its change review, and a
lapsed certification closes the gate whatever a waiver lowered."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from mltrl_operator.api.policy import MLTRLPolicySpec
from mltrl_operator.api.technology import MLTechnologyStatus
from mltrl_operator.api.waiver import MLTRLWaiverSpec
from mltrl_operator.domain import condition_types as ct
from mltrl_operator.domain.conditions import get_condition
from mltrl_operator.domain.lifecycle import LifecyclePolicy, lifecycle_policy
from mltrl_operator.domain.plan import Plan, PlanInputs, plan_technology
from mltrl_operator.domain.policy import NamedPolicy, waiver_policy
from mltrl_operator.domain.timefmt import rfc3339
from mltrl_operator.domain.waivers import WaiverFacts

from .builders import BOUND_DEFAULT, NOW, tech_spec

# The policy asks for level 6 to serve; dana may approve waivers.
POLICY = replace(
    BOUND_DEFAULT, minimum_serving_level=6, entry_max_level=9,
    waivers=waiver_policy([NamedPolicy("prod", MLTRLPolicySpec.model_validate({
        "waivers": {"maxDuration": "336h", "approvers": [{"users": ["dana"]}]},
    }))]),
)
EXPIRES = NOW + timedelta(days=10)
LOAD_TEST = WaiverFacts("load-test", MLTRLWaiverSpec.model_validate({
    "technology": "fraud", "reason": "load test", "expiresAt": rfc3339(EXPIRES),
    "waives": {"servingMinimum": 5},
    "approvals": [{"approver": "dana", "time": rfc3339(NOW - timedelta(hours=1))}],
}), NOW - timedelta(hours=2))


def model(version: str) -> dict[str, str]:
    return {"version": version, "storageUri": f"s3://m/{version}", "format": "sklearn"}


def plan(status: MLTechnologyStatus, isvc: dict[str, Any] | None, version: str, *,
         rules: LifecyclePolicy | None = None, now: Any = NOW) -> Plan:
    spec = tech_spec(entryLevel=5, model=model(version))
    body = {"metadata": {"name": "fraud", "namespace": "payments", "uid": "uid-fraud",
                         "generation": 1, "resourceVersion": "10"},
            "spec": spec.to_wire(), "status": status.to_wire()}
    return plan_technology(PlanInputs(
        technology=body, spec=spec, status=status, components=[], validation_errors=[],
        policy=POLICY, inference_service=isvc, now=now, waivers=[LOAD_TEST],
        lifecycle=rules or LifecyclePolicy(),
    ))


def served(after: Plan) -> dict[str, Any]:
    assert after.serving is not None and after.serving.after is not None
    body = dict(after.serving.after)
    body["metadata"] = {**body["metadata"], "resourceVersion": "20", "generation": 1}
    body["status"] = {"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "True"}]}
    return body


def serving_5_by_waiver(rules: LifecyclePolicy | None = None,
                        ) -> tuple[MLTechnologyStatus, dict[str, Any]]:
    first = plan(MLTechnologyStatus(), None, "1.0.0", rules=rules)
    assert first.status.level == 5
    assert first.serving is not None and first.serving.verb == "create"
    isvc = served(first)
    settled = plan(first.status, isvc, "1.0.0", rules=rules)
    assert settled.serving is None
    assert settled.status.serving is not None and settled.status.serving.waiver is not None
    assert settled.status.serving.waiver.name == "load-test"
    return settled.status, isvc


def test_a_new_model_served_only_by_a_waiver_still_waits_for_its_change_review() -> None:
    # mallory ships 1.1.0 to a technology that serves at level 5 only by dana's waiver: level
    # 5 is where it serves, so the built-in default holds the model for a change review.
    status, isvc = serving_5_by_waiver()
    held = plan(status, isvc, "1.1.0")
    assert held.serving is None  # the InferenceService keeps s3://m/1.0.0
    assert held.status.pending_model is not None
    assert held.status.pending_model.version == "1.1.0"
    assert held.status.approved_model is not None
    assert held.status.approved_model.version == "1.0.0"
    approved = get_condition(held.status.conditions, ct.MODEL_APPROVED)
    assert approved is not None and approved.reason == ct.PENDING_CHANGE_REVIEW
    # The gate is still open by the same waiver, named in status.
    assert held.status.serving is not None and held.status.serving.allowed
    assert status.serving is not None and held.status.serving.waiver == status.serving.waiver


def test_a_lapse_closes_the_gate_a_waiver_lowered_and_no_waiver_is_named() -> None:
    rules = lifecycle_policy([NamedPolicy("p", MLTRLPolicySpec.model_validate({
        "requirements": [{"level": 5, "validFor": "48h", "onExpiry": "stop"}]}))])
    status, isvc = serving_5_by_waiver(rules)
    lapsed = plan(status, isvc, "1.0.0", rules=rules, now=NOW + timedelta(hours=49))
    allowed = get_condition(lapsed.status.conditions, ct.SERVING_ALLOWED)
    assert allowed is not None and allowed.reason == ct.CERTIFICATION_LAPSED
    assert lapsed.status.serving is not None and not lapsed.status.serving.allowed
    assert lapsed.status.serving.waiver is None
    assert lapsed.serving is not None and lapsed.serving.verb == "patch"
    [expired] = [e for e in lapsed.events if e.reason == ct.CERTIFICATION_EXPIRED]
    assert "; stopped InferenceService fraud: " in expired.message  # one event, telling it
