"""The plain install (manifests/install/) and every other generated delivery file are
exactly what tools/render_manifests.py produces, and the plain install is valid."""

from __future__ import annotations

from typing import Any

import yaml

from mltrl_operator.api.resources import ALL_RESOURCES
from tests.delivery.support import REPO, require, tool

INSTALL = REPO / "manifests" / "install" / "mltrl-operator.yaml"


def _objects() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(INSTALL.read_text()) if doc]


def test_generated_files_are_fresh() -> None:
    require("helm_python")
    stale = tool("render_manifests").stale_files()
    assert stale == [], f"stale: {stale}; run .venv/bin/python tools/render_manifests.py"


def test_plain_install_holds_the_namespace_crds_and_the_operator() -> None:
    objects = _objects()
    assert objects[0] == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": "mltrl-system",
            "labels": {"app.kubernetes.io/part-of": "mltrl-operator"},
        },
    }
    crds = [o["metadata"]["name"] for o in objects if o["kind"] == "CustomResourceDefinition"]
    assert sorted(crds) == sorted(resource.crd_name for resource in ALL_RESOURCES)
    assert {"levelreviews.mltrl.dev", "mltechnologies.mltrl.dev", "mltrlpolicies.mltrl.dev",
            "mltrlauditrecords.mltrl.dev"} <= set(crds)
    # CRDs before anything else but the Namespace, webhooks last (Helm's install order).
    order = [o["kind"] for o in objects]
    assert order[1:1 + len(crds)] == ["CustomResourceDefinition"] * len(crds)
    assert order[-2:] == ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]
    assert {"Deployment", "ServiceAccount", "ClusterRole", "Service", "Certificate"} <= set(order)
    for obj in objects:
        labels = obj["metadata"].get("labels") or {}
        assert "helm.sh/chart" not in labels and "app.kubernetes.io/managed-by" not in labels
        if obj["kind"] not in ("Namespace", "CustomResourceDefinition", "ClusterRole",
                               "ClusterRoleBinding", "MutatingWebhookConfiguration",
                               "ValidatingWebhookConfiguration"):
            assert obj["metadata"]["namespace"] == "mltrl-system", obj["kind"]


def test_no_token_is_committed() -> None:
    objects = _objects()
    assert not [o for o in objects if o["kind"] == "Secret"]
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["alerts-token"]["secret"]["secretName"] == "mltrl-operator-alerts-token"
    assert "mltrl-operator-alerts-token" in INSTALL.read_text().split("---")[0]


def test_plain_install_is_valid_kubernetes() -> None:
    kubernetes_validate = require("kubernetes_validate")
    for obj in _objects():
        if obj["kind"] in ("Issuer", "Certificate"):  # cert-manager CRDs: no schema shipped
            continue
        kubernetes_validate.validate(obj, "1.37.0", strict=True)


def test_kustomization_lists_the_plain_install() -> None:
    kustomization = yaml.safe_load((REPO / "manifests" / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Kustomization"
    assert kustomization["resources"] == ["install/mltrl-operator.yaml"]
    for resource in kustomization["resources"]:
        assert (REPO / "manifests" / resource).is_file()
