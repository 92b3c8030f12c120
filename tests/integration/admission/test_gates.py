"""Nobody promotes, approves or serves where they may not: real kubectl as different users
against the sandbox, which calls the operator's admission webhooks over HTTPS."""

from __future__ import annotations

import json
import re
import ssl
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.integration.admission.conftest import CI, SecureSandbox
from tests.integration.harness import eventually
from tests.integration.operator.scenarios import policy, technology

pytestmark = pytest.mark.integration

DENIED = 'admission webhook "{}" denied the request: '


def status_of(sandbox: SecureSandbox, kind: str, name: str, namespace: str) -> dict[str, Any]:
    return dict((sandbox.get(kind, name, namespace) or {}).get("status") or {})


def wait_for_level(sandbox: SecureSandbox, name: str, namespace: str, level: int) -> None:
    eventually(
        lambda: status_of(sandbox, "mltech", name, namespace).get("effectiveLevel") == level,
        what=f"mltech {name} at level {level}",
    )


def inference_service(name: str, namespace: str, claims: str | None) -> str:
    labels = {"mltrl.dev/technology": claims} if claims else {}
    return json.dumps({
        "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"},
                                         "storageUri": f"s3://models/{name}"}}},
    })


def level_review(name: str, namespace: str, technology_name: str, from_level: int,
                 to_level: int, approvals: list[dict[str, Any]] | None = None) -> str:
    return json.dumps({
        "apiVersion": "mltrl.dev/v1alpha1", "kind": "LevelReview",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "technology": technology_name, "fromLevel": from_level, "toLevel": to_level,
            "evidence": [{"name": "unit-tests", "kind": "check", "passed": True}],
            "approvals": approvals or [],
        },
    })


def add_approval(sandbox: SecureSandbox, user: str, review: str, namespace: str,
                 **approval: Any) -> Any:
    patch = [{"op": "add", "path": "/spec/approvals/-",
              "value": {"role": "qa", "decision": "approve", **approval}}]
    return sandbox.as_user(user, "patch", "lvlreview", review, "-n", namespace,
                           "--type=json", "-p", json.dumps(patch))


# --- serving ---------------------------------------------------------------------------


def test_an_inference_service_below_the_gate_in_a_governed_namespace_is_refused(
    sandbox: SecureSandbox, namespace: str
) -> None:
    sandbox.apply(policy(f"{namespace}-prod", namespace, minimum_level=7, governed=True))
    sandbox.as_user("alice", "apply", "-f", "-", check=True,
                    input=json.dumps(technology("scorer", namespace, entry_level=5)))
    wait_for_level(sandbox, "scorer", namespace, 5)

    refused = sandbox.as_user("mallory", "apply", "-f", "-",
                              input=inference_service("scorer", namespace, "scorer"))
    assert refused.returncode != 0
    assert DENIED.format("inferenceservices.validate.mltrl.dev") + (
        "metadata.labels[mltrl.dev/technology]: Forbidden: "
        f"InferenceService {namespace}/scorer may not serve: mltech scorer is at level 5 "
        f'(Machine Learning "Capability"); serving requires level 7 (policy {namespace}-prod)'
    ) in refused.stderr
    assert "Error from server (Forbidden)" in refused.stderr

    unclaimed = sandbox.as_user("bob", "apply", "-f", "-",
                                input=inference_service("anything", namespace, None))
    assert unclaimed.returncode != 0
    assert "claims no MLTechnology (label mltrl.dev/technology) and the namespace is " \
           f"governed (policy {namespace}-prod)" in unclaimed.stderr
    # Not even the cluster admin: a gate the admin can walk through is not a gate.
    assert sandbox.kubectl("apply", "-f", "-", check=False,
                           input=inference_service("scorer", namespace, "scorer")).returncode
    assert "No resources found" in sandbox.kubectl("get", "isvc", "-n", namespace).stderr


