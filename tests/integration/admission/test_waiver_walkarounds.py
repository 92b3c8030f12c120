"""Walking around a waiver, with real kubectl as untrusted users against the webhooks and the
operator: mallory (an editor, here even named a waiver approver) approving the waiver of
her own technology, before and after handing it to alice; a waiver for another
technology; extending expiresAt after approval; a waiver in the operator's namespace. Each
is refused at admission or counts for nothing; bob's approval, the honest path, counts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.integration.admission.conftest import SecureSandbox
from tests.integration.admission.test_integrity import (
    UNIT_TESTS,
    approve,
    as_json,
    create_review,
    refused,
    status,
    wait_for,
)
from tests.integration.harness import eventually
from tests.integration.operator.scenarios import policy, technology

pytestmark = pytest.mark.integration

BIAS_AUDIT = "missing document 'bias-audit'"


def governed(namespace: str) -> dict[str, Any]:
    requirements = [{"level": level, "minApprovals": 1, "requiredRoles": ["qa"],
                     "evidence": [{"name": "unit-tests", "kind": "check"}]}
                    for level in range(1, 10)]
    requirements[4]["evidence"].append({"name": "bias-audit", "kind": "document"})  # level 5
    body = policy(f"{namespace}-prod", namespace, requirements=requirements)
    # mallory sits in the risk office: the policy names her as a waiver approver too.
    body["spec"]["waivers"] = {"maxDuration": "336h",
                               "approvers": [{"users": ["bob", "mallory"]}]}
    return body


def waiver(name: str, namespace: str, technology_name: str, *, days: float = 7,
           approvals: list[dict[str, Any]] | None = None) -> str:
    expires = (datetime.now(UTC) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return as_json({
        "apiVersion": "mltrl.dev/v1alpha1", "kind": "MLTRLWaiver",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"technology": technology_name, "reason": "the bias audit is booked",
                 "ticket": "RISK-12", "expiresAt": expires,
                 "waives": {"level": 5, "evidence": ["bias-audit"]},
                 "approvals": approvals or []},
    })


def approve_waiver(sandbox: SecureSandbox, user: str, name: str, namespace: str) -> Any:
    patch = [{"op": "add", "path": "/spec/approvals/-", "value": {"comment": "fine"}}]
    return sandbox.as_user(user, "patch", "mltrlwaiver", name, "-n", namespace, "--type=json",
                           "-p", json.dumps(patch))


def waiver_status(sandbox: SecureSandbox, name: str, namespace: str) -> dict[str, Any]:
    return status(sandbox, "mltrlwaiver", name, namespace)


def test_a_waiver_counts_only_by_an_approver_who_never_owned_the_technology(
    sandbox: SecureSandbox, namespace: str
) -> None:
    sandbox.apply(governed(namespace))
    sandbox.as_user("mallory", "apply", "-f", "-", check=True,
                    input=as_json(technology("shortcut", namespace, entry_level=4,
                                             owner="mallory")))
    wait_for(sandbox, "mltech", "shortcut", namespace, "at 4", lambda s: s.get("level") == 4)
    create_review(sandbox, "mallory", "shortcut-to-5", namespace, "shortcut", 4, 5,
                  [UNIT_TESTS])
    assert approve(sandbox, "bob", "shortcut-to-5", namespace, "qa").returncode == 0
    wait_for(sandbox, "lvlreview", "shortcut-to-5", namespace, "pending on the bias audit",
             lambda s: s.get("unmet") == [BIAS_AUDIT])

    # mallory writes a waiver for her own technology and approves it: stamped (the policy
    # names her), but an owner's approval counts for nothing.
    sandbox.as_user("mallory", "apply", "-f", "-", check=True,
                    input=waiver("skip-bias", namespace, "shortcut"))
    assert approve_waiver(sandbox, "mallory", "skip-bias", namespace).returncode == 0
    stored = sandbox.get("mltrlwaiver", "skip-bias", namespace)
    assert stored is not None and stored["spec"]["approvals"][0]["approver"] == "mallory"
    inactive = wait_for(sandbox, "mltrlwaiver", "skip-bias", namespace, "not counted",
                        lambda s: "owners of the technology may not approve" in
                        (s.get("message") or ""))
    assert inactive["active"] is False

    # Handing the technology to alice frees nobody: mallory owned it since level 4.
    sandbox.as_user("mallory", "patch", "mltech", "shortcut", "-n", namespace, "--type=merge",
                    "-p", '{"spec":{"owner":"alice"}}', check=True)
    wait_for(sandbox, "mltech", "shortcut", namespace, "alice owns it",
             lambda s: [o["name"] for o in s.get("owners") or []] == ["mallory", "alice"])
    sandbox.settle(quiet_for=2.0)
    assert waiver_status(sandbox, "skip-bias", namespace)["active"] is False
    review = status(sandbox, "lvlreview", "shortcut-to-5", namespace)
    assert review["phase"] == "Pending" and review["unmet"] == [BIAS_AUDIT]
    assert not review.get("waivers")

    # Extending the waiver is refused once it carries an approval.
    later = (datetime.now(UTC) + timedelta(days=13)).strftime("%Y-%m-%dT%H:%M:%SZ")
    refused(sandbox.as_user("mallory", "patch", "mltrlwaiver", "skip-bias", "-n", namespace,
                            "--type=merge", "-p", json.dumps({"spec": {"expiresAt": later}})),
            "spec.expiresAt: Forbidden: fixed once the waiver is approved")

    # bob, named by the policy and never an owner, approves: now it counts, and the review
    # goes through saying which waiver took off what.
    assert approve_waiver(sandbox, "bob", "skip-bias", namespace).returncode == 0
    eventually(lambda: waiver_status(sandbox, "skip-bias", namespace).get("active"),
               timeout=30, what="the waiver to count")
    applied = wait_for(sandbox, "lvlreview", "shortcut-to-5", namespace, "applied",
                       lambda s: s.get("phase") == "Applied")
    assert [(w["name"], w["waived"], w["approvedBy"]) for w in applied["waivers"]] == [
        ("skip-bias", ["evidence bias-audit"], ["bob"])]
    assert status(sandbox, "mltech", "shortcut", namespace)["level"] == 5


def test_a_waiver_for_another_technology_or_another_namespace_takes_nothing_off(
    sandbox: SecureSandbox, namespace: str
) -> None:
    sandbox.apply(governed(namespace))
    for name, owner in (("shortcut", "mallory"), ("other", "alice")):
        sandbox.as_user(owner, "apply", "-f", "-", check=True,
                        input=as_json(technology(name, namespace, entry_level=4, owner=owner)))
        wait_for(sandbox, "mltech", name, namespace, "at 4", lambda s: s.get("level") == 4)
    create_review(sandbox, "mallory", "shortcut-to-5", namespace, "shortcut", 4, 5,
                  [UNIT_TESTS])
    assert approve(sandbox, "bob", "shortcut-to-5", namespace, "qa").returncode == 0

    # A waiver for `other`, approved by bob, counts for `other` only.
    sandbox.as_user("mallory", "apply", "-f", "-", check=True,
                    input=waiver("other-bias", namespace, "other"))
    assert approve_waiver(sandbox, "bob", "other-bias", namespace).returncode == 0
    eventually(lambda: waiver_status(sandbox, "other-bias", namespace).get("active"),
               timeout=30, what="other's waiver to count")
    # ... and may not be pointed at shortcut once approved.
    refused(sandbox.as_user("mallory", "patch", "mltrlwaiver", "other-bias", "-n", namespace,
                            "--type=merge", "-p", '{"spec":{"technology":"shortcut"}}'),
            "spec.technology: Forbidden: fixed once the waiver is approved")

    # The operator's namespace is no exemption: a waiver there for shortcut is refused
    # (no such technology there), and one with bob's name typed in is refused too.
    system = sandbox.namespace("mltrl-system")
    refused(sandbox.as_user("mallory", "apply", "-f", "-",
                            input=waiver("skip-bias", system, "shortcut")),
            "spec.technology: Not found: no MLTechnology shortcut in this namespace")
    sandbox.as_user("mallory", "apply", "-f", "-", check=True,
                    input=as_json(technology("shortcut", system, entry_level=4,
                                             owner="mallory")))
    refused(sandbox.as_user("mallory", "apply", "-f", "-", input=waiver(
        "skip-bias", system, "shortcut", approvals=[{"approver": "bob", "comment": "ok"}])),
        "spec.approvals[0].approver: Forbidden: mallory may not approve in bob's name")
    assert sandbox.get("mltrlwaiver", "skip-bias", system) is None

    sandbox.settle(quiet_for=2.0)
    review = status(sandbox, "lvlreview", "shortcut-to-5", namespace)
    assert review["phase"] == "Pending" and review["unmet"] == [BIAS_AUDIT]
    assert status(sandbox, "mltech", "shortcut", namespace)["level"] == 4


def test_the_inference_service_webhook_opens_by_the_waiver_the_operator_counts(
    sandbox: SecureSandbox, namespace: str
) -> None:
    """One gate: the webhook judges a claiming InferenceService with the technology's
    waivers, as the reconciler judges the technology's own."""
    body = policy(f"{namespace}-prod", namespace, minimum_level=6, governed=True)
    body["spec"]["waivers"] = {"maxDuration": "336h", "approvers": [{"users": ["bob"]}]}
    sandbox.apply(body)
    sandbox.as_user("alice", "apply", "-f", "-", check=True, input=as_json(
        technology("scorer", namespace, entry_level=5, model_version="1.0.0")))
    wait_for(sandbox, "mltech", "scorer", namespace, "at 5", lambda s: s.get("level") == 5)
    canary = as_json({
        "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
        "metadata": {"name": "scorer-canary", "namespace": namespace,
                     "labels": {"mltrl.dev/technology": "scorer"}},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"},
                                         "storageUri": "s3://models/scorer/1.0.0"}}},
    })
    refused(sandbox.as_user("alice", "apply", "-f", "-", input=canary),
            "serving requires level 6")

    sandbox.as_user("alice", "apply", "-f", "-", check=True, input=as_json({
        "apiVersion": "mltrl.dev/v1alpha1", "kind": "MLTRLWaiver",
        "metadata": {"name": "canary", "namespace": namespace},
        "spec": {"technology": "scorer", "reason": "a two-week canary", "ticket": "OPS-7",
                 "expiresAt": (datetime.now(UTC) + timedelta(days=7)).strftime(
                     "%Y-%m-%dT%H:%M:%SZ"),
                 "waives": {"servingMinimum": 5}, "approvals": []},
    }))
    # Not yet approved: still refused. mallory may not approve (the policy names bob).
    refused(sandbox.as_user("alice", "apply", "-f", "-", input=canary),
            "serving requires level 6")
    refused(approve_waiver(sandbox, "mallory", "canary", namespace),
            "mallory is not named in waivers.approvers")
    assert approve_waiver(sandbox, "bob", "canary", namespace).returncode == 0
    eventually(lambda: waiver_status(sandbox, "canary", namespace).get("active"), timeout=30,
               what="the waiver to count")
    admitted = sandbox.as_user("alice", "apply", "-f", "-", input=canary)
    assert admitted.returncode == 0, admitted.stderr
    # The technology's own InferenceService is served by the same waiver.
    own = eventually(lambda: sandbox.get("isvc", "scorer", namespace), timeout=30,
                     what="the technology's own InferenceService")
    assert own["spec"]["predictor"]["model"]["storageUri"] == "s3://models/scorer/1.0.0"
    serving = status(sandbox, "mltech", "scorer", namespace)["serving"]
    assert serving["waiver"]["name"] == "canary" and serving["requiredLevel"] == 5
