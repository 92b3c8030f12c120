"""The reconcile's plan, decided without an API server: what is stored, what is served,
and that deciding again from what was stored decides the same."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from mltrl_operator.api.policy import MLTRLPolicySpec
from mltrl_operator.api.review import ReviewPhase
from mltrl_operator.api.technology import Incident, KnownGoodModel, MLTechnologyStatus
from mltrl_operator.domain.lifecycle import LifecyclePolicy, lifecycle_policy
from mltrl_operator.domain.plan import ApprovedReview, Plan, PlanInputs, plan_technology
from mltrl_operator.domain.policy import NamedPolicy
from mltrl_operator.domain.reviews import ReviewEvaluation
from mltrl_operator.domain.serving import inference_service_facts

from .builders import NOW, review, tech_spec, with_policy

POLICY = with_policy(minimum_serving_level=5, entry_max_level=9)
APPROVED = ReviewEvaluation(ReviewPhase.APPROVED, (), ("bob",), "ok", (), True)
UID = "uid-fraud"
# New models inherit the level (modelChange allow): the tests that ship one are about
# serving and rollback, not change review (tests/unit/domain/test_lifecycle_plan.py).
ALLOW_NEW_MODELS = lifecycle_policy([NamedPolicy("p", MLTRLPolicySpec.model_validate(
    {"modelChange": [{"fromLevel": 0, "action": "allow"}]}))])


def model(version: str) -> dict[str, str]:
    return {"version": version, "storageUri": f"s3://m/{version}", "format": "sklearn"}


def technology(status: MLTechnologyStatus, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "fraud", "namespace": "payments", "uid": UID, "generation": 1,
                     "resourceVersion": "10"},
        "spec": tech_spec(**spec).to_wire(),
        "status": status.to_wire(),
    }


def plan(
    status: MLTechnologyStatus, isvc: dict[str, Any] | None = None,
    approved: ApprovedReview | None = None, rules: LifecyclePolicy | None = None, **spec: Any,
) -> Plan:
    body = technology(status, **spec)
    return plan_technology(PlanInputs(
        technology=body, spec=tech_spec(**spec), status=status, components=[],
        validation_errors=[], policy=POLICY, inference_service=isvc, now=NOW, review=approved,
        lifecycle=rules or LifecyclePolicy(),
    ))


def served(after: Plan, ready: bool = True) -> dict[str, Any]:
    """The InferenceService once the plan's action is done and KServe caught up."""
    assert after.serving is not None and after.serving.after is not None
    body = dict(after.serving.after)
    generation = body["metadata"].get("generation", 1)
    body["metadata"] = {**body["metadata"], "resourceVersion": "20", "generation": generation}
    body["status"] = {"observedGeneration": generation, "conditions": [
        {"type": "Ready", "status": "True" if ready else "False"}]}
    return body


def at_level(level: int, **spec: Any) -> MLTechnologyStatus:
    return plan(MLTechnologyStatus(), **{**spec, "entryLevel": level}).status


def test_the_promotion_is_in_the_status_that_is_stored_before_serving_starts() -> None:
    stored = at_level(4, model=model("1.0"))
    assert plan(stored, entryLevel=4, model=model("1.0")).serving is None  # gate closed
    promoted = plan(stored, approved=ApprovedReview("r1", review(4, 5), APPROVED),
                    entryLevel=4, model=model("1.0"))
    assert promoted.review_applied and promoted.status.level == 5
    assert promoted.serving is not None and promoted.serving.verb == "create"
    # The status written before the create already says what the create does.
    assert promoted.status.serving is not None
    assert (promoted.status.serving.allowed, promoted.status.serving.inference_service) == (
        True, "fraud")
    assert promoted.status.history[-1].review == "r1"
    # One event per transition: the promotion's, naming the review and the serving it
    # starts; no ServingStarted beside it.
    event = promoted.serving.event
    assert event is not None and event.reason == "Promoted"
    assert event.message == ("level 4 -> 5 (Machine Learning \"Capability\") by review r1, "
                             "approved by "
                             "bob; created InferenceService fraud serving model 1.0")
    assert promoted.events == ()
    # A crash after the status write: planned again from what was stored, the same action
    # and no second history entry (the redo tells the serving on its own: the review is
    # no longer in the plan, and its reconcile posts the promotion's event by its name).
    again = plan(promoted.status, entryLevel=4, model=model("1.0"))
    assert again.serving is not None and again.serving.event is not None
    assert again.serving == replace(promoted.serving, event=again.serving.event)
    assert again.serving.event.reason == "ServingStarted"
    assert again.status == promoted.status


