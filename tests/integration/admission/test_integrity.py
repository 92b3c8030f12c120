"""A level can only be earned: each attack of issue 11, tried with real kubectl as the
people in the story, is refused or has no effect; each honest path still works.

alice owns technologies, bob holds qa, carol product-owner, mallory edits and reviews but
holds no role, platform is a policy admin; admin is the cluster admin. docs/security.md
lists every test here with its outcome and the mechanism that stops the attack.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.admission.conftest import SecureSandbox, granted, rbac_refused
from tests.integration.harness import condition, eventually
from tests.integration.operator.scenarios import model, policy, technology
from tests.integration.operator.test_audit_record import exported

pytestmark = pytest.mark.integration

BINDINGS = [{"role": "qa", "users": ["bob"]}, {"role": "product-owner", "users": ["carol"]}]
# Level 5 and 6 as an entry review from 4 to 6 must meet them both; level 7 as in the
# production example.
REQUIREMENTS = [
    {"level": 5, "minApprovals": 1, "requiredRoles": ["qa"],
     "evidence": [{"name": "unit-tests", "kind": "check"}]},
    {"level": 6, "minApprovals": 1, "requiredRoles": ["product-owner"],
     "evidence": [{"name": "ethics-checklist", "kind": "document"}]},
    {"level": 7, "minApprovals": 2, "requiredRoles": ["qa", "product-owner"],
     "evidence": [{"name": "integration-tests", "kind": "check"}]},
]
UNIT_TESTS = {"name": "unit-tests", "kind": "check", "passed": True}
ETHICS = {"name": "ethics-checklist", "kind": "document", "uri": "https://wiki/ethics"}
INTEGRATION = {"name": "integration-tests", "kind": "check", "passed": True}
SEPARATION = "bob owned the technology since its current level was reached (separation of duties)"


def production(namespace: str, *, entry_max_level: int = 4, minimum_level: int = 7,
               enforcement: str = "enforce") -> dict[str, Any]:
    return policy(f"{namespace}-production", namespace, minimum_level=minimum_level,
                  requirements=REQUIREMENTS, entry_max_level=entry_max_level,
                  reviewers=BINDINGS, enforcement=enforcement, governed=True)


def as_json(document: dict[str, Any]) -> str:
    return json.dumps(document)


def status(sandbox: SecureSandbox, kind: str, name: str, namespace: str) -> dict[str, Any]:
    return dict((sandbox.get(kind, name, namespace) or {}).get("status") or {})


def wait_for(sandbox: SecureSandbox, kind: str, name: str, namespace: str, what: str,
             test: Any) -> dict[str, Any]:
    return eventually(lambda: (s := status(sandbox, kind, name, namespace)) and test(s) and s,
                      timeout=30, what=what)


def create_review(sandbox: SecureSandbox, user: str, name: str, namespace: str,
                  technology_name: str, from_level: int, to_level: int,
                  evidence: list[dict[str, Any]], **spec: Any) -> None:
    sandbox.as_user(user, "create", "-f", "-", check=True, input=as_json({
        "apiVersion": "mltrl.dev/v1alpha1", "kind": "LevelReview",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"technology": technology_name, "fromLevel": from_level, "toLevel": to_level,
                 "evidence": evidence, "approvals": [], **spec},
    }))


def approve(sandbox: SecureSandbox, user: str, review: str, namespace: str, role: str,
            **fields: Any) -> Any:
    patch = [{"op": "add", "path": "/spec/approvals/-",
              "value": {"role": role, "decision": "approve", **fields}}]
    return sandbox.as_user(user, "patch", "lvlreview", review, "-n", namespace,
                           "--type=json", "-p", json.dumps(patch))


def reapprove(sandbox: SecureSandbox, user: str, review: str, namespace: str, index: int,
              role: str) -> None:
    """Replace one's own approval: the webhook stamps it again, on the content now."""
    patch = [{"op": "replace", "path": f"/spec/approvals/{index}",
              "value": {"role": role, "decision": "approve"}}]
    result = sandbox.as_user(user, "patch", "lvlreview", review, "-n", namespace,
                             "--type=json", "-p", json.dumps(patch))
    assert result.returncode == 0, result.stderr


