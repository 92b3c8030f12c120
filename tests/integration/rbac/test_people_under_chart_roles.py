"""A promotion done by the people the chart's user roles are for, each with only their
role, and the operator with only the chart's: the policy admin writes the policy, the
technology's owner (edit, into which mltrl-editor is aggregated) the technology and the
review, a reviewer (mltrl-reviewer) the approval, and a viewer reads the outcome."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.harness import running
from tests.integration.operator.scenarios import policy, review, technology
from tests.integration.operator.test_reviews import wait_for_level, wait_for_phase

pytestmark = pytest.mark.integration


def test_each_person_does_their_part_and_nothing_more(tmp_path: Path) -> None:
    with running(tmp_path, kserve=False) as (sandbox, _operator):
        namespace = sandbox.namespace("people", {"mltrl-test": "people"})
        rules = json.dumps(policy("people-policy", namespace))
        refused = sandbox.as_user("alice", "apply", "-f", "-", input=rules)
        assert 'User "alice" cannot create resource "mltrlpolicies" in API group "mltrl.dev" ' \
            'at the cluster scope' in refused.stderr
        sandbox.as_user("paula", "apply", "-f", "-", input=rules, check=True)

        owned = json.dumps(technology("ranker", namespace))
        refused = sandbox.as_user("carol", "apply", "-f", "-", input=owned)
        assert 'User "carol" cannot create resource "mltechnologies"' in refused.stderr
        sandbox.as_user("alice", "apply", "-f", "-", input=owned, check=True)
        wait_for_level(sandbox, "ranker", namespace, 3)
        sandbox.as_user("alice", "apply", "-f", "-", check=True, input=json.dumps(
            review("ranker-to-4", namespace, "ranker", 3, 4, approvers=())))
        wait_for_phase(sandbox, "ranker-to-4", namespace, "Pending")

        # Stamped as the admission webhook would stamp it (this suite runs without webhooks):
        # an unstamped approval counts for nothing (issue 11).
        (stamped,) = review("ranker-to-4", namespace, "ranker", 3, 4,
                            approvers=(("carol", "qa"),))["spec"]["approvals"]
        approval = [{"op": "add", "path": "/spec/approvals/-", "value": stamped}]
        sandbox.as_user("carol", "patch", "lvlreview", "ranker-to-4", "-n", namespace,
                        "--type=json", "-p", json.dumps(approval), check=True)
        wait_for_phase(sandbox, "ranker-to-4", namespace, "Applied")
        wait_for_level(sandbox, "ranker", namespace, 4)

        seen = sandbox.as_user("vera", "get", "mltech", "ranker", "-n", namespace,
                               "-o", "jsonpath={.status.level}", check=True)
        assert seen.stdout == "4"
        refused = sandbox.as_user("vera", "delete", "mltech", "ranker", "-n", namespace)
        assert 'User "vera" cannot delete resource "mltechnologies"' in refused.stderr
