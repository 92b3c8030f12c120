"""A new model is served only through its change review, with the admission webhooks on:
mallory (an editor and reviewer bound to no role) ships a model and tries every way to get
it served without the review; alice's change review, approved by bob, then rolls it out.
Real kubectl as each person."""

from __future__ import annotations

import json

import pytest

from tests.integration.admission.conftest import SecureSandbox
from tests.integration.admission.test_integrity import (
    approve,
    claimer,
    create_review,
    production,
    refused,
    wait_for,
)
from tests.integration.harness import eventually
from tests.integration.operator.scenarios import model, technology

pytestmark = pytest.mark.integration

# Level 4's built-in rule (no policy here names level 4): these two and one approval.
LEVEL_4 = [{"name": "requirements", "kind": "document", "uri": "https://wiki/req"},
           {"name": "unit-tests", "kind": "check", "passed": True}]


def served_uri(sandbox: SecureSandbox, namespace: str) -> str:
    return sandbox.kubectl("get", "isvc", "scorer", "-n", namespace, "-o",
                           "jsonpath={.spec.predictor.model.storageUri}").stdout.strip()


def test_a_held_model_is_served_only_through_its_change_review(
    sandbox: SecureSandbox, namespace: str
) -> None:
    sandbox.apply(production(namespace, minimum_level=4))
    sandbox.as_user("alice", "apply", "-f", "-", check=True, input=json.dumps(
        technology("scorer", namespace, entry_level=4, model_version="1.4.0")))
    eventually(lambda: served_uri(sandbox, namespace) == "s3://models/scorer/1.4.0",
               timeout=30, what="scorer to serve the model it entered with")

    sandbox.as_user("mallory", "patch", "mltech", "scorer", "-n", namespace, "--type=merge",
                    "-p", json.dumps({"spec": {"model": model("scorer", "1.5.0")}}),
                    check=True)
    held = wait_for(sandbox, "mltech", "scorer", namespace, "1.5.0 held",
                    lambda s: (s.get("pendingModel") or {}).get("version") == "1.5.0")
    assert held["approvedModel"]["version"] == "1.4.0"
    assert served_uri(sandbox, namespace) == "s3://models/scorer/1.4.0"

    # The status is the operator's, even for the cluster admin.
    refused(sandbox.kubectl("patch", "mltech", "scorer", "-n", namespace,
                            "--subresource=status", "--type=merge", "-p", json.dumps(
                                {"status": {"approvedModel": {
                                    **model("scorer", "1.5.0"), "approvedAt": "now",
                                    "how": "me"}}}), check=False),
            "only the operator's service account may write mltechnologies/status")
    # An InferenceService of mallory's own may not serve the held model for scorer.
    refused(sandbox.as_user("mallory", "apply", "-f", "-", input=claimer(
        "shadow", namespace, "scorer", "s3://models/scorer/1.5.0")),
        "serves s3://models/scorer/1.5.0")
    # A change review keeps the level: one that moves it is refused at admission.
    refused(sandbox.as_user("mallory", "create", "-f", "-", input=json.dumps({
        "apiVersion": "mltrl.dev/v1alpha1", "kind": "LevelReview",
        "metadata": {"name": "scorer-change-up", "namespace": namespace},
        "spec": {"technology": "scorer", "type": "change", "fromLevel": 4, "toLevel": 5,
                 "model": {"version": "1.5.0"}, "approvals": []}})),
        "spec.toLevel: Invalid: a change review keeps the level")
    # One naming another model is admitted and Invalid, with the reason.
    create_review(sandbox, "mallory", "scorer-change-1.4.9", namespace, "scorer", 4, 4,
                  LEVEL_4, type="change", model={"version": "1.4.9"})
    invalid = wait_for(sandbox, "lvlreview", "scorer-change-1.4.9", namespace, "Invalid",
                       lambda s: s.get("phase") == "Invalid")
    assert "1.4.9 is not the pending model (1.5.0)" in invalid["message"]

    # Once approved, the model a change review names is fixed (bob approves the Invalid
    # one, which stays open: alice may not point it at 1.5.0 now).
    assert approve(sandbox, "bob", "scorer-change-1.4.9", namespace, "qa").returncode == 0
    refused(sandbox.as_user("alice", "patch", "lvlreview", "scorer-change-1.4.9", "-n",
                            namespace, "--type=merge", "-p",
                            '{"spec":{"model":{"version":"1.5.0"}}}'),
            "spec.model: Forbidden: cannot change once the review carries approvals")

    # alice opens the change review, bob approves it: 1.5.0 rolls out.
    create_review(sandbox, "alice", "scorer-change-1.5.0", namespace, "scorer", 4, 4,
                  LEVEL_4, type="change", model={"version": "1.5.0"})
    approved = approve(sandbox, "bob", "scorer-change-1.5.0", namespace, "qa")
    assert approved.returncode == 0, approved.stderr
    wait_for(sandbox, "lvlreview", "scorer-change-1.5.0", namespace, "Applied",
             lambda s: s.get("phase") == "Applied")
    eventually(lambda: served_uri(sandbox, namespace) == "s3://models/scorer/1.5.0",
               timeout=30, what="1.5.0 to roll out once its change review is applied")