def refused(result: Any, *messages: str) -> str:
    assert result.returncode != 0, f"admitted: {result.stdout}"
    assert "denied the request" in result.stderr, result.stderr
    for message in messages:
        assert message in result.stderr
    return str(result.stderr)


def events(sandbox: SecureSandbox, namespace: str, name: str) -> list[dict[str, Any]]:
    listed = json.loads(sandbox.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)
    return [e for e in listed["items"] if e["involvedObject"]["name"] == name]


def claimer(name: str, namespace: str, claims: str, uri: str) -> str:
    return as_json({
        "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {"mltrl.dev/technology": claims}},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": uri}}},
    })


# --- 1. entry is approved, not declared -----------------------------------------------


def test_a_declared_entry_level_starts_at_the_cap_and_serves_nothing(
    sandbox: SecureSandbox, namespace: str
) -> None:
    sandbox.apply(production(namespace, minimum_level=4))
    sandbox.as_user("mallory", "apply", "-f", "-", check=True, input=as_json(
        technology("shortcut", namespace, entry_level=9, owner="mallory", model_version="1")))
    held = wait_for(sandbox, "mltech", "shortcut", namespace, "shortcut at its cap",
                    lambda s: s.get("level") == 4)
    assert held["entry"] == {"level": 9, "grantedLevel": 4, "approved": False}
    entry = condition({"status": held}, "EntryApproved") or {}
    assert (entry["status"], entry["reason"]) == ("False", "EntryReviewRequired")
    assert "spec.entryLevel 9 is above the entry.maxLevel 4" in entry["message"]
    assert eventually(lambda: any(e["reason"] == "EntryReviewRequired"
                                  for e in events(sandbox, namespace, "shortcut")))
    # Serving needs level 4 here, and it is at 4: it serves the model, not level 9's rights.
    assert held["effectiveLevel"] == 4
    # The entry level is immutable, and an edit of the spec changes nothing recorded.
    refused(sandbox.as_user("mallory", "patch", "mltech", "shortcut", "-n", namespace,
                            "--type=merge", "-p", '{"spec":{"entryLevel":4}}'),
            "spec.entryLevel: Forbidden: is immutable once created (was 9)")
    # A promotion may not claim to be the entry without the entry's requirements.
    create_review(sandbox, "mallory", "shortcut-entry", namespace, "shortcut", 4, 9, [],
                  type="entry")
    pending = wait_for(sandbox, "lvlreview", "shortcut-entry", namespace, "evaluated",
                       lambda s: s.get("phase") == "Pending")
    assert "role qa: no reviewers bound" not in " ".join(pending["unmet"])
    assert any("unit-tests" in line for line in pending["unmet"])


