"""The objects a benchmark world is made of, written as a team would write them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mltrl_operator.api.review import LevelReviewSpec
from mltrl_operator.api.technology import ModelSpec
from mltrl_operator.domain.approvals import make_stamp, review_content

Obj = dict[str, Any]
Key = tuple[str, str]

API = "mltrl.dev/v1alpha1"
POLICY = "bench-policy"
NAMESPACE_LABEL = "mltrl-bench"
PER_NAMESPACE = 100
MINIMUM_SERVING_LEVEL = 5
ROLLBACK_ALERT = "BenchErrorRateHigh"
DEMOTE_ALERT = "BenchDrift"
DEMOTE_TO = 4
APPROVAL = {"reviewer": "bob", "role": "qa", "decision": "approve"}
STAMPED_AT = "2026-11-30T12:00:00Z"


def namespace(name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {NAMESPACE_LABEL: "yes"}}}


def policy(
    name: str = POLICY, label: str = NAMESPACE_LABEL, serving_level: int = MINIMUM_SERVING_LEVEL
) -> Obj:
    """Serving from `serving_level` (stopped on demotion), one approval by bob as `qa` and a
    passing `unit-tests` check for every level, over the namespaces labelled `label`. The
    benchmark's worlds and the chaos driver (tests/chaos/run.py) both use it."""
    return {
        "apiVersion": API, "kind": "MLTRLPolicy", "metadata": {"name": name},
        "spec": {
            "namespaceSelector": {"matchLabels": {label: "yes"}},
            "serving": {"minimumLevel": serving_level, "enforcement": "enforce",
                        "onDemotion": "stop"},
            "requirements": [
                {"level": level, "minApprovals": 1, "requiredRoles": ["qa"],
                 "evidence": [{"name": "unit-tests", "kind": "check"}]}
                for level in range(1, 10)
            ],
            "entry": {"maxLevel": 9},
            "reviewers": [{"role": "qa", "users": ["bob"]}],
            # The scenarios ship new models to measure rollbacks, not change reviews.
            "modelChange": [{"fromLevel": 0, "action": "allow"}],
        },
    }


def model(name: str, version: str) -> Obj:
    return {"version": version, "storageUri": f"s3://models/{name}/{version}",
            "format": "sklearn"}


def technology(
    name: str, ns: str, entry_level: int, *, serving: bool = False, monitored: bool = False
) -> Obj:
    spec: Obj = {"owner": "alice", "team": "ml", "entryLevel": entry_level, "targetLevel": 9}
    if serving:
        spec["model"] = model(name, "1.0.0")
        spec["serving"] = {"predictor": {"minReplicas": 1}}
    if monitored:
        spec["monitoring"] = {"rules": [
            {"alertName": ROLLBACK_ALERT, "action": "rollback"},
            {"alertName": DEMOTE_ALERT, "action": "demote", "toLevel": DEMOTE_TO},
        ]}
    return {"apiVersion": API, "kind": "MLTechnology",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def stamped_approval(spec: Obj, technology_name: str, serving: bool) -> Obj:
    """bob's approval with the stamp the admission webhook would write (the benchmark runs
    without webhooks), on the review's content and the technology's model."""
    return approval_on(spec, model(technology_name, "1.0.0") if serving else None, STAMPED_AT)


def approval_on(spec: Obj, technology_model: Obj | None, stamped_at: str) -> Obj:
    """bob's approval of a review `spec`, stamped as the admission webhook stamps it, on
    the review's content and the technology's model (None: it has none)."""
    content = review_content(
        LevelReviewSpec.model_validate({**spec, "approvals": []}),
        ModelSpec.model_validate(technology_model) if technology_model else None,
    )
    return {**APPROVAL, "approvedBy": make_stamp("bob", [], stamped_at, content)}


def review(
    technology_name: str, ns: str, from_level: int, *, approved: bool, serving: bool = False
) -> Obj:
    body = {
        "apiVersion": API, "kind": "LevelReview",
        "metadata": {"name": f"{technology_name}-to-{from_level + 1}", "namespace": ns},
        "spec": {
            "technology": technology_name,
            "fromLevel": from_level,
            "toLevel": from_level + 1,
            "evidence": [{"name": "unit-tests", "kind": "check", "passed": True,
                          "uri": "https://ci.example.com/run/1"}],
            "approvals": [],
            "debrief": {"accomplished": "the work", "learned": "a lesson"},
        },
    }
    if approved:
        body["spec"]["approvals"] = [approval(body, technology_name, serving)]
    return body


def approval(review_body: Obj, technology_name: str, serving: bool) -> Obj:
    return stamped_approval(review_body["spec"], technology_name, serving)


def operator_status(name: str, at: str = STAMPED_AT) -> Obj:
    """A technology's status the size and shape the operator writes (level 5 by review,
    serving a model: 8 conditions, 2 history entries; about 3 KB), for the sandbox's
    status PATCH round trip."""
    def condition(kind: str, status: str, reason: str, message: str) -> Obj:
        return {"type": kind, "status": status, "observedGeneration": 1,
                "lastTransitionTime": at, "reason": reason, "message": message}

    return {
        "level": 5, "levelName": 'Machine Learning "Capability"', "phase": "Prototyping",
        "effectiveLevel": 5, "observedGeneration": 1,
        "conditions": [
            condition("Ready", "False", "BelowTargetLevel",
                      'at level 5 (Machine Learning "Capability"); the target is level 9'),
            condition("ServingAllowed", "True", "LevelMeetsServingRequirement",
                      f"mltech {name} is at level 5; serving requires level 5 ({POLICY})"),
            condition("Serving", "False", "InferenceServiceNotReady",
                      f"InferenceService {name} is not ready yet"),
            condition("Degraded", "False", "AsExpected",
                      "nothing is served below the required level"),
            condition("ComponentsReady", "True", "NoComponents",
                      "the technology has no components"),
            condition("EntryApproved", "True", "EntryWithinPolicy",
                      f"entry level 4 is within what policy {POLICY} allows"),
            condition("Certified", "True", "NoExpiry", "level 5 does not lapse"),
            condition("ModelApproved", "True", "ModelReviewed",
                      "model 1.0.0 is approved at level 5: entered at level 4 with it"),
        ],
        "history": [
            {"to": 4, "kind": "entry", "reason": "entered at level 4", "by": ["mltrl-operator"],
             "at": at},
            {"from": 4, "to": 5, "kind": "promotion", "reason": f"promoted by review {name}-to-5",
             "review": f"{name}-to-5", "by": ["bob"], "at": at,
             "debrief": {"accomplished": "the work", "learned": "a lesson"}},
        ],
        "knownGoodModels": [],
        "nextLevel": {"level": 6, "name": "Application Development", "requirements": [
            "check 'unit-tests' has passed", "needs 1 approval",
            "needs an approval from a reviewer with role 'qa'",
            "the owner's approval does not count (separation of duties)"]},
        "serving": {"state": "Pending", "allowed": True, "requiredLevel": 5,
                    "inferenceService": name, "ready": False, "stopped": False,
                    "modelVersion": "1.0.0"},
        "incidents": [],
        "entry": {"level": 4, "grantedLevel": 4, "approved": True},
        "owners": [{"name": "alice", "since": at}],
        "approvedModel": {**model(name, "1.0.0"), "approvedAt": at,
                          "how": "entered at level 4 with it"},
        "approvedModels": [],
    }


def alert_notification(name: str, ns: str, alert_name: str, fingerprint: str) -> Obj:
    starts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {
        "version": "4", "groupKey": f'{{}}:{{alertname="{alert_name}"}}', "truncatedAlerts": 0,
        "status": "firing", "receiver": "mltrl-operator",
        "groupLabels": {"alertname": alert_name}, "commonLabels": {"alertname": alert_name},
        "commonAnnotations": {}, "externalURL": "http://alertmanager.example.com",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": alert_name, "mltrl_technology": name, "namespace": ns},
            "annotations": {"summary": "benchmark alert"},
            "startsAt": starts, "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example.com/graph",
            "fingerprint": fingerprint,
        }],
    }


