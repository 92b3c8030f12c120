"""The project's own delivery against the sandbox: the real Helm engine (helm-python-sdk)
installs, upgrades, rolls back and uninstalls charts/mltrl-operator; `kubectl apply -k
manifests/` and the plain install go in as they would on a cluster with cert-manager."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, Kubectl, crd
from tests.delivery.support import require

from mltrl_sandbox.server import SandboxThread

pytestmark = pytest.mark.integration

helm = require("helm_python")  # in the dev extra: skips locally, fails in CI

CHART = REPO / "charts" / "mltrl-operator"
NAMESPACE = "mltrl-system"
RELEASE = "mltrl"
# Without cert-manager the chart takes a CA bundle and an existing TLS Secret.
PLAIN_VALUES: dict[str, Any] = {
    "certManager": {"enabled": False},
    "webhook": {
        "caBundle": base64.b64encode(b"-----BEGIN CERTIFICATE-----\n").decode(),
        "tlsSecretName": "mltrl-webhook-tls",
    },
}


def _stand_in_crd(group: str, kind: str, plural: str) -> dict[str, Any]:
    """A CRD accepting any spec, standing in for an add-on installed in the cluster."""
    return crd(
        f"""
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: {plural}.{group}}}
spec:
  group: {group}
  names: {{kind: {kind}, plural: {plural}, singular: {kind.lower()}}}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}
"""
    )


CERT_MANAGER = [
    _stand_in_crd("cert-manager.io", "Certificate", "certificates"),
    _stand_in_crd("cert-manager.io", "Issuer", "issuers"),
]


@pytest.fixture
def empty_cluster(tmp_path: Path) -> Iterator[tuple[SandboxThread, Kubectl]]:
    """A sandbox with none of the project's CRDs: the delivery brings them."""
    with SandboxThread(CERT_MANAGER) as running:
        config = running.kubeconfig(tmp_path / "config")
        yield running, Kubectl(config, tmp_path / "cache")


def _json(kubectl: Kubectl, *args: str) -> Any:
    return json.loads(kubectl(*args, "-o", "json"))


def _deployment(kubectl: Kubectl) -> dict[str, Any]:
    (found,) = _json(kubectl, "get", "deployments", "-n", NAMESPACE)["items"]
    return found  # type: ignore[no-any-return]


def test_helm_installs_upgrades_rolls_back_and_uninstalls_the_chart(
    empty_cluster: tuple[SandboxThread, Kubectl], tmp_path: Path
) -> None:
    sandbox, kubectl = empty_cluster
    config = helm.Config(
        kubeconfig_path=str(sandbox.kubeconfig(tmp_path / "helm-config")), namespace=NAMESPACE
    )
    config.install(CHART, RELEASE, PLAIN_VALUES, namespace=NAMESPACE, create_namespace=True)

    assert config.status(RELEASE)["status"] == "deployed"
    crds = kubectl("get", "crds", "-o", "name")
    assert "customresourcedefinition.apiextensions.k8s.io/mltechnologies.mltrl.dev" in crds
    deployment = _deployment(kubectl)
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    # Helm 4 installs with server-side apply: the fields are owned by an Apply manager.
    shown = _json(kubectl, "get", "deployments", "-n", NAMESPACE, "--show-managed-fields")
    (entry,) = shown["items"][0]["metadata"]["managedFields"]
    assert entry["operation"] == "Apply" and "f:spec" in entry["fieldsV1"]
    roles = kubectl("get", "clusterroles", "-o", "name")
    for role in ("mltrl-viewer", "mltrl-editor", "mltrl-reviewer", "mltrl-policy-admin"):
        assert f"clusterrole.rbac.authorization.k8s.io/{role}" in roles
    assert "No resources found" in kubectl.run("get", "pdb", "-n", NAMESPACE).stderr
    # No controller runs: the Deployment exists, its Pods never do.
    assert "No resources found" in kubectl.run("get", "pods", "-n", NAMESPACE).stderr

    config.upgrade(CHART, RELEASE, {**PLAIN_VALUES, "ha": {"enabled": True}}, namespace=NAMESPACE)
    assert _deployment(kubectl)["spec"]["replicas"] == 2
    assert _deployment(kubectl)["spec"]["strategy"]["type"] == "RollingUpdate"
    assert _json(kubectl, "get", "pdb", "-n", NAMESPACE)["items"]

    config.rollback(RELEASE, version=1)
    assert _deployment(kubectl)["spec"]["replicas"] == 1
    assert "No resources found" in kubectl.run("get", "pdb", "-n", NAMESPACE).stderr
    revisions = [(r["revision"], r["status"]) for r in config.history(RELEASE)]
    assert revisions == [(1, "superseded"), (2, "superseded"), (3, "deployed")]

    config.uninstall(RELEASE)
    assert "No resources found" in kubectl.run("get", "deployments", "-n", NAMESPACE).stderr
    assert "mltrl-viewer" not in kubectl("get", "clusterroles", "-o", "name")
    releases = kubectl("get", "secrets", "-n", NAMESPACE, "-l", "owner=helm", "-o", "name")
    assert releases == ""


def _apply_delivery(kubectl: Kubectl, *args: str) -> None:
    kubectl("apply", *args)
    deployment = _deployment(kubectl)
    assert deployment["metadata"]["namespace"] == NAMESPACE
    assert kubectl("get", "validatingwebhookconfigurations", "-o", "name")
    assert "certificate.cert-manager.io/" in kubectl(
        "get", "certificates", "-n", NAMESPACE, "-o", "name"
    )
    kinds = kubectl("api-resources", "--api-group=mltrl.dev", "-o", "name")
    assert "mltechnologies.mltrl.dev" in kinds


def test_kubectl_apply_k_installs_the_operator(
    empty_cluster: tuple[SandboxThread, Kubectl],
) -> None:
    _, kubectl = empty_cluster
    _apply_delivery(kubectl, "-k", str(REPO / "manifests"))


def test_the_plain_install_applies(empty_cluster: tuple[SandboxThread, Kubectl]) -> None:
    _, kubectl = empty_cluster
    plain = REPO / "manifests" / "install" / "mltrl-operator.yaml"
    kubectl("apply", "-f", str(plain))
    assert _deployment(kubectl)["spec"]["template"]["spec"]["serviceAccountName"]
    # Applying it again changes nothing.
    again = kubectl("apply", "-f", str(plain))
    assert "configured" not in again, again
