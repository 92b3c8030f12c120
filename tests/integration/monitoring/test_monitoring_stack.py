"""The real chain: a model's metric crosses a threshold, Prometheus fires a rule carrying the
mltrl_technology and namespace labels, Alertmanager posts to the operator's receiver, and
kubectl shows the rollback, the demotion and the retraining Job."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import Sandbox, eventually
from tests.integration.monitoring.scenarios import (
    events_of,
    incidents,
    jobs_of,
    monitored,
    serving,
    serving_two_known_good_models,
    storage_uri,
)
from tests.integration.monitoring.stack import (
    ALERTMANAGER,
    PROMETHEUS,
    TOKEN,
    Alertmanager,
    Exporter,
    MonitoredOperator,
    Prometheus,
    require_binaries,
)
from tests.integration.operator.scenarios import ALLOW_NEW_MODELS, policy, review
from tests.integration.operator.test_reviews import status_of, wait_for_level, wait_for_phase

pytestmark = [pytest.mark.integration, pytest.mark.monitoring]

NAMESPACE = "fraud-team"

# The model's own alerting rules, as a team would write them (with `for: 0s` to be quick).
RULES = [
    {"alert": "FraudModelErrorRateHigh", "expr": "fraud_model_error_rate > 0.1", "for": "0s",
     "labels": {"severity": "critical"},
     "annotations": {"summary": "{{ $labels.mltrl_technology }} errs on {{ $value }} of requests"}},
    {"alert": "FraudModelDataDrift", "expr": "fraud_model_drift_score > 0.3", "for": "0s",
     "labels": {"severity": "warning"}},
    {"alert": "FraudModelStale", "expr": "fraud_model_age_days > 30", "for": "0s",
     "labels": {"severity": "info"}},
]
ROLLBACK = [{"alertName": "FraudModelErrorRateHigh", "action": "rollback"}]
DEMOTE = [{"alertName": "FraudModelDataDrift", "action": "demote", "toLevel": 4}]
RETRAIN = [{"alertName": "FraudModelStale", "action": "retrain"}]


@dataclass
class Stack:
    sandbox: Sandbox
    operator: MonitoredOperator
    exporter: Exporter
    prometheus: Prometheus
    alertmanager: Alertmanager

    def model_metric(self, name: str, technology: str, value: float) -> float:
        return self.exporter.set(name, value, mltrl_technology=technology, namespace=NAMESPACE)

    def alert_starts_at(self, alertname: str, technology: str) -> float | None:
        for alert in self.alertmanager.alerts():
            labels = alert["labels"]
            if (labels.get("alertname"), labels.get("mltrl_technology")) == (
                alertname, technology
            ):
                return datetime.fromisoformat(alert["startsAt"]).timestamp()
        return None


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_binaries(PROMETHEUS, ALERTMANAGER)
    workdir: Path = tmp_path_factory.mktemp("monitoring")
    token_file = workdir / "alerts-token"
    token_file.write_text(TOKEN + "\n")
    started: list[Any] = []
    try:
        sandbox = Sandbox(workdir, rbac=True).start()  # the operator with the chart's RBAC
        started.append(sandbox)
        operator = MonitoredOperator(sandbox, workdir / "operator.log", token_file).start()
        started.append(operator)
        exporter = Exporter().start()
        started.append(exporter)
        alertmanager = Alertmanager(workdir, operator.alerts_url, token_file).start()
        started.append(alertmanager)
        prometheus = Prometheus(
            workdir, alertmanager=alertmanager, rules=RULES,
            targets={"fraud-model": f"127.0.0.1:{exporter.port}",
                     "mltrl-operator": f"127.0.0.1:{operator.metrics_port}"},
        ).start()
        started.append(prometheus)
        sandbox.namespace(NAMESPACE, {"mltrl-test": NAMESPACE})
        sandbox.apply(policy(f"{NAMESPACE}-policy", NAMESPACE, minimum_level=5,
                             on_demotion="stop", model_change=ALLOW_NEW_MODELS))
        yield Stack(sandbox, operator, exporter, prometheus, alertmanager)
    finally:
        for component in reversed(started):
            component.stop()


def _report(what: str, flipped: float, starts_at: float | None, done: float) -> None:
    since_fire = f"{done - starts_at:.2f}s after Alertmanager's startsAt, " if starts_at else ""
    print(f"\n{what}: {since_fire}{done - flipped:.2f}s after the metric flipped")


def test_an_error_rate_alert_rolls_back_to_the_previous_known_good_model(stack: Stack) -> None:
    sandbox, name = stack.sandbox, "fraud-rollback"
    stack.model_metric("fraud_model_error_rate", name, 0.01)
    sandbox.apply(monitored(name, NAMESPACE, rules=ROLLBACK))
    serving_two_known_good_models(sandbox, name, NAMESPACE)
    assert storage_uri(sandbox, name, NAMESPACE) == f"s3://models/{name}/1.1.0"

    flipped = stack.model_metric("fraud_model_error_rate", name, 0.4)
    eventually(
        lambda: storage_uri(sandbox, name, NAMESPACE) == f"s3://models/{name}/1.0.0",
        timeout=30, interval=0.05, what="the InferenceService to roll back to 1.0.0",
    )
    done = time.time()
    _report("rollback", flipped, stack.alert_starts_at("FraudModelErrorRateHigh", name), done)

    status = serving(sandbox, name, NAMESPACE, "1.0.0")
    assert status["rollback"]["model"]["version"] == "1.0.0"
    assert status["rollback"]["replacedVersion"] == "1.1.0"
    assert status["rollback"]["alert"].startswith("FraudModelErrorRateHigh/")
    [incident] = incidents(sandbox, name, NAMESPACE)
    assert incident["state"] == "Acted" and incident["labels"]["severity"] == "critical"
    rolled = [e for e in events_of(sandbox, name, NAMESPACE) if e["reason"] == "RolledBack"]
    assert len(rolled) == 1 and "known-good model 1.0.0" in rolled[0]["message"]
    # What kubectl describe shows the on-call engineer.
    described = sandbox.kubectl("describe", "mltech", name, "-n", NAMESPACE).stdout
    assert "RolledBack" in described and "AlertReceived" not in described
    # One event for the alert's action, telling the patch it made.
    assert f"; InferenceService {name} now serves model 1.0.0" in rolled[0]["message"]
    assert not [e for e in events_of(sandbox, name, NAMESPACE)
                if e["reason"] == "ModelRolledOut" and e["message"].endswith(" 1.0.0")]


def test_a_drift_alert_switches_the_technology_back_and_stops_serving(stack: Stack) -> None:
    sandbox, name = stack.sandbox, "fraud-demote"
    stack.model_metric("fraud_model_drift_score", name, 0.05)
    sandbox.apply(monitored(name, NAMESPACE, rules=DEMOTE, entry_level=4))
    wait_for_level(sandbox, name, NAMESPACE, 4)
    sandbox.apply(review(f"{name}-to-5", NAMESPACE, name, 4, 5, model_version="1.0.0"))
    wait_for_phase(sandbox, f"{name}-to-5", NAMESPACE, "Applied")
    serving(sandbox, name, NAMESPACE, "1.0.0")

    flipped = stack.model_metric("fraud_model_drift_score", name, 0.9)
    stopped = eventually(
        lambda: (i := sandbox.get("isvc", name, NAMESPACE)) and
        (i["metadata"].get("annotations") or {}).get("serving.kserve.io/stop") == "true" and i,
        timeout=30, interval=0.05, what="the InferenceService to be stopped",
    )
    done = time.time()
    _report("demotion", flipped, stack.alert_starts_at("FraudModelDataDrift", name), done)
    assert stopped

    status = wait_for_level(sandbox, name, NAMESPACE, 4)
    switchback = status["history"][-1]
    assert (switchback["from"], switchback["to"], switchback["kind"],
            switchback["switchbackType"]) == (5, 4, "switchback", "embedded")
    assert switchback["alert"].startswith("FraudModelDataDrift/")
    assert switchback["by"] == ["mltrl-operator"]
    eventually(lambda: status_of(sandbox, "mltech", name, NAMESPACE)["serving"]["state"]
               == "Stopped", what="serving Stopped")
    [incident] = incidents(sandbox, name, NAMESPACE)
    assert incident["state"] == "Acted"
    assert incident["message"].startswith("embedded switchback from level 5 to 4")
    events = {e["reason"]: e for e in events_of(sandbox, name, NAMESPACE)}
    # One event for the alert's action: the demotion, telling the stop it made.
    assert "Demoted" in events and not {"AlertReceived", "ServingStopped"} & set(events)
    assert f"; stopped InferenceService {name}: " in events["Demoted"]["message"]


def test_a_stale_model_alert_starts_one_retraining_job_despite_resends(stack: Stack) -> None:
    sandbox, operator, name = stack.sandbox, stack.operator, "fraud-retrain"
    stack.model_metric("fraud_model_age_days", name, 3)
    sandbox.apply(monitored(name, NAMESPACE, rules=RETRAIN))
    serving(sandbox, name, NAMESPACE, "1.0.0")

    resent_before = operator.metric("mltrl_alert_actions_total", action="retrain",
                                    result="duplicate")
    flipped = stack.model_metric("fraud_model_age_days", name, 45)
    jobs = eventually(lambda: jobs_of(sandbox, name, NAMESPACE), timeout=30, interval=0.05,
                      what="the retraining Job")
    _report("retraining Job", flipped, stack.alert_starts_at("FraudModelStale", name),
            time.time())

    # Alertmanager repeats the notification every 2s while the alert fires.
    eventually(
        lambda: operator.metric("mltrl_alert_actions_total", action="retrain",
                                result="duplicate") >= resent_before + 3,
        timeout=30, interval=0.5, what="three re-sends of the alert",
    )
    again = jobs_of(sandbox, name, NAMESPACE)
    assert [j["metadata"]["name"] for j in again] == [j["metadata"]["name"] for j in jobs]
    [job] = again
    [incident] = incidents(sandbox, name, NAMESPACE)
    assert (incident["state"], incident["job"]) == ("Acted", job["metadata"]["name"])
    assert job["spec"]["template"]["spec"]["containers"][0]["image"].endswith("train:2026.11")
    assert job["metadata"]["annotations"]["mltrl.dev/alert"] == "FraudModelStale"

    # Prometheus scrapes the operator too: the action is on its metrics.
    acted = eventually(
        lambda: stack.prometheus.query(
            'sum(mltrl_alert_actions_total{action="retrain",result="acted"})'
        ),
        timeout=15, what="Prometheus to have scraped the operator",
    )
    assert float(acted[0]["value"][1]) == 1.0
    levels = stack.prometheus.query(
        f'mltrl_technology_level{{namespace="{NAMESPACE}",technology="{name}"}}'
    )
    assert levels and float(levels[0]["value"][1]) == 5.0
    print(json.dumps({"alertmanager_alerts": len(stack.alertmanager.alerts())}))
