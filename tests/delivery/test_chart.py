"""The Helm chart, rendered by Helm's own engine (helm-python-sdk), for the default values
and the combinations that change what it renders; every object is validated against the
Kubernetes schemas (kubernetes-validate, strict)."""

from __future__ import annotations

import base64
from functools import cache
from typing import Any

import jsonschema
import pytest
import yaml

from mltrl_operator.cli.process import SHUTDOWN_SECONDS
from tests.delivery.support import CHART, REPO, require, tool

KUBERNETES_VERSION = "1.37.0"  # the newest schema set kubernetes-validate 1.37 ships
RELEASE, NAMESPACE = "mltrl-operator", "mltrl-system"

# Kinds that come from CRDs kubernetes-validate has no schema for. They are still parsed
# and checked by the tests below; MLTRLPolicy is checked against our own CRD.
CRD_KINDS = {
    "ServiceMonitor",  # monitoring.coreos.com/v1 (prometheus-operator)
    "PrometheusRule",  # monitoring.coreos.com/v1 (prometheus-operator)
    "Issuer",  # cert-manager.io/v1
    "Certificate",  # cert-manager.io/v1
    "MLTRLPolicy",  # mltrl.dev/v1alpha1 (ours)
    "ClusterKopfPeering",  # kopf.dev/v1 (kopf's peering CRD, HA only)
}

CA_BUNDLE = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")

SCENARIOS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "no-cert-manager": {
        "certManager": {"enabled": False},
        "webhook": {"caBundle": CA_BUNDLE.decode(), "tlsSecretName": "mltrl-webhook-tls"},
    },
    "cert-manager-cluster-issuer": {
        "certManager": {"issuerRef": {"name": "internal-ca", "kind": "ClusterIssuer"}}
    },
    "ha": {"ha": {"enabled": True}},
    "monitoring": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}},
    "default-policy": {"defaultPolicy": {"enabled": True}},
    "isvc-ignore": {"webhook": {"inferenceService": {"failurePolicy": "Ignore"}}},
    "existing-token": {
        "alerts": {"token": {"existingSecret": "am-token", "existingSecretKey": "t"}}
    },
    "everything": {
        "ha": {"enabled": True, "replicas": 3},
        "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
        "prometheusRule": {"enabled": True},
        "defaultPolicy": {"enabled": True},
        "webhook": {"excludeNamespaces": ["monitoring"]},
        "image": {"digest": "sha256:" + "a" * 64},
    },
}

Objects = list[dict[str, Any]]


@cache
def _render(scenario: str) -> tuple[str, ...]:
    rendered = tool("render_manifests").render_chart(SCENARIOS[scenario])
    return tuple(text for path, text in sorted(rendered.items()) if not path.endswith("NOTES.txt"))


def render(scenario: str) -> Objects:
    return [doc for text in _render(scenario) for doc in yaml.safe_load_all(text) if doc]