def test_an_entry_review_by_the_bound_roles_raises_the_technology_to_its_entry_level(
    sandbox: SecureSandbox, namespace: str
) -> None:
    sandbox.apply(production(namespace))
    sandbox.as_user("alice", "apply", "-f", "-", check=True,
                    input=as_json(technology("scorer", namespace, entry_level=6)))
    wait_for(sandbox, "mltech", "scorer", namespace, "scorer at 4", lambda s: s.get("level") == 4)
    create_review(sandbox, "alice", "scorer-entry", namespace, "scorer", 4, 6, [UNIT_TESTS],
                  type="entry")
    assert approve(sandbox, "bob", "scorer-entry", namespace, "qa").returncode == 0
    assert approve(sandbox, "carol", "scorer-entry", namespace, "product-owner").returncode == 0
    # Both approvals evaluated (the review is unmet on ethics from bob's approval on).
    pending = wait_for(sandbox, "lvlreview", "scorer-entry", namespace, "pending on ethics",
                       lambda s: any("ethics-checklist" in u for u in s.get("unmet") or [])
                       and len(s.get("approvedBy") or []) == 2)
    assert pending["phase"] == "Pending" and pending["approvedBy"] == ["bob", "carol"]
    # The evidence changes after the approvals: they no longer count, and say why.
    sandbox.as_user("alice", "patch", "lvlreview", "scorer-entry", "-n", namespace,
                    "--type=json", "-p", json.dumps(
                        [{"op": "add", "path": "/spec/evidence/-", "value": ETHICS}]),
                    check=True)
    dismissed = wait_for(sandbox, "lvlreview", "scorer-entry", namespace, "dismissals",
                         lambda s: len(s.get("dismissedApprovals") or []) == 2)
    assert dismissed["phase"] == "Pending"
    assert dismissed["dismissedApprovals"][0] == {
        "reviewer": "bob", "role": "qa",
        "reason": "evidence ethics-checklist added after bob approved",
    }
    assert status(sandbox, "mltech", "scorer", namespace)["level"] == 4
    # The technology's audit record keeps the dismissal, naming each approval and why.
    (entry,) = eventually(lambda: [e for e in exported(sandbox, f"{namespace}/scorer")
                                   if e["kind"] == "dismissedApprovals"],
                          what="the dismissal in the audit record")
    assert entry["review"] == "scorer-entry" and entry["fromLevel"] == 4
    assert entry["details"] == {
        "dismissed.bob": "evidence ethics-checklist added after bob approved",
        "dismissed.carol": "evidence ethics-checklist added after carol approved",
    }
    # Re-approvals on the content as it is now count.
    reapprove(sandbox, "bob", "scorer-entry", namespace, 0, "qa")
    reapprove(sandbox, "carol", "scorer-entry", namespace, 1, "product-owner")
    wait_for(sandbox, "lvlreview", "scorer-entry", namespace, "applied",
             lambda s: s.get("phase") == "Applied")
    entered = wait_for(sandbox, "mltech", "scorer", namespace, "scorer at 6",
                       lambda s: s.get("level") == 6)
    assert entered["entry"] == {"level": 6, "grantedLevel": 4, "approved": True,
                                "review": "scorer-entry"}
    assert (condition({"status": entered}, "EntryApproved") or {})["reason"] == "EntryReviewed"
    assert entered["history"][-1]["kind"] == "entry"
    assert entered["history"][-1]["by"] == ["bob", "carol"]


# --- 2. owners cannot approve, even after renaming -----------------------------------------


def test_a_renamed_owner_still_cannot_approve_and_owner_changes_are_recorded(
    sandbox: SecureSandbox, namespace: str
) -> None:
    sandbox.apply(production(namespace))
    sandbox.as_user("alice", "apply", "-f", "-", check=True,
                    input=as_json(technology("tagger", namespace)))
    wait_for(sandbox, "mltech", "tagger", namespace, "tagger at 3", lambda s: s.get("level") == 3)
    create_review(sandbox, "alice", "tagger-to-4", namespace, "tagger", 3, 4, [UNIT_TESTS])
    sandbox.as_user("alice", "patch", "mltech", "tagger", "-n", namespace, "--type=merge",
                    "-p", '{"spec":{"owner":"dave"}}', check=True)
    refused(approve(sandbox, "alice", "tagger-to-4", namespace, "ml-peer"),
            "alice owned mltech tagger and may not approve its promotion")
    # A policy admin hands the technology over: recorded, with who did it.
    sandbox.as_user("platform", "patch", "mltech", "tagger", "-n", namespace, "--type=merge",
                    "-p", '{"spec":{"owner":"erin"}}', check=True)
    owners = wait_for(sandbox, "mltech", "tagger", namespace, "three owners",
                      lambda s: len(s.get("owners") or []) == 3)["owners"]
    assert [(o["name"], o.get("changedBy")) for o in owners] == [
        ("alice", "alice"), ("dave", "alice"), ("erin", "platform")]
    assert owners[-1].get("until") is None and owners[0]["until"]
    changes = eventually(lambda: [e["message"] for e in events(sandbox, namespace, "tagger")
                                  if e["reason"] == "OwnerChanged" and "by platform" in
                                  e["message"]], what="the OwnerChanged event")
    assert changes[0].startswith("owner changed from dave to erin by platform")
    # Nobody writes who set the owner but the webhook.
    sandbox.as_user("mallory", "annotate", "mltech", "tagger", "-n", namespace, "--overwrite",
                    "mltrl.dev/owner-set-by=admin", check=True)
    annotations = (sandbox.get("mltech", "tagger", namespace) or {})["metadata"]["annotations"]
    assert annotations["mltrl.dev/owner-set-by"] == "platform"


