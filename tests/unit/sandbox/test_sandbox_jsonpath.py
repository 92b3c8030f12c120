from __future__ import annotations

import pytest

from mltrl_sandbox import jsonpath

STATUS = {
    "status": {
        "url": "http://x",
        "conditions": [
            {"type": "PredictorReady", "status": "False"},
            {"type": "Ready", "status": "True"},
        ],
        "traffic": [
            {"tag": "prev", "percent": 10, "latestRevision": False, "revisionName": "r1"},
            {"percent": 90, "latestRevision": True, "revisionName": "r2"},
        ],
    },
    "metadata": {"labels": {"app.kubernetes.io/name": "fraud"}},
}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (".status.url", ["http://x"]),
        ("{.status.url}", ["http://x"]),
        ("$.status.url", ["http://x"]),
        (".status.conditions[0].type", ["PredictorReady"]),
        (".status.conditions[-1].type", ["Ready"]),
        (".status.conditions[*].type", ["PredictorReady", "Ready"]),
        (".status.conditions[?(@.type=='Ready')].status", ["True"]),
        ('.status.conditions[?(@.type=="Ready")].status', ["True"]),
        (".status.conditions[?(@.type!='Ready')].type", ["PredictorReady"]),
        (".status.traffic[?(@.latestRevision==true)].percent", [90]),
        (".status.traffic[?(@.tag=='prev')].revisionName", ["r1"]),
        (".status.traffic[?(@.percent>50)].revisionName", ["r2"]),
        (".status.traffic[?(@.tag)].percent", [10]),
        (".status.traffic[0:1].percent", [10]),
        (".metadata.labels.app\\.kubernetes\\.io/name", ["fraud"]),
        (".metadata.labels['app.kubernetes.io/name']", ["fraud"]),
        ("..revisionName", ["r1", "r2"]),
        (".status.missing", []),
        (".status.conditions[5]", []),
        (".status.url.deeper", []),
    ],
)
def test_find(expr: str, expected: list[object]) -> None:
    assert jsonpath.find(STATUS, expr) == expected


def test_true_does_not_match_one() -> None:
    assert jsonpath.find({"a": [{"v": 1}]}, ".a[?(@.v==true)].v") == []


def test_first_and_errors() -> None:
    assert jsonpath.first(STATUS, ".status.conditions[*].status") == "False"
    assert jsonpath.first(STATUS, ".nope", "dflt") == "dflt"
    with pytest.raises(jsonpath.JSONPathError):
        jsonpath.find(STATUS, ".a[?(@.x ~ 1)]")
    with pytest.raises(jsonpath.JSONPathError):
        jsonpath.find(STATUS, ".a[0")