def one(objects: Objects, kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def kinds(objects: Objects) -> list[str]:
    return sorted(o["kind"] for o in objects)


@pytest.fixture(scope="module", autouse=True)
def _dependencies() -> None:
    require("helm_python")
    require("kubernetes_validate")


# --- every scenario ---------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_object_is_valid_kubernetes(scenario: str) -> None:
    kubernetes_validate = require("kubernetes_validate")
    objects = render(scenario)
    assert objects
    for obj in objects:
        assert obj.get("apiVersion") and obj.get("kind") and obj["metadata"].get("name"), obj
        if obj["kind"] in CRD_KINDS:
            continue
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_strict_validation_catches_an_unknown_field() -> None:
    """Guard for the test above: strict mode really refuses what the API server would."""
    kubernetes_validate = require("kubernetes_validate")
    deployment = one(render("defaults"), "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContex"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_labels_and_namespaces(scenario: str) -> None:
    for obj in render(scenario):
        labels = obj["metadata"].get("labels") or {}
        if obj["kind"] != "CustomResourceDefinition" or "kopf" in obj["metadata"]["name"]:
            assert labels.get("app.kubernetes.io/name") == "mltrl-operator", obj["kind"]
            assert labels.get("app.kubernetes.io/instance") == RELEASE
            assert labels.get("app.kubernetes.io/version") == "0.1.0"
            assert labels.get("app.kubernetes.io/managed-by") == "Helm"
            assert labels.get("app.kubernetes.io/part-of") == "mltrl-operator"
        cluster_scoped = obj["kind"] in {
            "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "MLTRLPolicy",
            "ClusterKopfPeering", "MutatingWebhookConfiguration",
            "ValidatingWebhookConfiguration",
        }
        assert ("namespace" in obj["metadata"]) is not cluster_scoped, obj["kind"]
        if not cluster_scoped:
            assert obj["metadata"]["namespace"] == NAMESPACE


# --- the Deployment ------------------------------------------------------------------------


def container(objects: Objects) -> dict[str, Any]:
    containers = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_pod_runs_locked_down(scenario: str) -> None:
    objects = render(scenario)
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container(objects)["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == 65532
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    resources = container(objects)["resources"]
    assert {"cpu", "memory"} <= resources["requests"].keys()
    assert {"cpu", "memory"} <= resources["limits"].keys()


def test_operator_arguments_follow_the_runtime_contract() -> None:
    operator = container(render("defaults"))
    assert operator["args"] == [
        "run",
        "--liveness=http://0.0.0.0:8080/healthz",
        "--metrics-port=9090",
        "--qps=0",
        "--burst=100",
        "--request-timeout=30",
        "--alerts-port=9091",
        "--alerts-token-file=/etc/mltrl/alerts/token",
        "--webhook-port=9443",
        "--webhook-cert=/etc/mltrl/webhook-tls/tls.crt",
        "--webhook-key=/etc/mltrl/webhook-tls/tls.key",
    ]
    assert operator["image"] == "mltrl-operator:0.1.0"
    for probe in ("livenessProbe", "readinessProbe"):
        assert operator[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    ports = {p["name"]: p["containerPort"] for p in operator["ports"]}
    assert ports == {"health": 8080, "metrics": 9090, "alerts": 9091, "webhook": 9443}
    mounts = {m["name"]: m["mountPath"] for m in operator["volumeMounts"]}
    assert mounts["webhook-tls"] == "/etc/mltrl/webhook-tls"
    assert mounts["alerts-token"] == "/etc/mltrl/alerts"
    # The operator exits within 5 s of SIGTERM (cli/process.SHUTDOWN_SECONDS): the kubelet
    # need not wait the default 30 s, and must not kill it before it signs out.
    pod = one(render("defaults"), "Deployment")["spec"]["template"]["spec"]
    assert SHUTDOWN_SECONDS < 5 < pod["terminationGracePeriodSeconds"] <= 15


def test_single_replica_is_recreated_and_ha_rolls_with_peering() -> None:
    single = one(render("defaults"), "Deployment")["spec"]
    assert single["replicas"] == 1
    assert single["strategy"] == {"type": "Recreate"}
    assert not [a for a in container(render("defaults"))["args"] if a.startswith("--peering")]
    assert not [o for o in render("defaults") if "kopf" in str(o.get("apiVersion"))]

    objects = render("ha")
    ha = one(objects, "Deployment")["spec"]
    assert ha["replicas"] == 2
    assert ha["strategy"]["type"] == "RollingUpdate"
    peering = [a for a in container(objects)["args"] if a.startswith("--peering")]
    assert peering == ["--peering=mltrl-operator"]  # the chart's peering object, not `default`
    env = {e["name"]: e for e in container(objects)["env"]}
    assert env["POD_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    crds = {o["metadata"]["name"]: o for o in objects if o["kind"] == "CustomResourceDefinition"}
    assert crds["clusterkopfpeerings.kopf.dev"]["spec"]["scope"] == "Cluster"
    assert crds["kopfpeerings.kopf.dev"]["spec"]["scope"] == "Namespaced"
    for crd in crds.values():
        status = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
        assert status["x-kubernetes-preserve-unknown-fields"] is True
    peering = one(objects, "ClusterKopfPeering")
    assert peering["metadata"]["name"] == "mltrl-operator"
    assert "post-install" in peering["metadata"]["annotations"]["helm.sh/hook"]
    assert one(objects, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    assert one(render("everything"), "Deployment")["spec"]["replicas"] == 3


# --- RBAC ----------------------------------------------------------------------------------

OPERATOR_RULES = {
    ("mltrl.dev", "mltechnologies"): {"get", "list", "watch"},
    ("mltrl.dev", "levelreviews"): {"get", "list", "watch"},
    ("mltrl.dev", "mltechnologies/status"): {"get", "patch", "update"},
    ("mltrl.dev", "levelreviews/status"): {"get", "patch", "update"},
    ("mltrl.dev", "mltrlpolicies"): {"get", "list", "watch"},
    ("mltrl.dev", "mltrlpolicies/status"): {"patch"},
    ("mltrl.dev", "mltrlauditrecords"): {"get", "list", "watch", "create", "patch"},
    ("mltrl.dev", "mltrlwaivers"): {"get", "list", "watch"},
    ("mltrl.dev", "mltrlwaivers/status"): {"patch"},
    ("serving.kserve.io", "inferenceservices"): {
        "get", "list", "watch", "create", "patch", "update", "delete",
    },
    ("batch", "jobs"): {"get", "list", "watch", "create"},
    ("", "events"): {"get", "create", "patch"},  # get: a repeat reads its series
    ("events.k8s.io", "events"): {"create", "patch"},
    ("", "namespaces"): {"get", "list", "watch"},
    ("apiextensions.k8s.io", "customresourcedefinitions"): {"get", "list", "watch"},
}
PEERING_RULES = {("kopf.dev", "clusterkopfpeerings"): {"get", "list", "watch", "patch"}}

READ = {"get", "list", "watch"}
USER_ROLES = {
    "mltrl-viewer": {
        ("mltrl.dev", "mltechnologies"): READ,
        ("mltrl.dev", "levelreviews"): READ,
        ("mltrl.dev", "mltrlpolicies"): READ,
        ("mltrl.dev", "mltrlwaivers"): READ,
    },
    "mltrl-editor": {
        ("mltrl.dev", "mltechnologies"): READ | {"create", "update", "patch", "delete"},
        ("mltrl.dev", "levelreviews"): READ | {"create", "update", "patch", "delete"},
        ("mltrl.dev", "mltrlwaivers"): READ | {"create", "update", "patch", "delete"},
    },
    "mltrl-reviewer": {
        ("mltrl.dev", "mltechnologies"): READ,
        ("mltrl.dev", "levelreviews"): READ | {"update", "patch"},
        ("mltrl.dev", "mltrlpolicies"): READ,
        ("mltrl.dev", "mltrlwaivers"): READ | {"update", "patch"},
    },
    "mltrl-policy-admin": {
        ("mltrl.dev", "mltrlpolicies"): READ
        | {"create", "update", "patch", "delete", "deletecollection"},
    },
    "mltrl-auditor": {
        ("mltrl.dev", "mltrlauditrecords"): READ,
        ("mltrl.dev", "mltechnologies"): READ,
        ("mltrl.dev", "levelreviews"): READ,
        ("mltrl.dev", "mltrlpolicies"): READ,
        ("mltrl.dev", "mltrlwaivers"): READ,
    },
}
AGGREGATION = {
    "mltrl-viewer": {"view", "edit", "admin"},
    "mltrl-editor": {"edit", "admin"},
    "mltrl-reviewer": set(),
    "mltrl-policy-admin": set(),
    "mltrl-auditor": set(),
}


def test_no_user_role_writes_the_audit_record() -> None:
    for name in USER_ROLES:
        granted = permissions(one(render("defaults"), "ClusterRole", name))
        assert granted.get(("mltrl.dev", "mltrlauditrecords"), set()) <= READ, name


def permissions(role: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        assert set(rule) <= {"apiGroups", "resources", "verbs"}, f"unexpected rule keys: {rule}"
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    return granted


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_no_wildcards_in_any_role(scenario: str) -> None:
    for obj in render(scenario):
        if obj["kind"] in ("ClusterRole", "Role"):
            for rule in obj["rules"]:
                for key in ("apiGroups", "resources", "verbs", "resourceNames"):
                    assert "*" not in rule.get(key, []), f"{obj['metadata']['name']}: {rule}"
                    assert not any("*" in item for item in rule.get(key, []))
            assert "secrets" not in {r for rule in obj["rules"] for r in rule["resources"]}


def test_operator_role_grants_exactly_the_contract() -> None:
    assert permissions(one(render("defaults"), "ClusterRole", RELEASE)) == OPERATOR_RULES
    assert permissions(one(render("ha"), "ClusterRole", RELEASE)) == OPERATOR_RULES | PEERING_RULES
    binding = one(render("defaults"), "ClusterRoleBinding", RELEASE)
    assert binding["roleRef"]["name"] == RELEASE
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": RELEASE, "namespace": NAMESPACE}
    ]


@pytest.mark.parametrize("name", USER_ROLES)
def test_user_roles(name: str) -> None:
    role = one(render("defaults"), "ClusterRole", name)
    assert permissions(role) == USER_ROLES[name]
    labels = role["metadata"]["labels"]
    aggregated = {
        key.rsplit("-", 1)[-1]
        for key, value in labels.items()
        if key.startswith("rbac.authorization.k8s.io/aggregate-to-") and value == "true"
    }
    assert aggregated == AGGREGATION[name]
    assert not any(resource.endswith("/status") for _, resource in permissions(role))


# --- Services and webhooks -----------------------------------------------------------------


def test_services() -> None:
    objects = render("defaults")
    ports = {
        o["metadata"]["name"]: [(p["port"], p["targetPort"]) for p in o["spec"]["ports"]]
        for o in objects
        if o["kind"] == "Service"
    }
    assert ports == {
        "mltrl-operator-metrics": [(9090, "metrics")],
        "mltrl-operator-webhook": [(443, "webhook")],
        "mltrl-operator-alerts": [(9091, "alerts")],
    }


WEBHOOK_PATHS = {
    ("MutatingWebhookConfiguration", "levelreviews.mutate.mltrl.dev"): (
        "/mutate-levelreview", "levelreviews", "mltrl.dev",
    ),
    ("MutatingWebhookConfiguration", "mltechnologies.mutate.mltrl.dev"): (
        "/mutate-mltechnology", "mltechnologies", "mltrl.dev",
    ),
    ("ValidatingWebhookConfiguration", "levelreviews.validate.mltrl.dev"): (
        "/validate-levelreview", "levelreviews", "mltrl.dev",
    ),
    ("ValidatingWebhookConfiguration", "mltechnologies.validate.mltrl.dev"): (
        "/validate-mltechnology", "mltechnologies", "mltrl.dev",
    ),
    ("ValidatingWebhookConfiguration", "status.validate.mltrl.dev"): (
        "/validate-status", "mltechnologies/status,levelreviews/status,mltrlpolicies/status",
        "mltrl.dev",
    ),
    ("ValidatingWebhookConfiguration", "mltrlpolicies.validate.mltrl.dev"): (
        "/validate-mltrlpolicy", "mltrlpolicies", "mltrl.dev",
    ),
    ("ValidatingWebhookConfiguration", "inferenceservices.validate.mltrl.dev"): (
        "/validate-inferenceservice", "inferenceservices", "serving.kserve.io",
    ),
    ("ValidatingWebhookConfiguration", "mltrlauditrecords.validate.mltrl.dev"): (
        "/validate-mltrlauditrecord", "mltrlauditrecords", "mltrl.dev",
    ),
    ("MutatingWebhookConfiguration", "mltrlwaivers.mutate.mltrl.dev"): (
        "/mutate-mltrlwaiver", "mltrlwaivers", "mltrl.dev",
    ),
    ("ValidatingWebhookConfiguration", "mltrlwaivers.validate.mltrl.dev"): (
        "/validate-mltrlwaiver", "mltrlwaivers,mltrlwaivers/status", "mltrl.dev",
    ),
}
CLUSTER_SCOPED = {"mltrlpolicies", "mltrlauditrecords"}
EVERY_OPERATION = {"mltrlauditrecords"}


def webhooks(objects: Objects) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (o["kind"], hook["name"]): hook
        for o in objects
        if o["kind"].endswith("WebhookConfiguration")
        for hook in o["webhooks"]
    }


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_webhooks(scenario: str) -> None:
    hooks = webhooks(render(scenario))
    assert hooks.keys() == WEBHOOK_PATHS.keys()
    isvc_policy = SCENARIOS[scenario].get("webhook", {}).get("inferenceService", {})
    excluded = {NAMESPACE, "kube-system", *SCENARIOS[scenario].get("webhook", {}).get(
        "excludeNamespaces", []
    )}
    for key, hook in hooks.items():
        path, resource, group = WEBHOOK_PATHS[key]
        service = hook["clientConfig"]["service"]
        assert service == {
            "name": "mltrl-operator-webhook", "namespace": NAMESPACE, "path": path, "port": 443,
        }
        assert [(r["apiGroups"], r["resources"]) for r in hook["rules"]] == [
            ([group], resource.split(","))
        ]
        assert hook["rules"][0]["operations"] == (
            ["CREATE", "UPDATE", "DELETE"] if resource in EVERY_OPERATION else ["CREATE", "UPDATE"]
        )
        assert hook["timeoutSeconds"] == 5
        assert hook["sideEffects"] == "None"
        assert hook["admissionReviewVersions"] == ["v1"]
        expected = isvc_policy.get("failurePolicy", "Fail") if group != "mltrl.dev" else "Fail"
        assert hook["failurePolicy"] == expected
        if resource in CLUSTER_SCOPED:
            assert hook["rules"][0]["scope"] == "Cluster"
        if group == "mltrl.dev":
            # MLTRL objects are governed in every namespace (docs/security.md).
            assert "namespaceSelector" not in hook
        else:
            (expression,) = hook["namespaceSelector"]["matchExpressions"]
            assert expression["key"] == "kubernetes.io/metadata.name"
            assert expression["operator"] == "NotIn"
            assert set(expression["values"]) == excluded
        conditions = {c["name"]: c["expression"] for c in hook["matchConditions"]}
        assert conditions["not-the-operator"] == (
            f'request.userInfo.username != "system:serviceaccount:{NAMESPACE}:{RELEASE}"'
        )
        if key[1] == "status.validate.mltrl.dev":
            # Status is refused on objects being deleted too: a finalizer opens no door.
            assert hook["rules"][0]["scope"] == "*"
        if key[1] == "status.validate.mltrl.dev" or resource in EVERY_OPERATION:
            # A DELETE carries no object to ask about.
            assert "not-being-deleted" not in conditions
        else:
            assert conditions["not-being-deleted"] == "!has(object.metadata.deletionTimestamp)"


def test_cert_manager_issues_and_injects_the_webhook_certificate() -> None:
    objects = render("defaults")
    certificate = one(objects, "Certificate")
    assert certificate["spec"]["secretName"] == "mltrl-operator-webhook-tls"
    assert certificate["spec"]["dnsNames"][0] == f"mltrl-operator-webhook.{NAMESPACE}.svc"
    assert certificate["spec"]["issuerRef"]["name"] == one(objects, "Issuer")["metadata"]["name"]
    assert one(objects, "Issuer")["spec"] == {"selfSigned": {}}
    for obj in objects:
        if obj["kind"].endswith("WebhookConfiguration"):
            assert obj["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == (
                f"{NAMESPACE}/mltrl-operator-webhook"
            )
            assert all("caBundle" not in h["clientConfig"] for h in obj["webhooks"])
    volumes = one(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "webhook-tls", "secret": {
        "secretName": "mltrl-operator-webhook-tls", "defaultMode": 0o440,
    }} in volumes

    cluster_issuer = render("cert-manager-cluster-issuer")
    assert "Issuer" not in kinds(cluster_issuer)
    assert one(cluster_issuer, "Certificate")["spec"]["issuerRef"] == {
        "name": "internal-ca", "kind": "ClusterIssuer", "group": "cert-manager.io",
    }


def test_without_cert_manager_the_given_ca_bundle_and_secret_are_used() -> None:
    objects = render("no-cert-manager")
    assert not {"Issuer", "Certificate"} & set(kinds(objects))
    for obj in objects:
        if obj["kind"].endswith("WebhookConfiguration"):
            annotations = obj["metadata"].get("annotations") or {}
            assert "cert-manager.io/inject-ca-from" not in annotations
            assert all(h["clientConfig"]["caBundle"] == CA_BUNDLE.decode() for h in obj["webhooks"])
    volumes = one(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]
    assert any(v.get("secret", {}).get("secretName") == "mltrl-webhook-tls" for v in volumes)


# --- alerts token, monitoring, default policy ----------------------------------------------


def test_alerts_token_is_generated_or_taken_from_an_existing_secret() -> None:
    objects = render("defaults")
    secret = one(objects, "Secret")
    assert secret["metadata"]["name"] == "mltrl-operator-alerts-token"
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert len(base64.b64decode(secret["data"]["token"])) == 48
    fresh = tool("render_manifests").render_chart({})
    del fresh["mltrl-operator/templates/NOTES.txt"]
    fresh_secret = next(
        doc for text in fresh.values() for doc in yaml.safe_load_all(text)
        if isinstance(doc, dict) and doc["kind"] == "Secret"
    )
    assert fresh_secret["data"]["token"] != secret["data"]["token"], "a random token per install"

    existing = render("existing-token")
    assert "Secret" not in kinds(existing)
    volume = next(
        v for v in one(existing, "Deployment")["spec"]["template"]["spec"]["volumes"]
        if v["name"] == "alerts-token"
    )
    assert volume["secret"]["secretName"] == "am-token"
    assert volume["secret"]["items"] == [{"key": "t", "path": "token"}]


def test_service_monitor_and_prometheus_rule() -> None:
    objects = render("monitoring")
    monitor = one(objects, "ServiceMonitor")
    metrics_service = one(objects, "Service", "mltrl-operator-metrics")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= metrics_service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == metrics_service["spec"]["ports"][0]["name"]
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"

    rules = one(objects, "PrometheusRule")["spec"]["groups"][0]["rules"]
    by_name = {rule["alert"]: rule for rule in rules}
    assert {"MLTRLTechnologyBelowTarget", "MLTRLServingBlocked", "MLTRLReconcileErrors"} <= set(
        by_name
    )
    expressions = " ".join(rule["expr"] for rule in rules)
    for metric in (
        "mltrl_technology_level",
        "mltrl_technology_target_level",
        "mltrl_serving_allowed",
        "mltrl_reconcile_errors_total",
    ):
        assert metric in expressions
    for rule in rules:
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}
        assert rule["annotations"]["summary"]
    assert "ServiceMonitor" not in kinds(render("defaults"))
    assert "PrometheusRule" not in kinds(render("defaults"))
    labels = one(render("everything"), "ServiceMonitor")["metadata"]["labels"]
    assert labels["release"] == "prometheus"


def _crd_schema(kind: str) -> dict[str, Any]:
    for path in (REPO / "crds").glob("*.yaml"):
        crd = yaml.safe_load(path.read_text())
        if crd["spec"]["names"]["kind"] == kind:
            return dict(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    raise AssertionError(kind)


def test_default_policy_is_a_valid_mltrlpolicy() -> None:
    assert "MLTRLPolicy" not in kinds(render("defaults"))
    policy = one(render("default-policy"), "MLTRLPolicy")
    assert policy["apiVersion"] == "mltrl.dev/v1alpha1"
    assert policy["metadata"]["name"] == "default"
    # Our CRD's structural schema is plain JSON Schema apart from x-kubernetes-* keys.
    jsonschema.Draft7Validator(_crd_schema("MLTRLPolicy")).validate(policy)
    assert policy["spec"]["serving"]["minimumLevel"] == 6


# --- values.schema.json and the chart's files ----------------------------------------------

BAD_VALUES: dict[str, dict[str, Any]] = {
    "unknown top-level key": {"replicas": 3},
    "unknown nested key": {"ha": {"enable": True}},
    "isvc failure policy": {"webhook": {"inferenceService": {"failurePolicy": "Maybe"}}},
    "webhook timeout above 30": {"webhook": {"timeoutSeconds": 31}},
    "one HA replica": {"ha": {"enabled": True, "replicas": 1}},
    "kopf's shared default peering": {"ha": {"peeringName": "default"}},
    "no cert-manager and no CA bundle": {"certManager": {"enabled": False}},
    "pull policy": {"image": {"pullPolicy": "Sometimes"}},
    "policy spec field": {"defaultPolicy": {"spec": {"servingMinimum": 6}}},
    "duration": {"prometheusRule": {"belowTargetFor": "two weeks"}},
}


@pytest.mark.parametrize("values", BAD_VALUES.values(), ids=list(BAD_VALUES))
def test_values_schema_refuses_bad_values(values: dict[str, Any]) -> None:
    helm = require("helm_python")
    with pytest.raises(helm.HelmError, match="schema"):
        tool("render_manifests").render_chart(values)


def test_values_yaml_passes_its_own_schema_and_the_chart_lints() -> None:
    helm = require("helm_python")
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema({})
        assert chart.metadata["apiVersion"] == "v2"
        assert chart.metadata["appVersion"] == "0.1.0"
        assert chart.metadata["name"] == "mltrl-operator"
    report = helm.lint(CHART, strict=True, namespace=NAMESPACE)
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert problems == [] and report["errors"] == [], report


def test_chart_crds_are_the_generated_crds() -> None:
    helm = require("helm_python")
    committed = {p.name: p.read_text() for p in (REPO / "crds").glob("*.yaml")}
    with helm.Chart.load(CHART) as chart:
        in_chart = {c["name"].removeprefix("crds/"): c["data"] for c in chart.crds}
    assert in_chart == committed, "run .venv/bin/python tools/render_manifests.py"


def test_notes_render_with_the_alerts_receiver() -> None:
    notes = tool("render_manifests").render_chart({})["mltrl-operator/templates/NOTES.txt"]
    assert f"http://mltrl-operator-alerts.{NAMESPACE}.svc:9091/alerts" in notes
    assert "mltrl-operator-alerts-token" in notes

