"""The webhook configurations built in Python are the chart's, but for where they call."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

from mltrl_operator.webhooks.configuration import operator_username, webhook_configurations
from mltrl_operator.webhooks.records import RECORD_ENDPOINTS
from mltrl_operator.webhooks.rules import ENDPOINTS

INSTALL = Path(__file__).resolve().parents[3] / "manifests" / "install" / "mltrl-operator.yaml"
URL = "https://127.0.0.1:9443"
CA = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def _by_kind(documents: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in documents if d["kind"].endswith("WebhookConfiguration")}


def test_the_same_webhooks_as_the_chart_installs() -> None:
    chart = _by_kind([d for d in yaml.safe_load_all(INSTALL.read_text()) if d])
    ours = _by_kind(webhook_configurations(URL, CA))
    assert chart.keys() == ours.keys() == {
        "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"
    }
    for kind, configuration in ours.items():
        assert configuration["metadata"]["name"] == chart[kind]["metadata"]["name"]
        for mine, theirs in zip(configuration["webhooks"], chart[kind]["webhooks"], strict=True):
            path = theirs["clientConfig"]["service"]["path"]
            assert mine["clientConfig"] == {
                "url": URL + path, "caBundle": base64.b64encode(CA).decode(),
            }
            strip = {key: value for key, value in theirs.items() if key != "clientConfig"}
            assert {key: value for key, value in mine.items() if key != "clientConfig"} == strip


def test_every_endpoint_is_configured_and_the_operator_is_let_through() -> None:
    documents = webhook_configurations(URL, CA)
    paths = {
        hook["clientConfig"]["url"][len(URL):]
        for document in documents
        for hook in document["webhooks"]
    }
    assert paths == {endpoint.path for endpoint in (*ENDPOINTS, *RECORD_ENDPOINTS)}
    conditions = documents[0]["webhooks"][0]["matchConditions"]
    assert conditions[0]["expression"] == f'request.userInfo.username != "{operator_username()}"'
    assert operator_username() == "system:serviceaccount:mltrl-system:mltrl-operator"