def test_a_model_without_a_serving_section_is_served_with_the_defaults() -> None:
    stored = at_level(5, model=model("1.0"))
    first = plan(stored, entryLevel=5, model=model("1.0"))
    assert first.serving is not None and first.serving.verb == "create"
    settled = plan(first.status, served(first), entryLevel=5, model=model("1.0"))
    assert settled.serving is None
    assert settled.status.serving is not None and settled.status.serving.state == "Serving"


def test_ready_from_an_older_generation_is_not_known_good() -> None:
    spec = {"entryLevel": 5, "model": model("2.0")}
    body = {"metadata": {"name": "fraud", "generation": 3,
                         "annotations": {"mltrl.dev/model-version": "2.0"},
                         "ownerReferences": [{"kind": "MLTechnology", "uid": UID}]},
            "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"},
                                             "storageUri": "s3://m/2.0"}}},
            "status": {"observedGeneration": 2,
                       "conditions": [{"type": "Ready", "status": "True"}]}}
    facts = inference_service_facts("fraud", body)
    assert (facts.ready, facts.ready_at_generation) == (False, False)
    after = plan(at_level(5, model=model("2.0")), body, **spec)
    assert after.status.known_good_models == []
    body["status"]["observedGeneration"] = 3
    caught_up = plan(after.status, body, **spec)
    assert [m.version for m in caught_up.status.known_good_models] == ["2.0"]


def _known(*versions: str) -> list[KnownGoodModel]:
    return [KnownGoodModel(version=v, storage_uri=f"s3://m/{v}", format="sklearn",
                           served_at="2026-11-01T00:00:00Z") for v in versions]


def test_rollbacks_never_cycle_back_to_a_model_rolled_back_from() -> None:
    spec = {"entryLevel": 5, "model": model("3.0")}
    status = at_level(5, **spec).model_copy(
        update={"known_good_models": _known("1.0", "2.0", "3.0")}
    )
    served_versions = []
    for n in range(5):
        incident = Incident(fingerprint=f"fp{n}", alert_name=f"Errors{n}",
                            starts_at=f"2026-11-22T1{n}:00:00Z", action="rollback",
                            received_at="2026-11-22T11:00:00Z")
        status = status.model_copy(update={"incidents": [*status.incidents, incident]})
        status = plan(status, **spec).status
        rollback = status.serving.rollback if status.serving else None
        assert rollback is not None
        served_versions.append(rollback.model.version if rollback.model else "stopped")
    assert served_versions == ["2.0", "1.0", "stopped", "stopped", "stopped"]
    assert [i.state for i in status.incidents] == ["Acted"] * 5


def test_incident_events_are_named_after_the_incident_and_its_settlement() -> None:
    spec = {"entryLevel": 5, "model": model("3.0")}
    incident = Incident(fingerprint="fp1", alert_name="Errors",
                        starts_at="2026-11-22T10:00:00Z", action="notify",
                        received_at="2026-11-22T11:00:00Z")
    status = at_level(5, **spec).model_copy(update={"incidents": [incident]})
    first, again = plan(status, **spec), plan(status, **spec)
    assert [e.key for e in first.events] == [e.key for e in again.events]
    assert first.events[0].reason == "AlertNotified"


def _serving_2_0_with_a_rollback_alert_stored() -> tuple[dict[str, Any], Plan, MLTechnologyStatus]:
    """Serving model 2.0 at level 5, 1.0 known good, and a rollback alert's intent stored:
    the spec, the plan that started the serving, and the status with the intent."""
    spec = {"entryLevel": 5, "model": model("2.0")}
    first = plan(at_level(5, **spec), **spec)
    status = first.status.model_copy(update={"known_good_models": _known("1.0", "2.0")})
    rollback = Incident(fingerprint="fp1", alert_name="Errors",
                        starts_at="2026-11-22T10:00:00Z", action="rollback",
                        received_at="2026-11-22T11:00:00Z")
    return spec, first, status.model_copy(update={"incidents": [rollback]})