def test_an_owner_cannot_approve_by_creating_the_review_before_the_technology(
    sandbox: SecureSandbox, namespace: str
) -> None:
    """bob holds qa and owns the technology he is about to create. He sends, in one
    `kubectl apply`, the review carrying his own qa approval first (no technology exists
    yet, so the webhook has no owner to refuse) and then the technology. The operator finds
    an entering technology with a review already approved by someone, and judges it against
    the entry as it would be stored (issue 17: entry and promotion in one write): bob is its
    owner, so the review stays Pending, the technology enters at 4 and goes no higher, and
    the history shows the entry only."""
    sandbox.apply(production(namespace))
    manifests = "\n---\n".join(as_json(document) for document in (
        {"apiVersion": "mltrl.dev/v1alpha1", "kind": "LevelReview",
         "metadata": {"name": "bobs-to-5", "namespace": namespace},
         "spec": {"technology": "bobs", "fromLevel": 4, "toLevel": 5,
                  "evidence": [UNIT_TESTS],
                  "approvals": [{"role": "qa", "decision": "approve"}]}},
        technology("bobs", namespace, entry_level=4, owner="bob"),
    ))
    sandbox.as_user("bob", "apply", "-f", "-", check=True, input=manifests)
    review = sandbox.get("lvlreview", "bobs-to-5", namespace) or {}
    assert review["spec"]["approvals"][0]["approvedBy"]["username"] == "bob"
    pending = wait_for(sandbox, "lvlreview", "bobs-to-5", namespace, "judged",
                       lambda s: s.get("phase") not in (None, ""))
    assert pending["phase"] == "Pending", pending
    assert pending["unmet"][0] == (
        "bob owns the technology and may not approve its review (separation of duties)")
    assert pending["dismissedApprovals"] == [
        {"reviewer": "bob", "role": "qa", "reason": SEPARATION}]
    entered = wait_for(sandbox, "mltech", "bobs", namespace, "bobs at 4",
                       lambda s: s.get("level") == 4)
    assert [h["kind"] for h in entered["history"]] == ["entry"]
    sandbox.settle(quiet_for=1.0)
    assert status(sandbox, "mltech", "bobs", namespace)["level"] == 4
    assert status(sandbox, "lvlreview", "bobs-to-5", namespace)["phase"] == "Pending"
    # The audit record: the entry, and bob's approval dismissed, with why; no promotion.
    record = exported(sandbox, f"{namespace}/bobs")
    assert [(e["kind"], e.get("toLevel")) for e in record] == [
        ("entry", 4), ("dismissedApprovals", 4)]
    assert record[1]["details"] == {"dismissed.bob": SEPARATION}


# --- 3. roles belong to people the policy names --------------------------------------------


def test_a_role_named_by_oneself_is_refused_or_counts_for_nothing(
    sandbox: SecureSandbox, namespace: str
) -> None:
    sandbox.apply(production(namespace, entry_max_level=6))
    sandbox.as_user("alice", "apply", "-f", "-", check=True,
                    input=as_json(technology("ranker", namespace, entry_level=6)))
    wait_for(sandbox, "mltech", "ranker", namespace, "ranker at 6", lambda s: s.get("level") == 6)
    create_review(sandbox, "alice", "ranker-to-7", namespace, "ranker", 6, 7, [INTEGRATION])
    refused(approve(sandbox, "mallory", "ranker-to-7", namespace, "product-owner"),
            "spec.approvals[0].role: Forbidden: mallory does not hold role product-owner")
    # Forging the stamp does not help: the webhook writes it from the authenticated user.
    forged = {"username": "carol", "groups": ["system:masters"], "time": "2020-01-01T00:00:00Z",
              "content": {"digest": "0" * 64}}
    assert approve(sandbox, "mallory", "ranker-to-7", namespace, "qa-lead",
                   approvedBy=forged).returncode == 0
    assert approve(sandbox, "bob", "ranker-to-7", namespace, "qa").returncode == 0
    review = sandbox.get("lvlreview", "ranker-to-7", namespace) or {}
    stamps = [a["approvedBy"] for a in review["spec"]["approvals"]]
    assert [s["username"] for s in stamps] == ["mallory", "bob"]
    assert "system:masters" not in stamps[0]["groups"]
    pending = wait_for(sandbox, "lvlreview", "ranker-to-7", namespace, "pending",
                       lambda s: s.get("phase") == "Pending" and len(s.get("approvedBy")) == 2)
    assert pending["unmet"] == ["needs an approval from a reviewer with role 'product-owner'"]


