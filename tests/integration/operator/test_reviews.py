"""Reviews move levels: evidence, approvals, separation of duties, stale and racing reviews."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.harness import Operator, Sandbox, eventually
from tests.integration.operator.scenarios import policy, review, technology

pytestmark = pytest.mark.integration


def status_of(sandbox: Sandbox, kind: str, name: str, namespace: str) -> dict[str, Any]:
    body = sandbox.get(kind, name, namespace) or {}
    return dict(body.get("status") or {})


def wait_for_phase(sandbox: Sandbox, name: str, namespace: str, phase: str) -> dict[str, Any]:
    return eventually(
        lambda: (s := status_of(sandbox, "lvlreview", name, namespace)).get("phase") == phase
        and s,
        what=f"review {name} to be {phase}",
    )


def wait_for_level(sandbox: Sandbox, name: str, namespace: str, level: int) -> dict[str, Any]:
    return eventually(
        lambda: (s := status_of(sandbox, "mltech", name, namespace)).get("level") == level and s,
        what=f"technology {name} at level {level}",
    )


def test_a_review_without_evidence_waits_then_promotes_once_complete(
    sandbox: Sandbox, namespace: str
) -> None:
    sandbox.apply(policy(f"{namespace}-policy", namespace))
    sandbox.apply(technology("ranker", namespace, entry_level=3))
    wait_for_level(sandbox, "ranker", namespace, 3)

    sandbox.apply(review("ranker-to-4", namespace, "ranker", 3, 4, evidence=False, approvers=()))
    pending = wait_for_phase(sandbox, "ranker-to-4", namespace, "Pending")
    unmet = " | ".join(pending["unmet"])
    assert "unit-tests" in unmet and "qa" in unmet, unmet

    patch = {"spec": review("x", namespace, "ranker", 3, 4)["spec"]}
    sandbox.kubectl("patch", "lvlreview", "ranker-to-4", "-n", namespace, "--type=merge",
                    "-p", json.dumps(patch))
    applied = wait_for_phase(sandbox, "ranker-to-4", namespace, "Applied")
    assert applied["unmet"] == [] and applied["approvedBy"] == ["bob"]

    status = wait_for_level(sandbox, "ranker", namespace, 4)
    assert status["phase"] == "Prototyping"
    promotion = status["history"][-1]
    assert (promotion["from"], promotion["to"], promotion["kind"]) == (3, 4, "promotion")
    assert promotion["review"] == "ranker-to-4" and promotion["by"] == ["bob"]
    assert promotion["debrief"]["learned"] == "a lesson"

    table = sandbox.kubectl("get", "mltech", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "LEVEL", "PHASE", "TARGET", "SERVING", "READY", "AGE"]
    assert table[1].split()[:4] == ["ranker", "4", "Prototyping", "9"]
    events = sandbox.kubectl("get", "events", "-n", namespace).stdout
    assert "Promoted" in events


def test_the_owner_cannot_approve_their_own_review(sandbox: Sandbox, namespace: str) -> None:
    sandbox.apply(policy(f"{namespace}-policy", namespace))
    sandbox.apply(technology("scorer", namespace, owner="alice"))
    sandbox.apply(review("scorer-to-4", namespace, "scorer", 3, 4, approvers=(("alice", "qa"),)))
    pending = wait_for_phase(sandbox, "scorer-to-4", namespace, "Pending")
    assert any("alice" in item and "separation of duties" in item for item in pending["unmet"])
    assert status_of(sandbox, "mltech", "scorer", namespace)["level"] == 3


def test_an_owners_own_approval_found_at_start_up_does_not_promote(
    sandbox: Sandbox, operator: Operator, namespace: str
) -> None:
    """The start-up path (a technology found with its review, judged against its entry
    before that is stored: issue 17) applies the same rules: alice's own approval,
    written while the operator was away, enters the technology and promotes nothing."""
    operator.stop()
    try:
        sandbox.apply(policy(f"{namespace}-policy", namespace))
        sandbox.apply(technology("scorer", namespace, owner="alice"))
        sandbox.apply(review("scorer-to-4", namespace, "scorer", 3, 4,
                             approvers=(("alice", "qa"),)))
    finally:
        operator.start()
    pending = wait_for_phase(sandbox, "scorer-to-4", namespace, "Pending")
    assert any("alice" in item and "separation of duties" in item for item in pending["unmet"])
    status = status_of(sandbox, "mltech", "scorer", namespace)
    assert status["level"] == 3
    assert [h["kind"] for h in status["history"]] == ["entry"]


def test_a_review_opened_at_an_old_level_is_superseded(sandbox: Sandbox, namespace: str) -> None:
    sandbox.apply(policy(f"{namespace}-policy", namespace))
    sandbox.apply(technology("tagger", namespace))
    sandbox.apply(review("tagger-slow", namespace, "tagger", 3, 4, approvers=()))
    wait_for_phase(sandbox, "tagger-slow", namespace, "Pending")
    sandbox.apply(review("tagger-fast", namespace, "tagger", 3, 4))
    wait_for_phase(sandbox, "tagger-fast", namespace, "Applied")
    superseded = wait_for_phase(sandbox, "tagger-slow", namespace, "Superseded")
    assert "3" in superseded["message"] and "4" in superseded["message"]


def test_two_racing_reviews_apply_once(sandbox: Sandbox, namespace: str) -> None:
    sandbox.apply(policy(f"{namespace}-policy", namespace))
    sandbox.apply(technology("router", namespace))
    wait_for_level(sandbox, "router", namespace, 3)
    sandbox.apply([
        review("router-a", namespace, "router", 3, 4, approvers=(("bob", "qa"),)),
        review("router-b", namespace, "router", 3, 4, approvers=(("carol", "qa"),)),
    ])
    phases = eventually(
        lambda: (ps := sorted(
            status_of(sandbox, "lvlreview", name, namespace).get("phase", "")
            for name in ("router-a", "router-b")
        )) == ["Applied", "Superseded"] and ps,
        what="one Applied and one Superseded",
    )
    assert phases == ["Applied", "Superseded"]
    status = status_of(sandbox, "mltech", "router", namespace)
    assert status["level"] == 4
    assert [h["kind"] for h in status["history"]] == ["entry", "promotion"]


def test_a_rejection_ends_the_review(sandbox: Sandbox, namespace: str) -> None:
    sandbox.apply(policy(f"{namespace}-policy", namespace))
    sandbox.apply(technology("parser", namespace))
    rejected = review("parser-to-4", namespace, "parser", 3, 4)
    stamp = rejected["spec"]["approvals"][0]["approvedBy"]  # as the webhook would stamp it
    rejected["spec"]["approvals"].append(
        {"reviewer": "erin", "role": "ethics", "decision": "reject",
         "comment": "bias audit missing", "approvedBy": {**stamp, "username": "erin"}}
    )
    sandbox.apply(rejected)
    status = wait_for_phase(sandbox, "parser-to-4", namespace, "Rejected")
    assert "erin" in status["message"]
    assert status_of(sandbox, "mltech", "parser", namespace)["level"] == 3
