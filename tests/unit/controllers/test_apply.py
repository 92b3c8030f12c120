"""A crash between any two steps of a reconcile is repaired by the next one: the operator
is "killed" (an exception at a chosen API call) and a fresh one takes over."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from mltrl_operator.api import crdgen
from mltrl_operator.api.audit import AuditEntryKind
from mltrl_operator.api.review import LevelReviewSpec, ReviewPhase
from mltrl_operator.api.technology import MLTechnologySpec, MLTechnologyStatus, ModelSpec
from mltrl_operator.controllers.cache import prime
from mltrl_operator.controllers.context import OperatorContext
from mltrl_operator.controllers.governance import govern_inference_service
from mltrl_operator.controllers.review import reconcile_review
from mltrl_operator.controllers.technology import reconcile_locked, reconcile_technology
from mltrl_operator.controllers.view import ClusterView
from mltrl_operator.domain.approvals import make_stamp, review_content
from mltrl_operator.domain.plan import ApprovedReview
from mltrl_operator.domain.reviews import evaluate_review, technology_facts
from mltrl_operator.k8s.audit_store import read_audit_record
from mltrl_operator.k8s.client import KubeClient
from mltrl_operator.k8s.connection import Connection
from mltrl_operator.k8s.resources import (
    AUDIT_RECORDS,
    EVENTS,
    INFERENCE_SERVICES,
    NAMESPACES,
    POLICIES,
    REVIEWS,
    TECHNOLOGIES,
)
from mltrl_sandbox.crds import default_crd_documents
from mltrl_sandbox.server import SandboxServer

NAMESPACE = "payments"
NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
MODEL = {"version": "1.0", "storageUri": "s3://m/1.0", "format": "sklearn"}


class Killed(BaseException):
    """The operator process dies here (BaseException: no handler catches it)."""


@pytest.fixture
async def kube() -> AsyncIterator[KubeClient]:
    async with SandboxServer(default_crd_documents(None) + crdgen.crd_documents()) as server:
        client = KubeClient(Connection(server=server.url, token="admin-token"))
        await client.create(NAMESPACES, None, {"metadata": {"name": NAMESPACE,
                                                            "labels": {"team": "pay"}}})
        await client.create(POLICIES, None, {"metadata": {"name": "pay"}, "spec": {
            "namespaceSelector": {"matchLabels": {"team": "pay"}},
            "serving": {"minimumLevel": 5},
            "reviewers": [{"role": "qa", "users": ["bob"]}],
            "requirements": [{"level": level, "minApprovals": 1, "requiredRoles": ["qa"],
                              "evidence": [{"name": "tests", "kind": "check"}]}
                             for level in range(1, 10)]}})
        await client.create(TECHNOLOGIES, NAMESPACE, {"metadata": {"name": "fraud"}, "spec": {
            "owner": "alice", "entryLevel": 4, "model": MODEL}})
        try:
            yield client
        finally:
            await client.close()


async def _operator(kube: KubeClient) -> tuple[OperatorContext, ClusterView]:
    """A freshly started operator: an empty memory, a cache listed from the server."""
    ctx = OperatorContext(client=kube, clock=lambda: NOW)
    await prime(kube, ctx.cache)
    return ctx, ClusterView(ctx.cache, ctx.writes)


def _kill_on(kube: KubeClient, method: str, resource: Any) -> None:
    real = getattr(kube, method)

    async def dying(target: Any, *args: Any, **kwargs: Any) -> Any:
        if target == resource:
            raise Killed()
        return await real(target, *args, **kwargs)

    setattr(kube, method, dying)


def _revive(kube: KubeClient, method: str) -> None:
    delattr(kube, method)


async def _review(kube: KubeClient) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "technology": "fraud", "fromLevel": 4, "toLevel": 5,
        "evidence": [{"name": "tests", "kind": "check", "passed": True,
                      "uri": "https://ci.example.com/1"}]}
    # Stamped as the admission webhook would (this suite runs without webhooks).
    content = review_content(LevelReviewSpec.model_validate(spec), ModelSpec.model_validate(MODEL))
    spec["approvals"] = [{"reviewer": "bob", "role": "qa", "decision": "approve",
                          "approvedBy": make_stamp("bob", [], "2026-11-22T12:00:00Z", content)}]
    return await kube.create(REVIEWS, NAMESPACE, {"metadata": {"name": "to-5"}, "spec": spec})


async def _events(kube: KubeClient) -> Counter[tuple[str, str]]:
    return Counter((e["involvedObject"]["name"], e["reason"])
                   for e in await kube.list(EVENTS, NAMESPACE))


async def test_a_promotion_that_starts_serving_is_one_event(kube: KubeClient) -> None:
    ctx, view = await _operator(kube)
    await reconcile_technology(ctx, view, NAMESPACE, "fraud")
    review = await _review(kube)
    ctx, view = await _operator(kube)
    await reconcile_review(ctx, view, review)
    await reconcile_review(ctx, view, await kube.get(REVIEWS, NAMESPACE, "to-5"))
    assert (await kube.get(REVIEWS, NAMESPACE, "to-5"))["status"]["phase"] == "Applied"
    assert len(await kube.list(INFERENCE_SERVICES, NAMESPACE)) == 1
    # One transition, one event: on the technology, naming the review and the serving.
    [event] = await kube.list(EVENTS, NAMESPACE)
    assert (event["involvedObject"]["name"], event["reason"]) == ("fraud", "Promoted")
    assert " by review to-5, approved by bob; created InferenceService fraud serving model " \
        "1.0" in event["message"]


async def test_serving_turned_off_and_on_again_is_a_series_not_new_events(
    kube: KubeClient,
) -> None:
    ctx, view = await _operator(kube)
    await reconcile_technology(ctx, view, NAMESPACE, "fraud")
    await reconcile_review(ctx, view, await _review(kube))
    for _ in range(2):
        for enabled in (False, True):
            await kube.patch(TECHNOLOGIES, NAMESPACE, "fraud",
                             {"spec": {"serving": {"enabled": enabled}}})
            ctx, view = await _operator(kube)
            if enabled:  # killed after the event, before the create: the redo is no repeat
                _kill_on(kube, "create", INFERENCE_SERVICES)
                with pytest.raises(Killed):
                    await reconcile_technology(ctx, view, NAMESPACE, "fraud")
                _revive(kube, "create")
                ctx, view = await _operator(kube)
            await reconcile_technology(ctx, view, NAMESPACE, "fraud")
    assert len(await kube.list(INFERENCE_SERVICES, NAMESPACE)) == 1
    counts = {e["reason"]: e["count"] for e in await kube.list(EVENTS, NAMESPACE)}
    assert counts == {"Promoted": 1, "ServingRemoved": 2, "ServingStarted": 2}


async def test_a_crash_between_the_technology_and_the_review_loses_nothing(
    kube: KubeClient,
) -> None:
    ctx, view = await _operator(kube)
    await reconcile_technology(ctx, view, NAMESPACE, "fraud")
    review = await _review(kube)
    ctx, view = await _operator(kube)
    _kill_on(kube, "patch_status", REVIEWS)
    with pytest.raises(Killed):
        await reconcile_review(ctx, view, review)
    _revive(kube, "patch_status")
    technology = await kube.get(TECHNOLOGIES, NAMESPACE, "fraud")
    [entry] = [e for e in technology["status"]["history"] if e.get("review") == "to-5"]
    assert technology["status"]["level"] == 5
    # The promotion's one event went out before the review's write, named after the
    # review, on the technology: it is there already.
    assert (await _events(kube))[("fraud", "Promoted")] == 1

    ctx, view = await _operator(kube)  # a new operator process
    await reconcile_review(ctx, view, await kube.get(REVIEWS, NAMESPACE, "to-5"))
    status = (await kube.get(REVIEWS, NAMESPACE, "to-5"))["status"]
    assert (status["phase"], status["appliedAt"]) == ("Applied", entry["at"])
    applied = next(c for c in status["conditions"] if c["type"] == "Applied")
    assert applied["reason"] == "ReviewApplied"
    events = await _events(kube)
    assert (events[("to-5", "ReviewApplied")], events[("fraud", "Promoted")]) == (0, 1)
    history = (await kube.get(TECHNOLOGIES, NAMESPACE, "fraud"))["status"]["history"]
    assert [e.get("review") for e in history].count("to-5") == 1


async def test_nothing_is_served_before_the_promotion_is_stored(kube: KubeClient) -> None:
    ctx, view = await _operator(kube)
    await reconcile_technology(ctx, view, NAMESPACE, "fraud")
    review = await _review(kube)
    ctx, view = await _operator(kube)
    _kill_on(kube, "create", INFERENCE_SERVICES)
    with pytest.raises(Killed):
        await reconcile_review(ctx, view, review)
    _revive(kube, "create")
    # The decision is stored, with the InferenceService it is about to create ...
    stored = (await kube.get(TECHNOLOGIES, NAMESPACE, "fraud"))["status"]
    assert stored["level"] == 5 and stored["serving"]["allowed"] is True
    assert await kube.list(INFERENCE_SERVICES, NAMESPACE) == []
    # ... and the next operator carries it out, once.
    ctx, view = await _operator(kube)
    await reconcile_technology(ctx, view, NAMESPACE, "fraud")
    await reconcile_review(ctx, view, await kube.get(REVIEWS, NAMESPACE, "to-5"))
    [isvc] = await kube.list(INFERENCE_SERVICES, NAMESPACE)
    assert isvc["metadata"]["annotations"]["mltrl.dev/model-version"] == "1.0"
    events = await _events(kube)
    # The promotion's event (posted before the create that crashed) says what it started;
    # the next operator's create tells itself, and the review's redo adds no second one.
    assert (events[("fraud", "ServingStarted")], events[("fraud", "Promoted")]) == (1, 1)
    assert (await kube.get(REVIEWS, NAMESPACE, "to-5"))["status"]["phase"] == "Applied"


async def test_a_model_changed_under_an_approved_review_dismisses_its_approvals(
    kube: KubeClient,
) -> None:
    """Issue 11 in issue 12's retry: the review was judged Approved on model 1.0, then
    spec.model changed before the technology's write; the conditional write fails and the
    plan is made again from the stored object, with the review judged again on it."""
    ctx, view = await _operator(kube)
    await reconcile_technology(ctx, view, NAMESPACE, "fraud")
    review = await _review(kube)
    snapshot = await kube.get(TECHNOLOGIES, NAMESPACE, "fraud")
    spec = LevelReviewSpec.model_validate(review["spec"])
    facts = technology_facts("fraud", MLTechnologySpec.model_validate(snapshot["spec"]),
                             MLTechnologyStatus.model_validate(snapshot["status"]))
    evaluation = evaluate_review("to-5", spec, facts, view.policy_for(NAMESPACE))
    assert evaluation.phase is ReviewPhase.APPROVED
    await kube.patch(TECHNOLOGIES, NAMESPACE, "fraud", {"spec": {"model": {
        "version": "2.0", "storageUri": "s3://m/2.0", "format": "sklearn"}}})
    await reconcile_locked(ctx, view, NAMESPACE, "fraud", snapshot,
                           review=ApprovedReview("to-5", spec, evaluation))
    stored = (await kube.get(TECHNOLOGIES, NAMESPACE, "fraud"))["status"]
    assert stored["level"] == 4
    assert [e.get("review") for e in stored["history"]].count("to-5") == 0


async def test_a_foreign_inference_service_is_reported_once(kube: KubeClient) -> None:
    """The same snapshot handled twice (a re-delivered event, a restart) posts one event."""
    await kube.create(NAMESPACES, None, {"metadata": {"name": "lab", "labels": {"team": "lab"}}})
    await kube.create(POLICIES, None, {"metadata": {"name": "audit"}, "spec": {
        "namespaceSelector": {"matchLabels": {"team": "lab"}},
        "serving": {"minimumLevel": 5, "enforcement": "audit", "governed": True}}})
    isvc = await kube.create(INFERENCE_SERVICES, "lab", {
        "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
        "metadata": {"name": "rogue"},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"},
                                         "storageUri": "s3://m/x"}}}})
    for _ in range(2):
        ctx, view = await _operator(kube)
        await govern_inference_service(ctx, view, isvc)
    events = Counter((e["involvedObject"]["name"], e["reason"])
                     for e in await kube.list(EVENTS, "lab"))
    assert events == {("rogue", "ServingNotAllowed"): 1}


async def test_a_review_edited_after_its_snapshot_never_moves_the_technology(
    kube: KubeClient,
) -> None:
    # The review's re-read runs beside the technology's plan (issue 17), and still comes
    # before any write: a snapshot the API server has moved past promotes nothing.
    ctx, view = await _operator(kube)
    await reconcile_technology(ctx, view, NAMESPACE, "fraud")
    before = await kube.get(TECHNOLOGIES, NAMESPACE, "fraud")
    snapshot = await _review(kube)
    await kube.patch(REVIEWS, NAMESPACE, "to-5", {"metadata": {"labels": {"edited": "yes"}}})
    ctx, view = await _operator(kube)
    assert await reconcile_review(ctx, view, snapshot) is None
    after = await kube.get(TECHNOLOGIES, NAMESPACE, "fraud")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["status"]["level"] == 4
    assert await kube.list(EVENTS, NAMESPACE) == []
    assert await kube.list(INFERENCE_SERVICES, NAMESPACE) == []


async def test_the_reviews_re_read_is_in_flight_while_the_plan_is_computed(
    kube: KubeClient, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Issue 17 (promotion latency): the one read a promotion needs is not waited for
    # before the plan's CPU work, only before the plan's first write.
    from mltrl_operator.controllers import technology

    ctx, view = await _operator(kube)
    await reconcile_technology(ctx, view, NAMESPACE, "fraud")
    review = await _review(kube)
    ctx, view = await _operator(kube)
    order: list[str] = []
    real_get, real_plan = kube.get, technology.plan_technology

    async def get(resource: Any, namespace: str | None, name: str) -> Any:
        order.append(f"read {resource.kind}")
        answer = await real_get(resource, namespace, name)
        order.append(f"answered {resource.kind}")
        return answer

    def plan(inputs: Any) -> Any:
        order.append("plan")
        return real_plan(inputs)

    kube.get = get  # type: ignore[method-assign]
    monkeypatch.setattr(technology, "plan_technology", plan)
    await reconcile_review(ctx, view, review)
    assert order[:3] == ["read LevelReview", "plan", "answered LevelReview"]
    assert (await kube.get(TECHNOLOGIES, NAMESPACE, "fraud"))["status"]["level"] == 5


async def test_a_crash_before_the_dismissing_status_loses_no_audit_entry(
    kube: KubeClient,
) -> None:
    """Issue 15: the approvals a review's status dismisses go on the technology's record
    before that status is written: an operator killed between the two leaves the status
    unwritten, and the next one records the dismissal once (before, a crash after the
    status write lost the entry: the next operator saw nothing new to dismiss)."""
    ctx, view = await _operator(kube)
    await reconcile_technology(ctx, view, NAMESPACE, "fraud")
    await _review(kube)
    await kube.patch(TECHNOLOGIES, NAMESPACE, "fraud", {"spec": {"model": {
        "version": "2.0", "storageUri": "s3://m/2.0", "format": "sklearn"}}})
    ctx, view = await _operator(kube)
    await reconcile_technology(ctx, view, NAMESPACE, "fraud")
    _kill_on(kube, "patch", AUDIT_RECORDS)  # killed appending to the record
    with pytest.raises(Killed):
        await reconcile_review(ctx, view, await kube.get(REVIEWS, NAMESPACE, "to-5"))
    _revive(kube, "patch")
    # The status that dismisses bob's approval waits for the record.
    assert "dismissedApprovals" not in ((await kube.get(REVIEWS, NAMESPACE, "to-5"))
                                        .get("status") or {})

    ctx, view = await _operator(kube)  # a new operator process
    await reconcile_review(ctx, view, await kube.get(REVIEWS, NAMESPACE, "to-5"))
    status = (await kube.get(REVIEWS, NAMESPACE, "to-5"))["status"]
    [dismissed] = status["dismissedApprovals"]
    assert dismissed["reviewer"] == "bob"
    record = await read_audit_record(kube, NAMESPACE, "fraud")
    entries = [e for e in record.entries if e.kind is AuditEntryKind.DISMISSED_APPROVALS]
    assert [(e.review, list(e.details)) for e in entries] == [("to-5", ["dismissed.bob"])]


async def _serving_at_5_with_a_demotion_pending(kube: KubeClient) -> None:
    """Promoted to 5 (its InferenceService created), then a demotion to 4 stored by the
    receiver as intent: Pending, as an Alertmanager notification leaves it."""
    ctx, view = await _operator(kube)
    await reconcile_technology(ctx, view, NAMESPACE, "fraud")
    review = await _review(kube)
    ctx, view = await _operator(kube)
    await reconcile_review(ctx, view, review)
    assert len(await kube.list(INFERENCE_SERVICES, NAMESPACE)) == 1
    incident = {"fingerprint": "f1", "alertName": "FraudDrift", "action": "demote",
                "toLevel": 4, "startsAt": "2026-11-22T11:00:00Z",
                "receivedAt": "2026-11-22T12:00:00Z", "state": "Pending"}
    await kube.patch_status(TECHNOLOGIES, NAMESPACE, "fraud", {"incidents": [incident]})


def _stopped(isvc: dict[str, Any]) -> bool:
    return (isvc["metadata"].get("annotations") or {}).get("serving.kserve.io/stop") == "true"


async def test_an_alert_stops_serving_before_its_settlement_is_stored(kube: KubeClient) -> None:
    """Issue 17: a stop (or a rollback) that settles a stored incident goes out with its
    event, before the status, instead of after it (domain.plan: Plan.serving_first)."""
    await _serving_at_5_with_a_demotion_pending(kube)
    ctx, view = await _operator(kube)
    order: list[str] = []
    for method in ("patch", "patch_status", "post_event"):
        real = getattr(kube, method)

        def spy(real: Any = real, method: str = method) -> Any:
            async def call(*args: Any, **kwargs: Any) -> Any:
                target = args[0] if method != "post_event" else None
                order.append(f"{method} {getattr(target, 'kind', 'Event')}")
                return await real(*args, **kwargs)
            return call

        setattr(kube, method, spy())
    await reconcile_technology(ctx, view, NAMESPACE, "fraud")
    for method in ("patch", "patch_status", "post_event"):
        _revive(kube, method)
    assert order.index("patch_status MLTechnology") > order.index("patch InferenceService")
    assert order.index("patch_status MLTechnology") > order.index("post_event Event")


async def test_a_crash_between_the_alerts_stop_and_its_settlement_loses_nothing(
    kube: KubeClient,
) -> None:
    await _serving_at_5_with_a_demotion_pending(kube)
    ctx, view = await _operator(kube)
    _kill_on(kube, "patch_status", TECHNOLOGIES)  # killed as the settlement is written
    with pytest.raises(Killed):
        await reconcile_technology(ctx, view, NAMESPACE, "fraud")
    _revive(kube, "patch_status")
    # Serving stopped (nothing served is never a broken promise); the intent is stored.
    [isvc] = await kube.list(INFERENCE_SERVICES, NAMESPACE)
    assert _stopped(isvc)
    stored = (await kube.get(TECHNOLOGIES, NAMESPACE, "fraud"))["status"]
    assert stored["level"] == 5 and stored["incidents"][0]["state"] == "Pending"

    ctx, view = await _operator(kube)  # a new operator process settles the same way
    await reconcile_technology(ctx, view, NAMESPACE, "fraud")
    stored = (await kube.get(TECHNOLOGIES, NAMESPACE, "fraud"))["status"]
    assert stored["level"] == 4 and stored["incidents"][0]["state"] == "Acted"
    assert stored["serving"]["allowed"] is False
    [isvc] = await kube.list(INFERENCE_SERVICES, NAMESPACE)
    assert _stopped(isvc)
    events = await _events(kube)
    assert events[("fraud", "Demoted")] == 1 and events[("fraud", "ServingStopped")] == 0
    record = await read_audit_record(kube, NAMESPACE, "fraud")
    assert [e.kind for e in record.entries].count(AuditEntryKind.SWITCHBACK) == 1
    # And once settled, nothing is done again.
    ctx, view = await _operator(kube)
    writes_before = len(await kube.list(EVENTS, NAMESPACE))
    outcome = await reconcile_technology(ctx, view, NAMESPACE, "fraud")
    assert outcome is not None and outcome.stored is None
    assert len(await kube.list(EVENTS, NAMESPACE)) == writes_before
