"""An alert answered 2xx is stored: an operator killed right after acts on it exactly once
when it is back, and Alertmanager re-sending the alert afterwards changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.harness import Sandbox, eventually
from tests.integration.monitoring.scenarios import (
    events_of,
    incidents,
    jobs_of,
    monitored,
    serving_two_known_good_models,
    storage_uri,
)
from tests.integration.monitoring.stack import MonitoredOperator
from tests.integration.operator.scenarios import ALLOW_NEW_MODELS, policy
from tests.integration.operator.test_reviews import status_of

pytestmark = pytest.mark.integration

NAMESPACE = "alerts-restart"
RULES = [
    {"alertName": "RankerErrorRateHigh", "action": "rollback"},
    {"alertName": "RankerStale", "action": "retrain"},
]


def notification(status: str = "firing") -> dict[str, Any]:
    def alert(name: str, fingerprint: str) -> dict[str, Any]:
        return {
            "status": status,
            "labels": {"alertname": name, "mltrl_technology": "ranker", "namespace": NAMESPACE,
                       "severity": "critical"},
            "annotations": {"summary": f"{name} on ranker"},
            "startsAt": "2026-11-22T09:30:00.5Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example.com/graph",
            "fingerprint": fingerprint,
        }

    return {
        "version": "4", "status": status, "receiver": "mltrl-operator",
        "groupKey": "{}:{namespace=\"alerts-restart\"}", "truncatedAlerts": 0,
        "groupLabels": {"namespace": NAMESPACE}, "commonLabels": {"namespace": NAMESPACE},
        "commonAnnotations": {}, "externalURL": "http://alertmanager.example.com",
        "alerts": [alert("RankerErrorRateHigh", "1a2b3c4d5e6f7a8b"),
                   alert("RankerStale", "9f8e7d6c5b4a3f2e")],
    }


def acted(sandbox: Sandbox) -> list[dict[str, Any]] | None:
    found = incidents(sandbox, "ranker", NAMESPACE)
    return found if len(found) == 2 and all(i["state"] == "Acted" for i in found) else None


def test_a_crash_after_the_2xx_loses_nothing_and_repeats_nothing(
    operated: tuple[Sandbox, MonitoredOperator],
) -> None:
    sandbox, operator = operated
    sandbox.namespace(NAMESPACE, {"mltrl-test": NAMESPACE})
    sandbox.apply(policy(f"{NAMESPACE}-policy", NAMESPACE, minimum_level=5,
                         model_change=ALLOW_NEW_MODELS))
    sandbox.apply(monitored("ranker", NAMESPACE, rules=RULES))
    serving_two_known_good_models(sandbox, "ranker", NAMESPACE)

    code, answer = operator.post(notification())
    operator.process.kill()  # SIGKILL right after the answer: no chance to act or tidy up
    assert code == 200
    assert [r["outcome"] for r in answer["results"]] == ["recorded", "recorded"]
    stored = incidents(sandbox, "ranker", NAMESPACE)
    assert [(i["alertName"], i["action"]) for i in stored] == [
        ("RankerErrorRateHigh", "rollback"), ("RankerStale", "retrain")
    ]
    print(f"\nafter the kill: incidents {[i['state'] for i in stored]}, "
          f"jobs {len(jobs_of(sandbox, 'ranker', NAMESPACE))}")

    operator.start()
    settled = eventually(lambda: acted(sandbox), what="both incidents Acted after the restart")
    rollback, retrain = settled
    assert "serving known-good model 1.0.0" in rollback["message"]
    eventually(
        lambda: storage_uri(sandbox, "ranker", NAMESPACE) == "s3://models/ranker/1.0.0",
        what="the InferenceService rolled back to 1.0.0",
    )
    [job] = jobs_of(sandbox, "ranker", NAMESPACE)
    assert retrain["job"] == job["metadata"]["name"]
    assert job["metadata"]["labels"]["mltrl.dev/incident"]
    status = status_of(sandbox, "mltech", "ranker", NAMESPACE)
    assert status["serving"]["rollback"]["model"]["version"] == "1.0.0"
    assert status["serving"]["modelVersion"] == "1.0.0"

    # Alertmanager re-sends while the alert fires; nothing moves any more.
    before = sandbox.settle()
    version = sandbox.get("mltech", "ranker", NAMESPACE)["metadata"]["resourceVersion"]
    code, answer = operator.post(notification())
    assert code == 200
    assert [r["outcome"] for r in answer["results"]] == ["duplicate", "duplicate"]
    after = sandbox.settle(quiet_for=1.5)
    assert after["total_writes"] == before["total_writes"]
    assert sandbox.get("mltech", "ranker", NAMESPACE)["metadata"]["resourceVersion"] == version
    assert len(jobs_of(sandbox, "ranker", NAMESPACE)) == 1
    assert storage_uri(sandbox, "ranker", NAMESPACE) == "s3://models/ranker/1.0.0"
    assert operator.metric("mltrl_alert_actions_total", action="retrain", result="duplicate") == 1

    # Resolving closes the incidents and undoes nothing.
    code, answer = operator.post(notification("resolved"))
    assert [r["outcome"] for r in answer["results"]] == ["resolved", "resolved"]
    closed = incidents(sandbox, "ranker", NAMESPACE)
    assert [i["state"] for i in closed] == ["Resolved", "Resolved"]
    assert closed[0]["message"] == rollback["message"]
    sandbox.settle(quiet_for=1.0)
    assert storage_uri(sandbox, "ranker", NAMESPACE) == "s3://models/ranker/1.0.0"
    assert len(jobs_of(sandbox, "ranker", NAMESPACE)) == 1

    # The per-technology series follow the technology: gone once it is deleted.
    level = ("mltrl_technology_level", (("namespace", NAMESPACE), ("technology", "ranker")))
    assert operator.metrics()[level] == 5.0
    sandbox.kubectl("delete", "mltech", "ranker", "-n", NAMESPACE)
    eventually(lambda: level not in operator.metrics(), what="ranker's series to go away")
    assert not [key for key in operator.metrics() if ("technology", "ranker") in key[1]]


def burst(count: int) -> dict[str, Any]:
    """One notification of `count` different alerts on one technology (a bad deploy firing
    every rule at once)."""
    return {
        "version": "4", "status": "firing", "receiver": "mltrl-operator",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": f"RankerCheck{n}", "mltrl_technology": "ranker",
                       "namespace": NAMESPACE},
            "annotations": {}, "startsAt": "2026-11-22T09:30:00Z",
            "fingerprint": f"{n:016x}",
        } for n in range(1, count + 1)],
    }


def test_a_burst_beyond_the_kept_incidents_loses_no_alert(
    operated: tuple[Sandbox, MonitoredOperator],
) -> None:
    """25 alerts at once on one technology, which keeps 20 incidents: the receiver stores
    20, all Pending, and answers 503 for the other 5 rather than dropping a Pending one to
    make room (found by `make chaos`: alerts answered 200 were never acted on). Sent again
    once the operator has settled the first 20, the 5 are stored and settled too: 25
    settlement events, one per alert."""
    sandbox, operator = operated
    sandbox.namespace(NAMESPACE, {"mltrl-test": NAMESPACE})
    sandbox.apply(policy(f"{NAMESPACE}-policy", NAMESPACE, minimum_level=5,
                         model_change=ALLOW_NEW_MODELS))
    sandbox.apply(monitored("ranker", NAMESPACE, rules=[]))  # the policy's default: notify
    eventually(lambda: status_of(sandbox, "mltech", "ranker", NAMESPACE).get("level") == 5,
               what="ranker entered at level 5")

    code, answer = operator.post(burst(25))
    assert code == 503
    assert "alerts-restart/ranker: 5 alert(s) deferred, status.incidents holds 20 " \
           "incidents, all Pending" in answer["error"]

    def taken() -> list[str] | None:  # Alertmanager sending the notification again
        code, answer = operator.post(burst(25))
        return [r["outcome"] for r in answer["results"]] if code == 200 else None

    outcomes = eventually(taken, what="the receiver to take the whole notification")
    assert outcomes.count("recorded") >= 5  # the deferred ones, now stored

    def notified() -> set[str] | None:
        messages = [e["message"] for e in events_of(sandbox, "ranker", NAMESPACE)
                    if e["reason"] == "AlertNotified"]
        fingerprints = {m.split("(")[1].split(")")[0] for m in messages}
        return fingerprints if len(fingerprints) == 25 else None

    assert eventually(notified, what="25 AlertNotified events") == {
        f"{n:016x}" for n in range(1, 26)}
    assert not [i for i in incidents(sandbox, "ranker", NAMESPACE) if i["state"] == "Pending"]