def test_bob_and_carol_promote_fraud_detection(sandbox: SecureSandbox, namespace: str) -> None:
    sandbox.apply(production(namespace, entry_max_level=6))
    sandbox.as_user("alice", "apply", "-f", "-", check=True, input=as_json(
        technology("fraud-detection", namespace, entry_level=6, model_version="1.4.0")))
    wait_for(sandbox, "mltech", "fraud-detection", namespace, "at 6",
             lambda s: s.get("level") == 6)
    create_review(sandbox, "alice", "fraud-detection-to-7", namespace, "fraud-detection", 6, 7,
                  [INTEGRATION])
    assert approve(sandbox, "bob", "fraud-detection-to-7", namespace, "qa").returncode == 0
    assert approve(sandbox, "carol", "fraud-detection-to-7", namespace,
                   "product-owner").returncode == 0
    promoted = wait_for(sandbox, "mltech", "fraud-detection", namespace, "at 7",
                        lambda s: s.get("level") == 7)
    assert promoted["history"][-1]["by"] == ["bob", "carol"]
    served = eventually(lambda: sandbox.get("isvc", "fraud-detection", namespace),
                        what="its InferenceService")
    assert served["spec"]["predictor"]["model"]["storageUri"] == (
        "s3://models/fraud-detection/1.4.0")


# --- 4. status is the operator's -----------------------------------------------------------


def test_nobody_but_the_operator_writes_status(sandbox: SecureSandbox, namespace: str) -> None:
    sandbox.apply(production(namespace))
    sandbox.as_user("mallory", "apply", "-f", "-", check=True,
                    input=as_json(technology("parser", namespace, owner="mallory")))
    wait_for(sandbox, "mltech", "parser", namespace, "parser at 3", lambda s: s.get("level") == 3)
    create_review(sandbox, "mallory", "parser-to-4", namespace, "parser", 3, 4, [UNIT_TESTS])
    wait_for(sandbox, "lvlreview", "parser-to-4", namespace, "pending",
             lambda s: s.get("phase") == "Pending")
    incident = {"status": {"incidents": [{
        "fingerprint": "x", "alertName": "Fake", "startsAt": "2026-01-01T00:00:00Z",
        "action": "demote", "toLevel": 3, "receivedAt": "2026-01-01T00:00:00Z"}]}}
    attempts = [
        ("mallory", "lvlreview", "parser-to-4", '{"status":{"phase":"Rejected"}}',
         "levelreviews/status"),
        ("mallory", "mltech", "parser", json.dumps(incident), "mltechnologies/status"),
        ("alice", "mltech", "parser", '{"status":{"level":9,"effectiveLevel":9}}',
         "mltechnologies/status"),
        ("admin", "lvlreview", "parser-to-4", '{"status":{"phase":"Approved"}}',
         "levelreviews/status"),
    ]
    policy_status = ("platform", "mltrlpolicy", f"{namespace}-production",
                     '{"status":{"namespaces":[]}}', "mltrlpolicies/status")

    def attempt(user: str, kind: str, name: str, patch: str) -> Any:
        scope = [] if kind == "mltrlpolicy" else ["-n", namespace]
        return sandbox.as_user(user, "patch", kind, name, *scope, "--subresource=status",
                               "--type=merge", "-p", patch)

    # The chart grants the status to the operator alone: RBAC refuses the people first
    # (kubectl reads the status before it patches it); the admin gets past RBAC.
    for user, kind, name, patch, resource in [*attempts, policy_status]:
        result = attempt(user, kind, name, patch)
        if user == "admin":
            refused(result, "status: Forbidden: only the operator's service account may "
                    f"write {resource}")
        else:
            rbac_refused(result, user, resource)
    # Were a platform team to grant them the status, the webhook would refuse them still.
    with granted(sandbox, f"{namespace}-status-writers", ("mallory", "alice", "platform"),
                 ("mltechnologies/status", "levelreviews/status", "mltrlpolicies/status")):
        for user, kind, name, patch, resource in [*attempts, policy_status]:
            refused(attempt(user, kind, name, patch),
                    f"status: Forbidden: only the operator's service account may write {resource}")
    assert status(sandbox, "lvlreview", "parser-to-4", namespace)["phase"] == "Pending"
    assert status(sandbox, "mltech", "parser", namespace)["level"] == 3
    assert status(sandbox, "mltech", "parser", namespace)["incidents"] == []


