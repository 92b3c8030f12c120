"""What the operator costs the API server: writes per promotion, and nothing when idle."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.integration.harness import Sandbox, eventually, running
from tests.integration.operator.scenarios import policy, review, technology
from tests.integration.operator.test_audit_record import exported, kinds, mltrl_audit
from tests.integration.operator.test_reviews import status_of, wait_for_level, wait_for_phase

pytestmark = pytest.mark.integration

# A promotion costs the technology's status (level, history and everything that follows
# from it, in one write), the review's status, one event (issue 17: one per transition,
# Promoted on the technology, naming the review), and its entry in the audit record (one
# patch of the record's last chunk).
WRITES_PER_PROMOTION = {
    "patch mltechnologies.mltrl.dev status": 1,
    "patch levelreviews.mltrl.dev status": 1,
    "create events main": 1,
    "patch mltrlauditrecords.mltrl.dev main": 1,
}
# One that starts serving adds the InferenceService, and no event: its Promoted tells it.
WRITES_PER_SERVING_PROMOTION = {
    **WRITES_PER_PROMOTION,
    "create inferenceservices.serving.kserve.io main": 1,
}
IDLE_TECHNOLOGIES = 100
IDLE_SECONDS = 30


def _approve(sandbox: Sandbox, namespace: str, name: str, tech: str, level: int,
             model_version: str | None = None) -> dict[str, int]:
    """Approve a Pending review as bob; the writes that follow, the approval's own aside."""
    sandbox.apply(review(name, namespace, tech, level - 1, level, approvers=(),
                         model_version=model_version))
    wait_for_phase(sandbox, name, namespace, "Pending")
    sandbox.settle()
    sandbox.reset_stats()

    # bob's approval, stamped as the admission webhook would stamp it (no webhooks here)
    approval = {"spec": {"approvals": review(name, namespace, tech, level - 1, level,
                                             model_version=model_version)
                         ["spec"]["approvals"]}}
    sandbox.kubectl("patch", "lvlreview", name, "-n", namespace, "--type=merge",
                    "-p", json.dumps(approval))
    wait_for_level(sandbox, tech, namespace, level)
    writes = dict(sandbox.settle()["writes"])
    assert writes.pop("patch levelreviews.mltrl.dev main") == 1  # the reviewer's own approval
    return writes


def test_a_promotion_costs_four_writes(sandbox: Sandbox, namespace: str) -> None:
    sandbox.apply(policy(f"{namespace}-policy", namespace))
    sandbox.apply(technology("ranker", namespace))
    assert _approve(sandbox, namespace, "ranker-to-4", "ranker", 4) == WRITES_PER_PROMOTION


def test_a_promotion_that_starts_serving_costs_five_writes(
    sandbox: Sandbox, namespace: str
) -> None:
    sandbox.apply(policy(f"{namespace}-policy", namespace, minimum_level=5))
    sandbox.apply(technology("scorer", namespace, entry_level=4, model_version="1.0.0"))
    writes = _approve(sandbox, namespace, "scorer-to-5", "scorer", 5, model_version="1.0.0")
    # KServe (the sandbox's stand-in) then marks the InferenceService Ready and the
    # technology's status follows (Serving=True): KServe's transition, not the promotion's
    # (the bench measures promotions with the stand-in stopped).
    assert writes.pop("patch inferenceservices.serving.kserve.io status") == 1
    writes["patch mltechnologies.mltrl.dev status"] -= 1
    assert writes == WRITES_PER_SERVING_PROMOTION
    listed = json.loads(sandbox.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)
    [event] = [e for e in listed["items"] if e["involvedObject"]["name"] == "scorer"]
    assert event["reason"] == "Promoted"
    assert " by review scorer-to-5, " in event["message"]
    assert "; created InferenceService scorer serving model 1.0.0" in event["message"]


