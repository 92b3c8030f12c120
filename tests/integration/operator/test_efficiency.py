"""What the operator costs the API server: writes per promotion, and nothing when idle."""

from __future__ import annotations

import json
import time

import pytest

from tests.integration.harness import Sandbox, eventually
from tests.integration.operator.scenarios import policy, review, technology
from tests.integration.operator.test_reviews import status_of, wait_for_level, wait_for_phase

pytestmark = pytest.mark.integration

# A promotion costs the technology's status (level, history and everything that follows
# from it, in one write), the review's status, one event on each, and its entry in the
# audit record (one patch of the record's last chunk).
WRITES_PER_PROMOTION = {
    "patch mltechnologies.mltrl.dev status": 1,
    "patch levelreviews.mltrl.dev status": 1,
    "create events main": 2,
    "patch mltrlauditrecords.mltrl.dev main": 1,
}
IDLE_TECHNOLOGIES = 100
IDLE_SECONDS = 30


def test_a_promotion_costs_five_writes(sandbox: Sandbox, namespace: str) -> None:
    sandbox.apply(policy(f"{namespace}-policy", namespace))
    sandbox.apply(technology("ranker", namespace))
    sandbox.apply(review("ranker-to-4", namespace, "ranker", 3, 4, approvers=()))
    wait_for_phase(sandbox, "ranker-to-4", namespace, "Pending")
    sandbox.settle()
    sandbox.reset_stats()

    # bob's approval, stamped as the admission webhook would stamp it (no webhooks here)
    approval = {"spec": {"approvals": review("ranker-to-4", namespace, "ranker", 3, 4)
                         ["spec"]["approvals"]}}
    sandbox.kubectl("patch", "lvlreview", "ranker-to-4", "-n", namespace, "--type=merge",
                    "-p", json.dumps(approval))
    wait_for_level(sandbox, "ranker", namespace, 4)
    writes = dict(sandbox.settle()["writes"])
    assert writes.pop("patch levelreviews.mltrl.dev main") == 1  # the reviewer's own approval
    assert writes == WRITES_PER_PROMOTION


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