def test_an_alerts_rollback_is_one_event_that_tells_the_serving_it_moved() -> None:
    spec, first, status = _serving_2_0_with_a_rollback_alert_stored()
    rolled = plan(status, served(first), **spec)
    assert rolled.serving is not None and rolled.serving.verb == "patch"
    # The settlement's event tells the patch; the patch posts none of its own.
    assert rolled.serving.event is None
    [event] = [e for e in rolled.events if e.reason == "RolledBack"]
    assert event.message.startswith("alert Errors (fp1): ")
    assert event.message.endswith("; InferenceService fraud now serves model 1.0")
    # A new model ends the rollback: RollbackEnded tells the patch that serves it.
    ended = plan(rolled.status, served(rolled), rules=ALLOW_NEW_MODELS,
                 **{**spec, "model": model("3.0")})
    assert ended.serving is not None and ended.serving.event is None
    [event] = [e for e in ended.events if e.reason == "RollbackEnded"]
    assert event.message.endswith("; InferenceService fraud now serves model 3.0")
    # Without an alert or a rollback, a roll-out tells itself.
    later = plan(ended.status, served(ended), rules=ALLOW_NEW_MODELS,
                 **{**spec, "model": model("4.0")})
    assert later.serving is not None and later.serving.event is not None
    assert later.serving.event.reason == "ModelRolledOut" and later.events == ()


def test_only_an_alerts_stop_or_rollback_is_served_before_its_status() -> None:
    """Plan.serving_first (issue 17): a settled incident's action that serves nothing new
    goes out before the status; anything that serves, or moves with a review, after."""
    spec, first, pending = _serving_2_0_with_a_rollback_alert_stored()
    assert first.serving is not None and not first.serving_first  # serving starts: after
    rolled = plan(pending, served(first), **spec)
    assert rolled.serving is not None and rolled.serving_first  # to known-good 1.0
    # Deciding again from the stored intent with the InferenceService already moved (a
    # crash before the status): the same settlement, nothing left to serve.
    again = plan(pending, served(rolled), **spec)
    assert again.serving is None and again.settlements == rolled.settlements
    assert again.status.serving is not None and rolled.status.serving is not None
    assert again.status.serving.rollback == rolled.status.serving.rollback
    # With nothing known-good before it, the rollback stops serving: also first.
    alone = plan(pending.model_copy(update={"known_good_models": _known("2.0")}),
                 served(first), **spec)
    assert alone.serving is not None and alone.serving_first
    assert alone.serving.after is not None
    assert alone.serving.after["metadata"]["annotations"]["serving.kserve.io/stop"] == "true"
    # A stopped InferenceService is never resumed before the status says so.
    stopped = served(alone)
    assert not plan(pending, stopped, **spec).serving_first


def test_planning_leaves_the_stored_status_as_it_was() -> None:
    """Plans share unchanged parts of the stored status (no deep copies, issue 17): a
    promotion, a rollback and a demotion planned from it leave it as it was."""
    spec = {"entryLevel": 5, "model": model("2.0")}
    first = plan(at_level(5, **spec), **spec)
    stored = first.status.model_copy(update={
        "known_good_models": _known("1.0", "2.0"),
        "incidents": [Incident(fingerprint="fp1", alert_name="Errors",
                               starts_at="2026-11-22T10:00:00Z", action="rollback",
                               received_at="2026-11-22T11:00:00Z"),
                      Incident(fingerprint="fp2", alert_name="Drift",
                               starts_at="2026-11-22T10:01:00Z", action="demote", to_level=4,
                               received_at="2026-11-22T11:00:00Z")]})
    snapshot = stored.model_copy(deep=True)
    settled = plan(stored, served(first), **spec)
    promoted = plan(settled.status.model_copy(update={"incidents": []}), served(first),
                    approved=ApprovedReview("r1", review(4, 5), APPROVED), **spec)
    assert [i.state for i in settled.status.incidents] == ["Acted", "Failed"]  # < entry
    assert promoted.status.level is not None
    assert stored == snapshot
