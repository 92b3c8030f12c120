"""A rollback lasts until spec.model moves on; with no earlier model it stops serving."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.harness import Sandbox, eventually
from tests.integration.monitoring.scenarios import (
    events_of,
    incidents,
    known_good,
    monitored,
    roll_out,
    serving,
    storage_uri,
)
from tests.integration.monitoring.stack import MonitoredOperator
from tests.integration.operator.scenarios import ALLOW_NEW_MODELS, policy
from tests.integration.operator.test_reviews import status_of

pytestmark = pytest.mark.integration

NAMESPACE = "rollbacks"


def firing(fingerprint: str, starts_at: str = "2026-11-22T08:00:00Z") -> dict[str, Any]:
    return {
        "version": "4", "status": "firing", "receiver": "mltrl-operator",
        "alerts": [{
            "status": "firing", "fingerprint": fingerprint,
            "labels": {"alertname": "ScorerErrors", "mltrl_technology": "scorer",
                       "namespace": NAMESPACE},
            "annotations": {}, "startsAt": starts_at,
        }],
    }


def stopped(sandbox: Sandbox) -> bool:
    isvc = sandbox.get("isvc", "scorer", NAMESPACE) or {}
    return (isvc.get("metadata", {}).get("annotations") or {}).get(
        "serving.kserve.io/stop") == "true"


def test_no_earlier_model_stops_serving_and_a_new_model_ends_the_rollback(
    operated: tuple[Sandbox, MonitoredOperator],
) -> None:
    sandbox, operator = operated
    sandbox.namespace(NAMESPACE, {"mltrl-test": NAMESPACE})
    sandbox.apply(policy(f"{NAMESPACE}-policy", NAMESPACE, minimum_level=5,
                         model_change=ALLOW_NEW_MODELS))
    sandbox.apply(monitored("scorer", NAMESPACE,
                            rules=[{"alertName": "ScorerErrors", "action": "rollback"}]))
    serving(sandbox, "scorer", NAMESPACE, "1.0.0")
    known_good(sandbox, "scorer", NAMESPACE, "1.0.0")

    code, _ = operator.post(firing("00000000000000f1"))
    assert code == 200
    eventually(lambda: stopped(sandbox), what="the InferenceService to be stopped")
    [incident] = eventually(lambda: [i for i in incidents(sandbox, "scorer", NAMESPACE)
                                     if i["state"] == "Acted"], what="the incident Acted")
    assert "no known-good model was served before 1.0.0" in incident["message"]
    state = eventually(
        lambda: (s := status_of(sandbox, "mltech", "scorer", NAMESPACE)["serving"])
        .get("state") == "Stopped" and s, what="serving Stopped",
    )
    assert "model" not in state["rollback"] and state["rollback"]["replacedVersion"] == "1.0.0"

    # A fixed model ends the rollback: it is served, and the stop is lifted.
    roll_out(sandbox, "scorer", NAMESPACE, "1.0.1")
    assert not stopped(sandbox)
    assert storage_uri(sandbox, "scorer", NAMESPACE) == "s3://models/scorer/1.0.1"
    assert "rollback" not in status_of(sandbox, "mltech", "scorer", NAMESPACE)["serving"]
    # One event per transition: the rollback tells the stop, the new model that ends it
    # tells the resume; no serving event beside either.
    events = {e["reason"]: e for e in events_of(sandbox, "scorer", NAMESPACE)}
    assert {"RolledBack", "RollbackEnded"} <= set(events)
    assert not {"AlertReceived", "ServingStopped", "ServingResumed"} & set(events)
    assert "; stopped InferenceService scorer: " in events["RolledBack"]["message"]
    assert "; resumed InferenceService scorer" in events["RollbackEnded"]["message"]
    # 1.0.0 was rolled back from: it is not known-good again until it is shipped anew.
    known_good(sandbox, "scorer", NAMESPACE, "1.0.1")
    roll_out(sandbox, "scorer", NAMESPACE, "1.0.2")
    known_good(sandbox, "scorer", NAMESPACE, "1.0.1", "1.0.2")

    # The next rollback goes to 1.0.1 and is kept across unrelated spec edits. (It starts an
    # hour later: within 10 minutes of the first, it would be part of the same incident.)
    code, _ = operator.post(firing("00000000000000f2", "2026-11-22T09:00:00Z"))
    eventually(lambda: storage_uri(sandbox, "scorer", NAMESPACE) == "s3://models/scorer/1.0.1",
               what="the rollback to 1.0.1")
    sandbox.kubectl("patch", "mltech", "scorer", "-n", NAMESPACE, "--type=merge", "-p",
                    json.dumps({"spec": {"description": "scores things"}}))
    sandbox.settle(quiet_for=1.0)
    assert storage_uri(sandbox, "scorer", NAMESPACE) == "s3://models/scorer/1.0.1"
    assert status_of(sandbox, "mltech", "scorer", NAMESPACE)["serving"]["rollback"][
        "model"]["version"] == "1.0.1"
