"""Only an approved model is ever served: a model of the reconcile, stepped by hypothesis.

One technology goes through what the chaos round does to it (promotions, new models,
rollback alerts, the InferenceService becoming Ready) while each reconcile stores its
status first and may crash before its InferenceService write. Two promises, checked with
every interleaving hypothesis finds, without timing:

- every InferenceService write the operator makes serves a model the status stored at
  that moment approves: `status.approvedModel`, or the known-good model of a rollback in
  force (never start serving anything else);
- once a reconcile completes, what serves is approved by the status it stored. Between a
  status write and its plan's InferenceService write the model being replaced still
  serves: a promotion approves the new model before the InferenceService is moved to it.

A plan that settles an alert by stopping serving or rolling back goes the other way round
(`Plan.serving_first`, issue 17): its InferenceService write comes before the status, so
the write is checked against the status stored before it (an incident Pending, and the
model one the stored status approves or lists as known-good, or nothing served), and a
crash between the two leaves the InferenceService moved and the status as it was: the next
reconcile must settle the same way and keep the promises above.

The chaos observer (tests/chaos/run.py) checks the same two on the real operator.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule

from mltrl_operator.api.technology import Incident, MLTechnologyStatus
from mltrl_operator.domain.plan import ApprovedReview, Plan

from .builders import review
from .test_lifecycle_plan import APPROVED, model, plan

STOP = "serving.kserve.io/stop"


def approved_uris(status: MLTechnologyStatus) -> set[str]:
    uris = set()
    if status.approved_model is not None and status.approved_model.storage_uri:
        uris.add(status.approved_model.storage_uri)
    rollback = status.serving.rollback if status.serving else None
    if rollback is not None and rollback.model is not None and rollback.model.storage_uri:
        uris.add(rollback.model.storage_uri)
    return uris


class Reconciles(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.version = 0
        entered = plan(MLTechnologyStatus(), entryLevel=3, model=self.model())
        self.status = entered.status
        self.isvc: dict[str, Any] | None = None
        self.review: ApprovedReview | None = None
        self.alerts = 0
        self.trace: list[str] = ["entered at 3 with 1.0.0"]

    def model(self) -> dict[str, str]:
        return model(f"1.0.{self.version}")

    def reconcile(self, crash: bool) -> Plan:
        done = plan(self.status, self.isvc, approved=self.review, entryLevel=3,
                    model=self.model())
        action = done.serving
        if action is not None and done.serving_first:
            assert not done.review_applied
            stored = self.status
            self.isvc = self.stored_isvc(action.after)  # before the status write
            self.note(f"InferenceService {action.verb}, before the status")
            self.check_before_status(stored)
            if crash:
                return done
            self.status = done.status
            self.note("status stored")
            self.check()
            return done
        self.status = done.status  # step 1: the status write
        if done.review_applied:
            self.review = None
        self.note("status stored")
        action = done.serving
        if action is not None and not crash:  # step 2: the InferenceService write
            self.isvc = self.stored_isvc(action.after)
            self.note(f"InferenceService {action.verb}")
            self.check()
        if not crash:
            self.check()
        return done

    @staticmethod
    def stored_isvc(after: dict[str, Any] | None) -> dict[str, Any] | None:
        if after is None:
            return None
        body = dict(after)
        body["metadata"] = {**body["metadata"], "resourceVersion": "20",
                            "generation": body["metadata"].get("generation", 1)}
        body["status"] = {}  # KServe has not seen it yet
        return body

    def note(self, what: str) -> None:
        self.trace.append(
            f"{what}: level {self.status.level}, approved "
            f"{self.status.approved_model.version if self.status.approved_model else None},"
            f" pending {self.status.pending_model.version if self.status.pending_model else None}"
            f", rollback {self.status.serving.rollback if self.status.serving else None}, "
            f"serving {self.served()}")

    def check(self) -> None:
        served = self.served()
        if served is not None:
            assert served in approved_uris(self.status), "\n".join(self.trace)

    def check_before_status(self, stored: MLTechnologyStatus) -> None:
        assert any(i.state == "Pending" for i in stored.incidents), "\n".join(self.trace)
        served = self.served()
        if served is not None:
            known_good = {m.storage_uri for m in stored.known_good_models}
            assert served in approved_uris(stored) | known_good, "\n".join(self.trace)

    def served(self) -> str | None:
        if self.isvc is None:
            return None
        if (self.isvc["metadata"].get("annotations") or {}).get(STOP) == "true":
            return None
        return str(self.isvc["spec"]["predictor"]["model"]["storageUri"])

    @rule(crash=st.booleans())
    def reconciled(self, crash: bool) -> None:
        self.reconcile(crash)

    @rule()
    def kserve_made_it_ready(self) -> None:
        if self.isvc is None:
            return
        generation = self.isvc["metadata"].get("generation", 1)
        self.isvc = {**self.isvc, "status": {
            "observedGeneration": generation,
            "conditions": [{"type": "Ready", "status": "True"}]}}
        self.note("KServe: Ready")

    @rule()
    def promotion_approved(self) -> None:
        level = self.status.level or 3
        if level < 9 and self.review is None:
            self.review = ApprovedReview(f"to-{level + 1}", review(level, level + 1), APPROVED)
            self.trace.append(f"review {level} -> {level + 1} approved on 1.0.{self.version}")

    @rule()
    def new_model_shipped(self) -> None:
        self.version += 1
        # A new model dismisses approvals given on the old one (issue 11).
        self.review = None
        self.trace.append(f"spec.model 1.0.{self.version}")

    @rule()
    def rollback_alert(self) -> None:
        if (self.status.level or 0) < 5:
            return
        self.alerts += 1
        incident = Incident(fingerprint=f"fp{self.alerts}", alert_name="Errors",
                            starts_at=f"2026-11-22T10:{self.alerts:02d}:00Z", action="rollback",
                            received_at="2026-11-22T11:00:00Z")
        self.status = self.status.model_copy(
            update={"incidents": [*self.status.incidents, incident]})
        self.note(f"alert fp{self.alerts} (rollback) stored by the receiver")


    @rule()
    def demotion_alert(self) -> None:
        if (self.status.level or 0) < 5:
            return
        self.alerts += 1
        incident = Incident(fingerprint=f"fp{self.alerts}", alert_name="Drift",
                            starts_at=f"2026-11-22T10:{self.alerts:02d}:00Z", action="demote",
                            to_level=4, received_at="2026-11-22T11:00:00Z")
        self.status = self.status.model_copy(
            update={"incidents": [*self.status.incidents, incident]})
        self.note(f"alert fp{self.alerts} (demote to 4) stored by the receiver")


Reconciles.TestCase.settings = settings(
    max_examples=200, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_only_an_approved_model_is_ever_served = Reconciles.TestCase