def test_the_operators_own_inference_service_passes_the_open_gate(
    sandbox: SecureSandbox, namespace: str
) -> None:
    sandbox.apply(policy(f"{namespace}-prod", namespace, minimum_level=6, governed=True))
    sandbox.as_user("alice", "apply", "-f", "-", check=True, input=json.dumps(
        technology("ranker", namespace, entry_level=6, model_version="1.0")))
    served = eventually(lambda: sandbox.get("isvc", "ranker", namespace),
                        what="the operator's InferenceService")
    assert served["metadata"]["labels"]["mltrl.dev/technology"] == "ranker"
    # A user's InferenceService for a technology at the gate passes too, serving its model.
    canary = json.loads(inference_service("ranker-canary", namespace, "ranker"))
    canary["spec"]["predictor"]["model"]["storageUri"] = "s3://models/ranker/1.0"
    admitted = sandbox.as_user("bob", "apply", "-f", "-", input=json.dumps(canary))
    assert admitted.returncode == 0, admitted.stderr


def test_audit_mode_warns_and_allows(sandbox: SecureSandbox, namespace: str) -> None:
    sandbox.apply(policy(f"{namespace}-watch", namespace, minimum_level=7, governed=True,
                         enforcement="audit"))
    sandbox.as_user("alice", "apply", "-f", "-", check=True,
                    input=json.dumps(technology("scorer", namespace, entry_level=5)))
    wait_for_level(sandbox, "scorer", namespace, 5)
    admitted = sandbox.as_user("mallory", "apply", "-f", "-",
                               input=inference_service("scorer", namespace, "scorer"))
    assert admitted.returncode == 0, admitted.stderr
    assert "inferenceservice.serving.kserve.io/scorer created" in admitted.stdout
    assert f"Warning: InferenceService {namespace}/scorer: mltech scorer is at level 5" \
        in admitted.stderr
    assert f"requires level 7 (policy {namespace}-watch) (audit: reported only)" \
        in admitted.stderr


# --- reviews -----------------------------------------------------------------------------


@pytest.fixture
def reviewed(sandbox: SecureSandbox, namespace: str) -> str:
    """Technology tagger (owner alice) at level 3, and alice's review tagger-to-4; bob and
    the CI account's group hold qa."""
    sandbox.apply(policy(f"{namespace}-policy", namespace, reviewers=[
        {"role": "qa", "users": ["bob"], "groups": ["system:serviceaccounts:ci"]}]))
    sandbox.as_user("alice", "apply", "-f", "-", check=True,
                    input=json.dumps(technology("tagger", namespace)))
    wait_for_level(sandbox, "tagger", namespace, 3)
    created = sandbox.as_user("alice", "create", "-f", "-",
                              input=level_review("tagger-to-4", namespace, "tagger", 3, 4))
    assert created.returncode == 0, created.stderr
    return namespace