@dataclass
class Technology:
    key: Key
    entry_level: int
    review: str
    approved: bool
    serving: bool

    @property
    def expected_level(self) -> int:
        return self.entry_level + 1 if self.approved else self.entry_level


@dataclass
class World:
    """Technologies by role, each with one LevelReview:

    - promote: level 4, serving a model once at level 5; its review to 5 lacks the approval
    - step: level 3, no model; its review to 4 lacks the approval
    - rollback / demote: enter at 4, promoted to 5 (serving) at start by an approved
      review, with monitoring rules for the alerts (a demotion goes back to 4)
    - filler: levels 0-8, every 10th with a model; every other review already approved,
      so the operator promotes half of them when it starts
    """

    namespaces: list[str] = field(default_factory=list)
    technologies: dict[Key, Technology] = field(default_factory=dict)
    roles: dict[str, list[Key]] = field(default_factory=dict)
    objects: list[Obj] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.technologies)

    def review_keys(self) -> set[Key]:
        return {(t.key[0], t.review) for t in self.technologies.values()}


def build_world(
    size: int, *, promote: int = 0, step: int = 0, rollback: int = 0, demote: int = 0
) -> World:
    special = promote + step + rollback + demote
    if special > size:
        raise ValueError(f"{special} special technologies do not fit in {size}")
    world = World()
    count = max(1, -(-size // PER_NAMESPACE))
    world.namespaces = [f"bench-{n:03d}" for n in range(count)]
    world.objects = [namespace(ns) for ns in world.namespaces] + [policy()]
    plan = (
        [("promote", promote), ("step", step), ("rollback", rollback), ("demote", demote),
         ("filler", size - special)]
    )
    reviews: list[Obj] = []
    index = 0
    for role, how_many in plan:
        keys = world.roles.setdefault(role, [])
        for n in range(how_many):
            ns = world.namespaces[index % count]
            name = f"{role}-{n:05d}"
            index += 1
            if role == "promote":
                entry, serving, monitored, approved = 4, True, False, False
            elif role == "step":
                entry, serving, monitored, approved = 3, False, False, False
            elif role in ("rollback", "demote"):
                # A demotion may not go below spec.entryLevel: enter at 4, promoted to 5
                # (serving) by an approved review when the operator starts.
                entry, serving, monitored, approved = DEMOTE_TO, True, True, True
            else:
                entry, serving, monitored, approved = n % 9, n % 10 == 0, False, n % 2 == 0
            world.objects.append(technology(name, ns, entry, serving=serving,
                                            monitored=monitored))
            body = review(name, ns, entry, approved=approved, serving=serving)
            reviews.append(body)
            tech = Technology((ns, name), entry, body["metadata"]["name"], approved, serving)
            world.technologies[tech.key] = tech
            keys.append(tech.key)
    world.objects += reviews
    return world
