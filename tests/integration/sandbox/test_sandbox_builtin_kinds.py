"""Built-in kinds served from Kubernetes' published schemas, tried with the real kubectl."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import Kubectl

pytestmark = pytest.mark.integration

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "nginx:1.27", ports: [{containerPort: 80}]}]
"""


def test_discovery_lists_the_groups_a_chart_uses(kubectl: Kubectl) -> None:
    resources = kubectl("api-resources", "-o", "name").split()
    for wanted in (
        "pods",
        "services",
        "configmaps",
        "secrets",
        "serviceaccounts",
        "namespaces",
        "events",
        "deployments.apps",
        "statefulsets.apps",
        "jobs.batch",
        "cronjobs.batch",
        "poddisruptionbudgets.policy",
        "roles.rbac.authorization.k8s.io",
        "clusterrolebindings.rbac.authorization.k8s.io",
        "leases.coordination.k8s.io",
        "validatingwebhookconfigurations.admissionregistration.k8s.io",
        "customresourcedefinitions.apiextensions.k8s.io",
        "events.events.k8s.io",
        "selfsubjectrulesreviews.authorization.k8s.io",
        "subjectaccessreviews.authorization.k8s.io",
        "localsubjectaccessreviews.authorization.k8s.io",
    ):
        assert wanted in resources


def test_explain_reads_the_published_schema(kubectl: Kubectl) -> None:
    data = kubectl("explain", "configmap.data")
    assert "FIELD: data <map[string]string>" in data
    assert "Data contains the configuration data" in data
    ports = kubectl("explain", "deployment.spec.template.spec.containers.ports")
    assert "containerPort\t<integer> -required-" in ports
    assert "pdb" in kubectl("api-resources", "--api-group=policy")


def test_a_job_whose_pods_restart_always_is_refused(kubectl: Kubectl) -> None:
    job = """
apiVersion: batch/v1
kind: Job
metadata: {name: always}
spec:
  template:
    spec:
      containers: [{name: c, image: "busybox:1"}]
"""
    error = kubectl.fails("apply", "-f", "-", stdin=job)
    assert 'spec.template.spec.restartPolicy: Unsupported value: "Always"' in error
    kubectl(
        "apply",
        "-f",
        "-",
        stdin=job.replace(
            "spec:\n      containers", "spec:\n      restartPolicy: Never\n      containers"
        ),
    )
    shown = json.loads(kubectl("get", "job", "always", "-o", "json"))
    assert shown["spec"]["backoffLimit"] == 6
    assert shown["spec"]["template"]["spec"]["dnsPolicy"] == "ClusterFirst"


def test_invalid_built_in_objects_are_refused_like_kube_apiserver(kubectl: Kubectl) -> None:
    unknown = DEPLOYMENT.replace("ports:", "bogus: 1, ports:")
    error = kubectl.fails("apply", "-f", "-", stdin=unknown)
    assert 'unknown field "spec.template.spec.containers[0].bogus"' in error
    wrong_type = DEPLOYMENT.replace("containerPort: 80", "containerPort: eighty")
    error = kubectl.fails("apply", "-f", "-", stdin=wrong_type)
    assert "containerPort" in error and "integer" in error
    mismatch = DEPLOYMENT.replace("labels: {app: web}", "labels: {app: other}")
    error = kubectl.fails("apply", "-f", "-", stdin=mismatch)
    assert "`selector` does not match template `labels`" in error
    no_name = DEPLOYMENT.replace("name: web, image", "image")
    error = kubectl.fails("apply", "-f", "-", stdin=no_name)
    assert "spec.template.spec.containers[0].name: Required value" in error