def test_the_operators_namespace_is_no_exemption_for_mltrl_objects(
    sandbox: SecureSandbox
) -> None:
    namespace = sandbox.namespace("mltrl-system")
    sandbox.as_user("mallory", "apply", "-f", "-", check=True,
                    input=as_json(technology("hidden", namespace, owner="mallory")))
    wait_for(sandbox, "mltech", "hidden", namespace, "hidden at 3", lambda s: s.get("level") == 3)
    status_patch = ("patch", "mltech", "hidden", "-n", namespace, "--subresource=status",
                    "--type=merge", "-p", '{"status":{"level":9}}')
    rbac_refused(sandbox.as_user("mallory", *status_patch), "mallory", "mltechnologies/status")
    with granted(sandbox, "hidden-status-writer", ["mallory"], ["mltechnologies/status"]):
        refused(sandbox.as_user("mallory", *status_patch), "status: Forbidden")
    refused(sandbox.as_user("admin", *status_patch), "status: Forbidden")
    refused(sandbox.as_user("mallory", "patch", "mltech", "hidden", "-n", namespace,
                            "--type=merge", "-p", '{"spec":{"entryLevel":9}}'),
            "spec.entryLevel: Forbidden")
    create_review(sandbox, "mallory", "hidden-to-4", namespace, "hidden", 3, 4, [UNIT_TESTS])
    refused(approve(sandbox, "mallory", "hidden-to-4", namespace, "qa", reviewer="bob"),
            "mallory may not record an approval as 'bob'")


def test_a_terminating_technology_is_no_writable_one(
    sandbox: SecureSandbox, namespace: str
) -> None:
    sandbox.as_user("mallory", "apply", "-f", "-", check=True,
                    input=as_json(technology("lingering", namespace, owner="mallory")))
    wait_for(sandbox, "mltech", "lingering", namespace, "at 3", lambda s: s.get("level") == 3)
    sandbox.as_user("mallory", "patch", "mltech", "lingering", "-n", namespace, "--type=merge",
                    "-p", '{"metadata":{"finalizers":["example.com/hold"]}}', check=True)
    sandbox.as_user("mallory", "delete", "mltech", "lingering", "-n", namespace, "--wait=false",
                    check=True)
    status_patch = ("patch", "mltech", "lingering", "-n", namespace, "--subresource=status",
                    "--type=merge", "-p", '{"status":{"level":9,"effectiveLevel":9}}')
    rbac_refused(sandbox.as_user("mallory", *status_patch), "mallory", "mltechnologies/status")
    with granted(sandbox, f"{namespace}-status-writer", ["mallory"], ["mltechnologies/status"]):
        refused(sandbox.as_user("mallory", *status_patch), "status: Forbidden")
    sandbox.kubectl("patch", "mltech", "lingering", "-n", namespace, "--type=merge",
                    "-p", '{"metadata":{"finalizers":null}}')


# --- 5. an InferenceService that claims a technology serves its model ---------------------


