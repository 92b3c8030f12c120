"""Waivers at admission, with real kubectl as different users: too long, never expiring,
for a technology that does not exist, or approved by someone the policy does not name,
a waiver is refused naming the field and the rule; a named approver's approval is stamped."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.integration.admission.conftest import SecureSandbox, granted, rbac_refused
from tests.integration.harness import eventually
from tests.integration.operator.scenarios import policy, technology

pytestmark = pytest.mark.integration

DENIED = 'admission webhook "mltrlwaivers.validate.mltrl.dev" denied the request: '


def waiver(name: str, namespace: str, *, days: float | None = 7, technology_name: str = "scorer",
           approvals: list[dict[str, Any]] | None = None) -> str:
    spec: dict[str, Any] = {
        "technology": technology_name, "reason": "the bias audit is booked for next week",
        "ticket": "https://tickets.example.com/RISK-12",
        "waives": {"level": 6, "evidence": ["bias-audit"]},
    }
    if days is not None:
        expires = datetime.now(UTC) + timedelta(days=days)
        spec["expiresAt"] = expires.strftime("%Y-%m-%dT%H:%M:%SZ")
    if approvals is not None:
        spec["approvals"] = approvals
    return json.dumps({"apiVersion": "mltrl.dev/v1alpha1", "kind": "MLTRLWaiver",
                       "metadata": {"name": name, "namespace": namespace}, "spec": spec})


@pytest.fixture
def governed(sandbox: SecureSandbox, namespace: str) -> str:
    body = policy(f"{namespace}-prod", namespace)
    body["spec"]["waivers"] = {"maxDuration": "336h", "approvers": [{"users": ["bob"]}]}
    sandbox.apply(body)
    sandbox.as_user("alice", "apply", "-f", "-", check=True,
                    input=json.dumps(technology("scorer", namespace, entry_level=3)))
    return namespace


def refused(result: Any, message: str) -> None:
    assert result.returncode != 0, result.stdout
    assert DENIED in result.stderr and message in result.stderr, result.stderr


def test_bad_waivers_are_refused_naming_the_field_and_the_rule(
    sandbox: SecureSandbox, governed: str
) -> None:
    namespace = governed
    refused(sandbox.as_user("alice", "apply", "-f", "-", input=waiver("long", namespace, days=20)),
            "more than waivers.maxDuration 336h (policy " + f"{namespace}-prod)")
    # The schema itself requires an expiry, before any webhook is asked.
    forever = sandbox.as_user("alice", "apply", "-f", "-",
                              input=waiver("forever", namespace, days=None))
    assert forever.returncode != 0
    assert 'The MLTRLWaiver "forever" is invalid: spec.expiresAt: Required value' in (
        forever.stderr)
    refused(sandbox.as_user("alice", "apply", "-f", "-",
                            input=waiver("ghost", namespace, technology_name="ghost")),
            "spec.technology: Not found: no MLTechnology ghost in this namespace")
    refused(sandbox.as_user("mallory", "apply", "-f", "-",
                            input=waiver("self", namespace, approvals=[{"comment": "fine"}])),
            "spec.approvals[0].approver: Forbidden: mallory is not named in waivers.approvers "
            f"(policy {namespace}-prod)")
    refused(sandbox.as_user("mallory", "apply", "-f", "-", input=waiver(
        "forged", namespace, approvals=[{"approver": "bob", "comment": "fine"}])),
        "spec.approvals[0].approver: Forbidden: mallory may not approve in bob's name")
    for name in ("long", "forever", "ghost", "self", "forged"):
        assert sandbox.get("mltrlwaiver", name, namespace) is None


def test_a_named_approver_is_stamped_and_the_waiver_is_then_fixed(
    sandbox: SecureSandbox, governed: str
) -> None:
    namespace = governed
    sandbox.as_user("alice", "apply", "-f", "-", check=True,
                    input=waiver("bias-audit", namespace))
    approve = [{"op": "add", "path": "/spec/approvals", "value": [{"comment": "audit booked"}]}]
    sandbox.as_user("bob", "patch", "mltrlwaiver", "bias-audit", "-n", namespace, "--type=json",
                    "-p", json.dumps(approve), check=True)
    stored = eventually(lambda: sandbox.get("mltrlwaiver", "bias-audit", namespace),
                        what="the waiver")
    (approval,) = stored["spec"]["approvals"]
    assert approval["approver"] == "bob" and approval["time"].endswith("Z")
    assert approval["comment"] == "audit booked"

    longer = [{"op": "replace", "path": "/spec/waives/evidence", "value": ["bias-audit", "x"]}]
    refused(sandbox.as_user("alice", "patch", "mltrlwaiver", "bias-audit", "-n", namespace,
                            "--type=json", "-p", json.dumps(longer)),
            "spec.waives: Forbidden: fixed once the waiver is approved")
    status = {"status": {"active": True}}
    status_patch = ("patch", "mltrlwaiver", "bias-audit", "-n", namespace,
                    "--subresource=status", "--type=merge", "-p", json.dumps(status))
    rbac_refused(sandbox.as_user("mallory", *status_patch), "mallory", "mltrlwaivers/status")
    with granted(sandbox, f"{namespace}-status-writer", ["mallory"], ["mltrlwaivers/status"]):
        refused(sandbox.as_user("mallory", *status_patch), "status: Forbidden: only the operator")