def test_a_technology_found_at_start_up_with_its_review_approved_enters_and_moves_in_one_write(
    tmp_path: Path,
) -> None:
    """What a start-up costs per technology whose review was approved while the operator
    was away (issue 17: half of a start-up's technologies): its entry and its promotion are
    one status write and one audit record create, not two of each. A cluster of its own:
    a start-up also catches up the audit record of everything that moved recently."""
    with running(tmp_path) as (sandbox, operator):
        operator.stop()
        namespace = sandbox.namespace("startup", {"mltrl-test": "startup"})
        sandbox.apply(policy("startup-policy", namespace))
        sandbox.apply(technology("ranker", namespace))
        sandbox.apply(review("ranker-to-4", namespace, "ranker", 3, 4))
        sandbox.reset_stats()
        operator.start()
        wait_for_phase(sandbox, "ranker-to-4", namespace, "Applied")
        writes = dict(sandbox.settle()["writes"])
        assert writes.pop("patch mltrlpolicies.mltrl.dev status") == 1  # the policy's own
        assert writes == {
            "patch mltechnologies.mltrl.dev status": 1,
            "create mltrlauditrecords.mltrl.dev main": 1,
            "patch levelreviews.mltrl.dev status": 1,
            "create events main": 1,
        }
        status = status_of(sandbox, "mltech", "ranker", namespace)
        assert [(h["kind"], h.get("review"), h["to"]) for h in status["history"]] == [
            ("entry", None, 3), ("promotion", "ranker-to-4", 4),
        ]
        target = f"{namespace}/ranker"
        assert kinds(exported(sandbox, target)) == [("entry", None, 3), ("promotion", 3, 4)]
        verified = mltrl_audit(sandbox, "verify", target)
        assert verified.returncode == 0, verified.stdout + verified.stderr


def test_an_event_that_happens_again_is_a_series_not_a_new_object(
    sandbox: Sandbox, namespace: str
) -> None:
    """As the operator's service account, with the chart's RBAC: a repeat reads the stored
    event and patches its count."""
    sandbox.apply(policy(f"{namespace}-policy", namespace, minimum_level=5))
    sandbox.apply(technology("scorer", namespace, entry_level=5, model_version="1.0.0"))
    eventually(lambda: sandbox.get("isvc", "scorer", namespace), what="serving")
    for enabled in (False, True, False, True):
        sandbox.kubectl("patch", "mltech", "scorer", "-n", namespace, "--type=merge", "-p",
                        json.dumps({"spec": {"serving": {"enabled": enabled}}}))
        eventually(lambda e=enabled: bool(sandbox.get("isvc", "scorer", namespace)) == e,
                   what=f"serving {'on' if enabled else 'off'}")

    def counts() -> dict[str, int]:
        listed = json.loads(sandbox.kubectl("get", "events", "-n", namespace, "-o",
                                            "json").stdout)
        return {e["reason"]: e["count"] for e in listed["items"]
                if e["reason"] in ("ServingStarted", "ServingRemoved")}

    eventually(lambda: counts() == {"ServingStarted": 3, "ServingRemoved": 2},
               what=f"one event each, counted: {counts()}")
    shown = sandbox.kubectl("get", "events", "-n", namespace,
                            "--field-selector", "reason=ServingStarted").stdout
    assert "(x3 over " in shown


def test_an_idle_cluster_costs_no_writes(sandbox: Sandbox, namespace: str) -> None:
    sandbox.apply(policy(f"{namespace}-policy", namespace))
    sandbox.apply([
        technology(f"tech-{i:03d}", namespace, entry_level=i % 10, target_level=9)
        for i in range(IDLE_TECHNOLOGIES)
    ])
    eventually(
        lambda: all(
            status_of(sandbox, "mltech", f"tech-{i:03d}", namespace).get("level") == i % 10
            for i in (0, IDLE_TECHNOLOGIES // 2, IDLE_TECHNOLOGIES - 1)
        ),
        timeout=60, what="the technologies to be reconciled",
    )
    sandbox.settle()
    sandbox.reset_stats()
    time.sleep(IDLE_SECONDS)  # the point of the test: nothing may happen in this time
    stats = sandbox.stats()
    assert stats["total_writes"] == 0, stats["writes"]
    listed = sandbox.kubectl("get", "mltech", "-n", namespace, "-o", "json").stdout
    assert all(item["status"]["level"] == item["spec"]["entryLevel"]
               for item in json.loads(listed)["items"])