def test_a_deployment_is_defaulted_and_creates_no_pods(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", stdin=DEPLOYMENT)
    shown = json.loads(kubectl("get", "deployment", "web", "-o", "json"))
    spec = shown["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"]["rollingUpdate"] == {"maxSurge": "25%", "maxUnavailable": "25%"}
    container = spec["template"]["spec"]["containers"][0]
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    # No controllers: nothing makes ReplicaSets or Pods.
    assert "No resources found" in kubectl.run("get", "pods,replicasets").stderr


def test_immutable_config_and_secret_type_cannot_change(kubectl: Kubectl) -> None:
    kubectl("create", "configmap", "frozen", "--from-literal=a=1")
    kubectl("patch", "configmap", "frozen", "-p", '{"immutable": true}')
    error = kubectl.fails("patch", "configmap", "frozen", "-p", '{"data": {"a": "2"}}')
    assert "data: Forbidden: field is immutable when `immutable` is set" in error
    error = kubectl.fails("patch", "configmap", "frozen", "-p", '{"immutable": false}')
    assert "immutable: Forbidden" in error
    kubectl("create", "secret", "generic", "typed", "--from-literal=a=1")
    error = kubectl.fails("patch", "secret", "typed", "-p", '{"type": "kubernetes.io/tls"}')
    assert 'type: Invalid value: "kubernetes.io/tls": field is immutable' in error


def test_an_event_about_another_namespace_is_refused(kubectl: Kubectl) -> None:
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "elsewhere", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "kube-system"},
        "reason": "Test",
        "message": "about a pod elsewhere",
    }
    error = kubectl.fails("create", "-f", "-", stdin=json.dumps(event))
    assert 'involvedObject.namespace: Invalid value: "kube-system": does not match' in error
    event["involvedObject"]["namespace"] = "default"  # type: ignore[index]
    kubectl("create", "-f", "-", stdin=json.dumps(event))


def test_immortal_namespaces_cannot_be_deleted(kubectl: Kubectl) -> None:
    for name in ("default", "kube-system", "kube-public"):
        error = kubectl.fails("delete", "namespace", name)
        assert f'namespaces "{name}" is forbidden: this namespace may not be deleted' in error
    assert "kube-public" in kubectl("get", "namespaces", "-o", "name")


def test_every_namespace_carries_its_name_as_a_label(kubectl: Kubectl) -> None:
    """kube-apiserver sets `kubernetes.io/metadata.name` on create and on every update, so
    a namespaceSelector (the chart's webhooks use one) can match namespaces by name."""
    label = "kubernetes.io/metadata.name"

    def labels(name: str) -> dict[str, str]:
        shown = json.loads(kubectl("get", "namespace", name, "-o", "json"))
        return shown["metadata"].get("labels") or {}  # type: ignore[no-any-return]

    assert labels("default")[label] == "default"
    assert labels("kube-system")[label] == "kube-system"
    kubectl("create", "namespace", "named-ns")  # protobuf
    assert labels("named-ns") == {label: "named-ns"}
    assert kubectl("get", "namespaces", "-l", f"{label}=named-ns", "-o", "name").split() == [
        "namespace/named-ns"
    ]
    # a client can neither change nor remove it
    kubectl("label", "namespace", "named-ns", f"{label}=other", "team=a", "--overwrite")
    assert labels("named-ns") == {label: "named-ns", "team": "a"}
    kubectl("label", "namespace", "named-ns", f"{label}-")
    assert labels("named-ns")[label] == "named-ns"
    # generateName: the label is the name the server made up
    made = json.loads(
        kubectl(
            "create", "-o", "json", "-f", "-",
            stdin=json.dumps({"apiVersion": "v1", "kind": "Namespace",
                              "metadata": {"generateName": "gen-"}}),
        )
    )
    generated = made["metadata"]["name"]
    assert generated.startswith("gen-") and made["metadata"]["labels"] == {label: generated}
    # server-side apply that never mentions it keeps it
    applied = {"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": "applied-ns", "labels": {"team": "b"}}}
    kubectl("apply", "--server-side", "--field-manager=ci", "-f", "-", stdin=json.dumps(applied))
    del applied["metadata"]["labels"]
    kubectl("apply", "--server-side", "--field-manager=ci", "-f", "-", stdin=json.dumps(applied))
    assert labels("applied-ns") == {label: "applied-ns"}


def test_server_dry_run_delete_keeps_the_object(kubectl: Kubectl) -> None:
    kubectl("create", "namespace", "dry-ns")
    kubectl("create", "configmap", "kept", "-n", "dry-ns")
    out = kubectl("delete", "configmap", "kept", "-n", "dry-ns", "--dry-run=server")
    assert "(server dry run)" in out
    out = kubectl("delete", "namespace", "dry-ns", "--dry-run=server")
    assert "(server dry run)" in out
    assert "kept" in kubectl("get", "configmap", "kept", "-n", "dry-ns", "-o", "name")
    assert "Active" in kubectl("get", "namespace", "dry-ns")