def test_a_reviewer_approves_as_themselves_and_is_stamped(
    sandbox: SecureSandbox, reviewed: str
) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    result = add_approval(sandbox, "bob", "tagger-to-4", reviewed, comment="tests are green")
    assert result.returncode == 0, result.stderr
    body = sandbox.get("lvlreview", "tagger-to-4", reviewed) or {}
    (approval,) = body["spec"]["approvals"]
    assert approval["reviewer"] == "bob"
    stamped = datetime.strptime(approval["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before - timedelta(seconds=5) <= stamped <= datetime.now(UTC) + timedelta(seconds=1)
    eventually(lambda: status_of(sandbox, "mltech", "tagger", reviewed).get("level") == 4,
               what="the promotion")
    history = status_of(sandbox, "mltech", "tagger", reviewed)["history"][-1]
    assert history["by"] == ["bob"] and history["review"] == "tagger-to-4"


def test_forging_a_reviewers_name_is_refused_unless_trusted(
    sandbox: SecureSandbox, reviewed: str
) -> None:
    forged = add_approval(sandbox, "mallory", "tagger-to-4", reviewed, reviewer="bob",
                          time="2026-01-01T00:00:00Z")
    assert forged.returncode != 0
    assert DENIED.format("levelreviews.validate.mltrl.dev") + (
        "spec.approvals[0].reviewer: Forbidden: mallory may not record an approval as 'bob': "
        "reviewers approve as themselves (leave reviewer empty and it is filled in)"
    ) in forged.stderr
    # kubectl --as: the impersonated user is the requester, and is stamped.
    impersonated = sandbox.kubectl(
        "--as", "carol", "patch", "lvlreview", "tagger-to-4", "-n", reviewed, "--type=json",
        "-p", json.dumps([{"op": "add", "path": "/spec/approvals/-",
                           "value": {"role": "product-owner", "decision": "approve"}}]),
        check=False,
    )
    assert impersonated.returncode == 0, impersonated.stderr
    # Nobody but carol may take her decision back or change it.
    removed = sandbox.as_user("bob", "patch", "lvlreview", "tagger-to-4", "-n", reviewed,
                              "--type=json", "-p",
                              json.dumps([{"op": "remove", "path": "/spec/approvals/0"}]))
    assert removed.returncode != 0
    assert "bob may not change or remove carol's approval (removed)" in removed.stderr
    # A CI service account in a trusted group records an approval made elsewhere.
    recorded = add_approval(sandbox, CI, "tagger-to-4", reviewed, reviewer="dave",
                            time="2026-11-20T10:00:00Z")
    assert recorded.returncode == 0, recorded.stderr
    approvals = (sandbox.get("lvlreview", "tagger-to-4", reviewed) or {})["spec"]["approvals"]
    assert [(a["reviewer"], a["role"]) for a in approvals] == [
        ("carol", "product-owner"), ("dave", "qa"),
    ]
    assert approvals[1]["time"] == "2026-11-20T10:00:00Z"


def test_the_owners_self_approval_is_refused(sandbox: SecureSandbox, reviewed: str) -> None:
    refused = add_approval(sandbox, "alice", "tagger-to-4", reviewed)
    assert refused.returncode != 0
    assert (
        "spec.approvals[0]: Forbidden: alice owns mltech tagger and may not approve its "
        f"promotion (separation of duties, policy {reviewed}-policy"
    ) in refused.stderr


def test_an_applied_review_cannot_be_edited(sandbox: SecureSandbox, reviewed: str) -> None:
    assert add_approval(sandbox, "bob", "tagger-to-4", reviewed).returncode == 0
    eventually(
        lambda: status_of(sandbox, "lvlreview", "tagger-to-4", reviewed).get("phase")
        == "Applied",
        what="the review to be applied",
    )
    for user in ("bob", "alice", "admin"):
        edited = sandbox.as_user(user, "patch", "lvlreview", "tagger-to-4", "-n", reviewed,
                                 "--type=merge", "-p", '{"spec": {"evidence": []}}')
        assert edited.returncode != 0
        assert "the review is Applied: it records a decision already taken and its spec " \
               "cannot change; open a new review" in edited.stderr
    # Labels are not the decision.
    assert sandbox.as_user("alice", "label", "lvlreview", "tagger-to-4", "-n", reviewed,
                           "archived=yes").returncode == 0


# --- technologies and policies -----------------------------------------------------------


def test_a_user_cannot_set_the_level_in_the_status(
    sandbox: SecureSandbox, namespace: str
) -> None:
    sandbox.as_user("alice", "apply", "-f", "-", check=True,
                    input=json.dumps(technology("tagger", namespace)))
    wait_for_level(sandbox, "tagger", namespace, 3)
    # RBAC refuses an editor first (kubectl reads the status before it patches it): the
    # chart gives no one but the operator the status
    refused = sandbox.as_user("alice", "patch", "mltech", "tagger", "-n", namespace,
                              "--subresource=status", "--type=merge",
                              "-p", '{"status": {"level": 9}}')
    assert refused.returncode != 0
    assert 'User "alice" cannot get resource "mltechnologies/status" in API group ' \
        f'"mltrl.dev" in the namespace "{namespace}"' in refused.stderr
    # and the webhook refuses even the cluster admin, whom RBAC lets through
    refused = sandbox.as_user("admin", "patch", "mltech", "tagger", "-n", namespace,
                              "--subresource=status", "--type=merge",
                              "-p", '{"status": {"level": 9}}')
    assert refused.returncode != 0
    assert DENIED.format("status.validate.mltrl.dev") + (
        "status: Forbidden: only the operator's service account may write "
        "mltechnologies/status (admin may not)"
    ) in refused.stderr
    assert status_of(sandbox, "mltech", "tagger", namespace)["level"] == 3


def test_technologies_and_policies_get_the_reconcilers_rules_at_admission(
    sandbox: SecureSandbox, namespace: str
) -> None:
    def refused(user: str, document: dict[str, Any]) -> str:
        result = sandbox.as_user(user, "apply", "-f", "-", input=json.dumps(document))
        assert result.returncode != 0, result.stdout
        return str(result.stderr)

    assert "spec.targetLevel: Invalid: must be at least spec.entryLevel (5)" in refused(
        "alice", technology("backwards", namespace, entry_level=5, target_level=4))
    assert "spec.components[0]: Invalid: mltech ghost does not exist" in refused(
        "alice", technology("composite", namespace, components=["ghost"]))
    sandbox.as_user("alice", "apply", "-f", "-", check=True,
                    input=json.dumps(technology("part", namespace)))
    sandbox.as_user("alice", "apply", "-f", "-", check=True,
                    input=json.dumps(technology("whole", namespace, components=["part"])))
    assert "spec.components[0]: Invalid: forms a cycle part -> whole -> part" in refused(
        "alice", technology("part", namespace, components=["whole"]))
    broken = policy(f"{namespace}-broken", namespace, requirements=[{"level": 0}])
    message = refused("admin", broken)
    assert DENIED.format("mltrlpolicies.validate.mltrl.dev") in message
    assert re.search(
        r"spec\.requirements\[0\]\.level: Invalid: no promotion leads to level 0", message
    )


# --- the endpoint itself -----------------------------------------------------------------


def test_the_live_endpoint_answers_raw_admission_reviews(
    gated: tuple[SecureSandbox, Any], namespace: str
) -> None:
    sandbox, operator = gated
    sandbox.apply(policy(f"{namespace}-prod", namespace, minimum_level=7, governed=True))
    context = ssl.create_default_context(cadata=operator.certificate.ca_pem.decode())

    def post(path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            operator.url + path, data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=5, context=context) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    review = {
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "b2c4e9a0-0000-4000-8000-000000000001",
            "kind": {"group": "serving.kserve.io", "version": "v1beta1",
                     "kind": "InferenceService"},
            "resource": {"group": "serving.kserve.io", "version": "v1beta1",
                         "resource": "inferenceservices"},
            "namespace": namespace, "name": "loose", "operation": "CREATE",
            "userInfo": {"username": "mallory", "groups": ["system:authenticated"]},
            "object": json.loads(inference_service("loose", namespace, None)),
            "oldObject": None,
        },
    }
    status, answer = post("/validate-inferenceservice", json.dumps(review).encode())
    assert status == 200 and answer["response"]["allowed"] is False
    assert answer["response"]["uid"] == review["request"]["uid"]
    assert f"namespace is governed (policy {namespace}-prod)" in \
        answer["response"]["status"]["message"]

    status, answer = post("/validate-inferenceservice", b'{"apiVersion": ')
    assert status == 400 and "the body is not JSON" in answer["error"]

    review["request"]["kind"] = {"group": "", "version": "v1", "kind": "Pod"}
    status, answer = post("/validate-inferenceservice", json.dumps(review).encode())
    assert status == 200 and answer["response"]["allowed"] is False
    assert answer["response"]["status"]["message"].startswith(
        "/validate-inferenceservice admits InferenceService (serving.kserve.io), not Pod (v1)"
    )
