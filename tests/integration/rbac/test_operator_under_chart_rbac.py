"""The operator runs as its service account with exactly the chart's RBAC (the operator,
admission and monitoring suites all do, through harness.running); here, what happens when
the chart forgets a permission: the operator fails as it would in a cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.harness import Operator, Sandbox, eventually
from tests.integration.operator.scenarios import technology

pytestmark = pytest.mark.integration


def test_a_permission_the_chart_forgot_fails_as_in_a_cluster(tmp_path: Path) -> None:
    sandbox = Sandbox(tmp_path, kserve=False, rbac=True).start()
    operator = Operator(sandbox, tmp_path / "operator.log")
    try:
        chart_role = sandbox.get("clusterrole", "mltrl-operator")
        assert chart_role is not None
        forgetful = json.loads(json.dumps(chart_role))
        for rule in forgetful["rules"]:
            rule["resources"] = [r for r in rule["resources"] if r != "mltechnologies/status"]
        sandbox.kubectl("replace", "-f", "-", input=json.dumps(forgetful))
        operator.start()
        sandbox.namespace("forgot")
        sandbox.as_user("alice", "apply", "-f", "-", check=True,
                        input=json.dumps(technology("scorer", "forgot")))
        eventually(
            lambda: 'User "system:serviceaccount:mltrl-system:mltrl-operator" cannot patch '
            'resource "mltechnologies/status" in API group "mltrl.dev" in the namespace '
            '"forgot"' in operator.process.output(),
            timeout=30, what="the operator's status write to be refused",
        )
        assert "status" not in (sandbox.get("mltech", "scorer", "forgot") or {})
        # The chart's own rule back: the same operator gets through.
        del chart_role["metadata"]["resourceVersion"]
        sandbox.kubectl("replace", "-f", "-", input=json.dumps(chart_role))
        eventually(lambda: ((sandbox.get("mltech", "scorer", "forgot") or {}).get("status")
                            or {}).get("level") == 3,
                   timeout=90, what="the operator to write the status once allowed")
    finally:
        operator.stop()
        sandbox.stop()
