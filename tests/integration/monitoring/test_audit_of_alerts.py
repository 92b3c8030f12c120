"""What alerts do is in the audit record too: a rollback (which model, from which) and a
demotion (an embedded switchback), each once, however often Alertmanager re-sends."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.harness import Sandbox, eventually
from tests.integration.monitoring.scenarios import monitored, serving_two_known_good_models
from tests.integration.monitoring.stack import MonitoredOperator
from tests.integration.operator.scenarios import ALLOW_NEW_MODELS, policy, review
from tests.integration.operator.test_audit_record import exported, mltrl_audit
from tests.integration.operator.test_reviews import wait_for_level

pytestmark = pytest.mark.integration

NAMESPACE = "audited"


def firing(alert: str, fingerprint: str) -> dict[str, Any]:
    return {
        "version": "4", "status": "firing", "receiver": "mltrl-operator",
        "alerts": [{
            "status": "firing", "fingerprint": fingerprint,
            "labels": {"alertname": alert, "mltrl_technology": "scorer",
                       "namespace": NAMESPACE},
            "annotations": {}, "startsAt": "2026-11-22T08:00:00Z",
        }],
    }


def test_a_rollback_and_a_demotion_are_recorded_once(
    operated: tuple[Sandbox, MonitoredOperator],
) -> None:
    sandbox, operator = operated
    sandbox.namespace(NAMESPACE, {"mltrl-test": NAMESPACE})
    sandbox.apply(policy(f"{NAMESPACE}-policy", NAMESPACE, minimum_level=5,
                         model_change=ALLOW_NEW_MODELS))
    sandbox.apply(monitored("scorer", NAMESPACE, entry_level=5, rules=[
        {"alertName": "ScorerErrors", "action": "rollback"},
        {"alertName": "ScorerDrift", "action": "demote", "toLevel": 5},
    ]))
    serving_two_known_good_models(sandbox, "scorer", NAMESPACE)
    sandbox.apply(review("scorer-to-6", NAMESPACE, "scorer", 5, 6, model_version="1.1.0"))
    wait_for_level(sandbox, "scorer", NAMESPACE, 6)
    target = f"{NAMESPACE}/scorer"

    for _ in range(2):  # Alertmanager re-sends a firing alert
        code, _ = operator.post(firing("ScorerErrors", "00000000000000a1"))
        assert code == 200
    rollback = eventually(
        lambda: [e for e in exported(sandbox, target) if e["kind"] == "rollback"],
        what="the rollback in the record",
    )
    assert len(rollback) == 1
    assert rollback[0]["alert"] == "ScorerErrors/00000000000000a1"
    assert rollback[0]["model"]["version"] == "1.0.0"
    assert rollback[0]["replacedModel"] == {"version": "1.1.0",
                                            "storageUri": "s3://models/scorer/1.1.0"}

    code, _ = operator.post(firing("ScorerDrift", "00000000000000d1"))
    assert code == 200
    wait_for_level(sandbox, "scorer", NAMESPACE, 5)
    entries = eventually(
        lambda: (e := exported(sandbox, target)) and len(e) == 4 and e, what="four entries"
    )
    assert [(e["kind"], e.get("fromLevel"), e.get("toLevel")) for e in entries] == [
        ("entry", None, 5), ("promotion", 5, 6), ("rollback", 6, 6), ("switchback", 6, 5)]
    assert entries[3]["switchbackType"] == "embedded"
    assert entries[3]["alert"] == "ScorerDrift/00000000000000d1"
    assert entries[3]["by"] == ["mltrl-operator"]
    assert mltrl_audit(sandbox, "verify", target).returncode == 0