def test_kubectl_create_of_rbac_kinds_is_decoded(kubectl: Kubectl) -> None:
    """kubectl's typed commands send protobuf; the RBAC kinds' bodies are decoded."""
    kubectl("create", "clusterrole", "pod-reader", "--verb=get,list", "--resource=pods")
    kubectl("create", "clusterrole", "aggregated", "--aggregation-rule=team=a")
    kubectl("create", "rolebinding", "reads", "--clusterrole=pod-reader", "--user=bob",
            "--serviceaccount=default:robot")  # fmt: skip
    role = json.loads(kubectl("get", "clusterrole", "pod-reader", "-o", "json"))
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]
    aggregated = json.loads(kubectl("get", "clusterrole", "aggregated", "-o", "json"))
    assert aggregated["aggregationRule"] == {
        "clusterRoleSelectors": [{"matchLabels": {"team": "a"}}]
    }
    binding = json.loads(kubectl("get", "rolebinding", "reads", "-o", "json"))
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "pod-reader",
    }
    assert {(s["kind"], s["name"]) for s in binding["subjects"]} == {
        ("User", "bob"),
        ("ServiceAccount", "robot"),
    }
    error = kubectl.fails("patch", "rolebinding", "reads", "--type=merge",
                          "-p", '{"roleRef": {"name": "other"}}')  # fmt: skip
    assert "roleRef: Invalid value" in error and "cannot change roleRef" in error


def test_config_keys_and_secret_types_are_checked(kubectl: Kubectl) -> None:
    error = kubectl.fails("create", "configmap", "badkey", "--from-literal=bad key=1")
    assert "a valid config key must consist of alphanumeric characters" in error
    tls = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "half-tls"},
           "type": "kubernetes.io/tls", "data": {"tls.crt": "Y2VydA=="}}  # fmt: skip
    error = kubectl.fails("apply", "-f", "-", stdin=json.dumps(tls))
    assert "data[tls.key]: Required value" in error
    tls["data"]["tls.key"] = "a2V5"  # type: ignore[index]
    kubectl("apply", "-f", "-", stdin=json.dumps(tls))


def test_a_pod_takes_only_the_updates_kube_apiserver_allows(kubectl: Kubectl) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}  # fmt: skip
    kubectl("apply", "-f", "-", stdin=json.dumps(pod))
    kubectl("set", "image", "pod/p", "c=busybox:2")
    error = kubectl.fails("patch", "pod", "p", "-p", '{"spec": {"hostname": "elsewhere"}}')
    assert "spec: Forbidden: pod updates may not change fields other than" in error
    shown = json.loads(kubectl("get", "pod", "p", "-o", "json"))
    assert shown["spec"]["containers"][0]["image"] == "busybox:2"
    assert "status" not in shown or not shown["status"].get("phase")  # nothing runs it


def _contains(wanted: Any, got: Any, path: str = "") -> list[str]:
    """Where `got` lacks or differs from what `wanted` sets (empty values aside)."""
    if isinstance(wanted, dict):
        problems = []
        for key, value in wanted.items():
            if value in ({}, [], None):
                continue
            if not isinstance(got, dict) or key not in got:
                problems.append(f"{path}.{key} missing")
            else:
                problems += _contains(value, got[key], f"{path}.{key}")
        return problems
    if isinstance(wanted, list):
        if not isinstance(got, list) or len(wanted) != len(got):
            return [f"{path}: {wanted} != {got}"]
        return [
            p
            for i, (w, g) in enumerate(zip(wanted, got, strict=True))
            for p in _contains(w, g, f"{path}[{i}]")
        ]
    return [] if wanted == got else [f"{path}: {wanted!r} != {got!r}"]


@pytest.mark.parametrize(
    "command",
    [
        ["create", "deployment", "made", "--image=nginx:1.27", "--port=80", "--replicas=3"],
        ["create", "job", "made", "--image=busybox:1", "--", "echo", "hi"],
        ["create", "cronjob", "made", "--image=busybox:1", "--schedule=*/5 * * * *", "--", "date"],
        ["run", "made", "--image=busybox:1", "--env=A=1", "--port=8080", "--restart=Never",
         "--", "sleep", "10"],
    ],
    ids=["deployment", "job", "cronjob", "run"],
)  # fmt: skip
def test_kubectl_typed_commands_send_protobuf_the_sandbox_decodes(
    kubectl: Kubectl, command: list[str]
) -> None:
    """kubectl's own client-side rendering is the oracle for what its protobuf said."""
    split = command.index("--") if "--" in command else len(command)
    flags, rest = command[:split], command[split:]
    rendered = json.loads(kubectl(*flags, "--dry-run=client", "-o", "json", *rest))
    stored = json.loads(kubectl(*flags, "-o", "json", *rest))
    rendered["metadata"].pop("creationTimestamp", None)
    rendered.pop("status", None)
    assert _contains(rendered, stored) == []
    kind = stored["kind"].lower()
    kubectl("delete", kind, "made")
