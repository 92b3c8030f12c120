"""A team's technology from prototype to serving and back, as on a real cluster.

Runs against the sandbox in `make test`, and against a throwaway kind/k3d cluster with
KServe and the chart installed when MLTRL_E2E=cluster (see .github/workflows/e2e.yaml).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from e2e.cluster import KubectlCluster
from mltrl_operator.api.review import LevelReviewSpec
from mltrl_operator.api.technology import ModelSpec
from mltrl_operator.domain.approvals import make_stamp, review_content

# KServe's own public sklearn example model, so a real predictor can become Ready.
MODEL_URI = os.environ.get(
    "MLTRL_E2E_MODEL_URI", "gs://kfserving-examples/models/sklearn/1.0/model"
)


@pytest.fixture
def policy(cluster: KubectlCluster, namespace: str) -> Iterator[str]:
    name = f"{namespace}-policy"
    cluster.apply({
        "apiVersion": "mltrl.dev/v1alpha1", "kind": "MLTRLPolicy", "metadata": {"name": name},
        "spec": {
            "namespaceSelector": {"matchLabels": {"mltrl-e2e": namespace}},
            "serving": {"minimumLevel": 5, "enforcement": "enforce", "onDemotion": "stop",
                        "governed": True},
            "requirements": [
                {"level": level, "minApprovals": 1, "requiredRoles": ["qa"],
                 "evidence": [{"name": "unit-tests", "kind": "check"}]}
                for level in range(1, 10)
            ],
            "entry": {"maxLevel": 9},
            "reviewers": [{"role": "qa", "users": ["bob"]}],
        },
    })
    yield name
    cluster.kubectl("delete", "mltrlpolicy", name, "--wait=false", check=False)


def technology(name: str, namespace: str, entry_level: int, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "mltrl.dev/v1alpha1", "kind": "MLTechnology",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"owner": "alice", "entryLevel": entry_level, **spec}}


def review(name: str, namespace: str, technology_name: str, from_level: int, to_level: int,
           reason: str | None = None, model: dict[str, Any] | None = None) -> dict[str, Any]:
    """bob's approval carries the stamp the admission webhook writes: on a cluster the
    webhook writes it again from the authenticated user; on the sandbox, which runs here
    without webhooks, it stands in for it (on `model`, the technology's spec.model)."""
    spec: dict[str, Any] = {
        "technology": technology_name, "fromLevel": from_level, "toLevel": to_level,
        "evidence": [{"name": "unit-tests", "kind": "check", "passed": True,
                      "uri": "https://ci.example.com/1"}],
    }
    if reason:
        spec["reason"] = reason
    content = review_content(LevelReviewSpec.model_validate(spec),
                             ModelSpec.model_validate(model) if model else None)
    spec["approvals"] = [{"reviewer": "bob", "role": "qa", "decision": "approve",
                          "approvedBy": make_stamp("bob", [], "2026-11-30T12:00:00Z", content)}]
    return {"apiVersion": "mltrl.dev/v1alpha1", "kind": "LevelReview",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def status(cluster: KubectlCluster, kind: str, name: str, namespace: str) -> dict[str, Any]:
    return dict(((cluster.get(kind, name, namespace) or {}).get("status")) or {})


def test_a_technology_serves_once_promoted_and_stops_when_switched_back(
    cluster: KubectlCluster, namespace: str, policy: str
) -> None:
    model = {"version": "1.0.0", "storageUri": MODEL_URI, "format": "sklearn"}
    cluster.apply(technology("iris", namespace, 4, model=model, serving={"predictor": {}}))
    cluster.eventually(
        lambda: status(cluster, "mltech", "iris", namespace).get("serving", {}).get("state")
        == "Blocked", "serving to be blocked below level 5",
    )
    assert cluster.get("isvc", "iris", namespace) is None

    cluster.apply(review("iris-to-5", namespace, "iris", 4, 5, model=model), as_user="bob")
    isvc = cluster.eventually(lambda: cluster.get("isvc", "iris", namespace),
                              "the InferenceService to be created")
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == MODEL_URI
    assert isvc["metadata"]["labels"]["mltrl.dev/technology"] == "iris"
    cluster.eventually(
        lambda: status(cluster, "mltech", "iris", namespace).get("serving", {}).get("state")
        == "Serving", "the technology to report Serving",
    )
    assert "iris" in cluster.kubectl("get", "mltech", "-n", namespace).stdout

    cluster.apply(review("iris-back-to-4", namespace, "iris", 5, 4, reason="drift found",
                         model=model), as_user="bob")
    cluster.eventually(
        lambda: (cluster.get("isvc", "iris", namespace) or {}).get("metadata", {})
        .get("annotations", {}).get("serving.kserve.io/stop") == "true",
        "the InferenceService to be stopped",
    )
    history = status(cluster, "mltech", "iris", namespace)["history"]
    assert history[-1]["kind"] == "switchback" and history[-1]["to"] == 4


def test_an_inference_service_nobody_governs_does_not_serve(
    cluster: KubectlCluster, namespace: str, policy: str
) -> None:
    rogue = {
        "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
        "metadata": {"name": "rogue", "namespace": namespace},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"},
                                         "storageUri": MODEL_URI}}},
    }
    created = cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(rogue), check=False)
    if created.returncode != 0:  # refused at admission where the webhook is installed
        assert "technology" in created.stderr
        return
    cluster.eventually(
        lambda: (cluster.get("isvc", "rogue", namespace) or {}).get("metadata", {})
        .get("annotations", {}).get("serving.kserve.io/stop") == "true",
        "the ungoverned InferenceService to be stopped",
    )


def test_a_composite_follows_its_weakest_component(
    cluster: KubectlCluster, namespace: str, policy: str
) -> None:
    cluster.apply(
        technology("embedder", namespace, 5),
        technology("ranker", namespace, 3),
        technology("search", namespace, 6, components=[{"name": "embedder"}, {"name": "ranker"}]),
    )
    cluster.eventually(
        lambda: status(cluster, "mltech", "search", namespace).get("effectiveLevel") == 3,
        "the composite at its weakest component's level",
    )
    cluster.apply(review("ranker-to-4", namespace, "ranker", 3, 4), as_user="bob")
    cluster.eventually(
        lambda: status(cluster, "mltech", "search", namespace).get("effectiveLevel") == 4,
        "the composite to follow its component up",
    )