def test_a_claimer_serves_the_technologys_model_and_is_stopped_after_a_demotion(
    sandbox: SecureSandbox, namespace: str
) -> None:
    sandbox.apply(production(namespace, entry_max_level=7))
    sandbox.as_user("alice", "apply", "-f", "-", check=True, input=as_json(
        technology("fraud", namespace, entry_level=6, model_version="1.0")))
    wait_for(sandbox, "mltech", "fraud", namespace, "at 6", lambda s: s.get("level") == 6)
    create_review(sandbox, "alice", "fraud-to-7", namespace, "fraud", 6, 7, [INTEGRATION])
    approve(sandbox, "bob", "fraud-to-7", namespace, "qa")
    approve(sandbox, "carol", "fraud-to-7", namespace, "product-owner")
    wait_for(sandbox, "mltech", "fraud", namespace, "at 7", lambda s: s.get("effectiveLevel") == 7)
    refused(sandbox.as_user("mallory", "apply", "-f", "-",
                            input=claimer("borrowed", namespace, "fraud", "s3://models/anything")),
            "spec.predictor.model.storageUri: Forbidden: InferenceService "
            f"{namespace}/borrowed may not serve: the InferenceService claims mltech fraud but "
            "serves s3://models/anything; fraud may serve s3://models/fraud/1.0")
    # An owner reference is no passport: anyone may write one.
    forged = json.loads(claimer("forged", namespace, "fraud", "s3://models/anything"))
    forged["metadata"]["ownerReferences"] = [{
        "apiVersion": "mltrl.dev/v1alpha1", "kind": "MLTechnology", "name": "fraud",
        "uid": "00000000-0000-0000-0000-000000000000", "controller": True}]
    refused(sandbox.as_user("mallory", "apply", "-f", "-", input=as_json(forged)),
            "claims mltech fraud but serves s3://models/anything")
    mirror = sandbox.as_user("bob", "apply", "-f", "-", input=claimer(
        "mirror", namespace, "fraud", model("fraud", "1.0")["storageUri"]))
    assert mirror.returncode == 0, mirror.stderr
    # A switchback closes the gate: the claimer is stopped too, not only fraud's own.
    create_review(sandbox, "alice", "fraud-back-to-6", namespace, "fraud", 7, 6, [],
                  reason="error budget burnt")
    approve(sandbox, "bob", "fraud-back-to-6", namespace, "qa")
    wait_for(sandbox, "mltech", "fraud", namespace, "back at 6", lambda s: s.get("level") == 6)
    eventually(lambda: ((sandbox.get("isvc", "mirror", namespace) or {}).get("metadata", {})
                        .get("annotations") or {}).get("serving.kserve.io/stop") == "true",
               timeout=30, what="the claimer stopped after the demotion")


def test_a_claimer_admitted_under_audit_is_stopped_when_the_policy_enforces(
    sandbox: SecureSandbox, namespace: str
) -> None:
    sandbox.apply(production(namespace, entry_max_level=7, enforcement="audit"))
    sandbox.as_user("alice", "apply", "-f", "-", check=True, input=as_json(
        technology("churn", namespace, entry_level=7, model_version="2.0")))
    wait_for(sandbox, "mltech", "churn", namespace, "at 7", lambda s: s.get("effectiveLevel") == 7)
    admitted = sandbox.as_user("mallory", "apply", "-f", "-", input=claimer(
        "borrowed", namespace, "churn", "s3://models/anything"))
    assert admitted.returncode == 0, admitted.stderr
    assert "serves s3://models/anything" in admitted.stderr  # the audit warning
    sandbox.apply(production(namespace, entry_max_level=7, enforcement="enforce"))
    eventually(lambda: ((sandbox.get("isvc", "borrowed", namespace) or {}).get("metadata", {})
                        .get("annotations") or {}).get("serving.kserve.io/stop") == "true",
               timeout=30, what="the claimer stopped once the policy enforces")


# --- 6. inferenceServiceName ----------------------------------------------------------------


def test_an_inference_service_name_must_be_dns_and_the_technologys_own(
    sandbox: SecureSandbox, namespace: str
) -> None:
    sandbox.apply(production(namespace, entry_max_level=9, minimum_level=3))
    bad = technology("naming", namespace, model_version="1")
    bad["spec"]["serving"]["inferenceServiceName"] = "Not_A_Name"
    schema = sandbox.as_user("mallory", "apply", "-f", "-", input=as_json(bad))
    assert schema.returncode != 0  # the CRD's pattern refuses it before any webhook
    assert 'spec.serving.inferenceServiceName: Invalid value: "Not_A_Name"' in schema.stderr
    sandbox.as_user("alice", "apply", "-f", "-", check=True,
                    input=as_json(technology("owned", namespace, model_version="1")))
    eventually(lambda: sandbox.get("isvc", "owned", namespace), what="owned's InferenceService")
    taker = technology("taker", namespace, model_version="1", owner="mallory")
    taker["spec"]["serving"]["inferenceServiceName"] = "owned"
    refused(sandbox.as_user("mallory", "apply", "-f", "-", input=as_json(taker)),
            "spec.serving.inferenceServiceName: Forbidden: InferenceService owned exists and "
            "is not owned by mltech taker")
