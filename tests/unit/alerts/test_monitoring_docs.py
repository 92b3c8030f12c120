"""docs/monitoring/: the PrometheusRule, Alertmanager config and Grafana dashboard parse,
mention only metrics the operator exports, and Prometheus' own tools accept them."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from mltrl_operator import metrics
from mltrl_operator.alerts.config import DEFAULT_NAMESPACE_LABEL, DEFAULT_TECHNOLOGY_LABEL
from tests.ci import unavailable

DOCS = Path(__file__).resolve().parents[3] / "docs" / "monitoring"
RULE = DOCS / "prometheusrule.yaml"
ALERTMANAGER = DOCS / "alertmanager.yaml"
DASHBOARD = DOCS / "grafana-dashboard.json"

# An identifier starting mltrl_ that is not compared like a label (label="...").
MENTIONED = re.compile(r"\b(mltrl_[a-z0-9_]+)\b(?!\s*(?:=~|!~|!=|=))")
LABEL_NAMES = {DEFAULT_TECHNOLOGY_LABEL}


def tool(name: str) -> str:
    debian = Path("/usr/bin") / name
    found = shutil.which(name) or (str(debian) if debian.exists() else None)
    if found:
        return found
    unavailable(f"{name} is missing (Debian: apt-get install prometheus "
                "prometheus-alertmanager)")


def mentioned_metrics(text: str) -> set[str]:
    return set(MENTIONED.findall(text)) - LABEL_NAMES


def dashboard() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return document


def dashboard_exprs() -> list[str]:
    exprs = [t["expr"] for p in dashboard()["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in dashboard()["templating"]["list"] if "definition" in v]
    return exprs


def rule_groups() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULE.read_text())
    assert document["apiVersion"] == "monitoring.coreos.com/v1"
    assert document["kind"] == "PrometheusRule"
    groups: list[dict[str, Any]] = document["spec"]["groups"]
    return groups


@pytest.mark.parametrize("path", [RULE, ALERTMANAGER, DASHBOARD], ids=lambda p: p.name)
def test_the_docs_mention_only_metrics_the_operator_exports(path: Path) -> None:
    unknown = mentioned_metrics(path.read_text()) - metrics.exported_names()
    assert not unknown, f"{path.name} mentions metrics the operator does not export: {unknown}"


def test_every_exported_family_has_help_and_the_mltrl_prefix() -> None:
    families = list(metrics.REGISTRY.collect())
    assert len(families) >= 12
    for family in families:
        assert family.name.startswith("mltrl_"), family.name
        assert family.documentation.strip(), family.name


def test_help_texts_list_the_label_values() -> None:
    helps = {f.name: f.documentation for f in metrics.REGISTRY.collect()}
    assert "acted|failed|duplicate|unknown-technology|resolved" in helps["mltrl_alert_actions"]
    assert "promotion|switchback" in helps["mltrl_level_transitions"]
    assert "reconciler|governance|admission" in helps["mltrl_gate_decisions"]


def test_the_dashboard_shows_every_metric_family() -> None:
    used = set()
    for expr in dashboard_exprs():
        used |= mentioned_metrics(expr)
    families = {f.name for f in metrics.REGISTRY.collect()}
    shown = {f for f in families if any(u == f or u.startswith(f + "_") for u in used)}
    assert shown == families, f"not on the dashboard: {families - shown}"


def test_the_dashboard_is_a_grafana_dashboard() -> None:
    board = dashboard()
    assert board["uid"] and board["title"] and isinstance(board["schemaVersion"], int)
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert {"h", "w", "x", "y"} <= grid.keys() and grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
    variables = {v["name"] for v in board["templating"]["list"]}
    assert {"datasource", "namespace", "technology"} <= variables


def test_dashboard_queries_are_promql_prometheus_accepts(tmp_path: Path) -> None:
    promtool = tool("promtool")
    grafana = {"$__rate_interval": "5m", "$__range": "1h", "$namespace": ".*",
               "$technology": ".*"}
    rules = []
    for n, expr in enumerate(dashboard_exprs()):
        for variable, value in grafana.items():
            expr = expr.replace(variable, value)
        if expr.startswith("label_values("):
            expr = expr.removeprefix("label_values(").rsplit(",", 1)[0]
        rules.append({"record": f"dashboard:query{n}", "expr": expr})
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_model_alert_names_a_technology_and_its_namespace() -> None:
    for group in rule_groups():
        for rule in group["rules"]:
            labels = rule.get("labels") or {}
            assert labels.get(DEFAULT_TECHNOLOGY_LABEL), rule["alert"]
            # The namespace comes from the series: the expression must keep it.
            assert (
                DEFAULT_NAMESPACE_LABEL in labels
                or f"by ({DEFAULT_NAMESPACE_LABEL})" in rule["expr"]
            ), rule["alert"]


def test_the_rules_pass_promtool_and_fire_with_the_receiver_labels(tmp_path: Path) -> None:
    promtool = tool("promtool")
    rules = tmp_path / "rules.yml"
    rules.write_text(yaml.safe_dump({"groups": rule_groups()}))
    checked = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True,
                             text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    series = 'namespace="payments"'
    errors = "fraud_model_prediction_errors_total"
    test = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [
                # 10% of predictions failing, all along.
                {"series": f"fraud_model_predictions_total{{{series}}}", "values": "0+600x120"},
                {"series": f"{errors}{{{series}}}", "values": "0+60x120"},
                {"series": f"fraud_model_feature_drift_score{{{series}}}", "values": "0.4x120"},
                # Trained 40 days before the test's clock starts (at 0).
                {"series": f"fraud_model_last_trained_timestamp_seconds{{{series}}}",
                 "values": "-3456000x120"},
            ],
            "alert_rule_test": [
                {"eval_time": "90m", "alertname": name, "exp_alerts": [{
                    "exp_labels": {"severity": severity, "namespace": "payments",
                                   DEFAULT_TECHNOLOGY_LABEL: "fraud-detection"},
                    "exp_annotations": _annotations(name),
                }]}
                for name, severity in [
                    ("FraudModelErrorRateHigh", "critical"),
                    ("FraudModelDataDrift", "warning"),
                    ("FraudModelStale", "info"),
                ]
            ],
        }],
    }
    path = tmp_path / "test.yml"
    path.write_text(yaml.safe_dump(test))
    result = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def _annotations(alert: str) -> dict[str, str]:
    """The annotations as Prometheus renders them for the test series above."""
    rule = next(r for g in rule_groups() for r in g["rules"] if r["alert"] == alert)
    rendered = dict(rule.get("annotations") or {})
    values = {
        "FraudModelErrorRateHigh": ("{{ $value | humanizePercentage }}", "10%"),
        "FraudModelDataDrift": ("{{ $value }}", "0.4"),
    }
    if alert in values:
        template, value = values[alert]
        rendered["description"] = rendered["description"].replace(template, value).replace(
            "{{ $labels.namespace }}", "payments"
        )
    return rendered


def test_the_alertmanager_config_routes_to_the_receiver_with_a_token_file() -> None:
    config = yaml.safe_load(ALERTMANAGER.read_text())
    receivers = {r["name"]: r for r in config["receivers"]}
    [webhook] = receivers["mltrl-operator"]["webhook_configs"]
    assert webhook["url"].endswith("/alerts") and webhook["send_resolved"] is True
    authorization = webhook["http_config"]["authorization"]
    assert authorization["type"] == "Bearer" and authorization["credentials_file"]
    route = next(r for r in config["route"]["routes"] if r["receiver"] == "mltrl-operator")
    assert DEFAULT_TECHNOLOGY_LABEL in route["group_by"] and route["continue"] is True


def test_amtool_accepts_the_alertmanager_config() -> None:
    amtool = tool("amtool")
    result = subprocess.run([amtool, "check-config", str(ALERTMANAGER)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
