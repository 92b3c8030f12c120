"""The RBAC objects kube-apiserver creates at start (its bootstrap policy), abridged to
the kinds the sandbox knows of but with the real names, labels and aggregation:

- cluster-admin (everything), bound to the group system:masters;
- admin, edit and view, the user-facing roles, filled by aggregation from the roles
  labelled rbac.authorization.k8s.io/aggregate-to-{admin,edit,view} (view aggregates into
  edit, edit into admin), with system:aggregate-to-* holding the built-in kinds' rules;
- system:basic-user (whoami, can-i), system:discovery and system:public-info-viewer,
  bound to every authenticated user.
"""

from __future__ import annotations

from typing import Any

from .rbac import GROUP

Obj = dict[str, Any]

READ = ["get", "list", "watch"]
WRITE = ["create", "delete", "deletecollection", "patch", "update"]
AGGREGATE = "rbac.authorization.k8s.io/aggregate-to-"
_BOOTSTRAP_LABELS = {"kubernetes.io/bootstrapping": "rbac-defaults"}
_BOOTSTRAP_ANNOTATIONS = {"rbac.authorization.kubernetes.io/autoupdate": "true"}


def _rule(verbs: list[str], group: str, *resources: str) -> Obj:
    return {"apiGroups": [group], "resources": list(resources), "verbs": list(verbs)}


def _role(name: str, rules: list[Obj], labels: dict[str, str] | None = None,
          aggregate_from: str = "") -> Obj:
    role: Obj = {
        "apiVersion": f"{GROUP}/v1", "kind": "ClusterRole",
        "metadata": {"name": name, "labels": {**_BOOTSTRAP_LABELS, **(labels or {})},
                     "annotations": dict(_BOOTSTRAP_ANNOTATIONS)},
        "rules": rules,
    }
    if aggregate_from:
        role["aggregationRule"] = {
            "clusterRoleSelectors": [{"matchLabels": {AGGREGATE + aggregate_from: "true"}}]
        }
    return role


def _binding(name: str, role: str, *groups: str) -> Obj:
    return {
        "apiVersion": f"{GROUP}/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": name, "labels": dict(_BOOTSTRAP_LABELS),
                     "annotations": dict(_BOOTSTRAP_ANNOTATIONS)},
        "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": GROUP, "kind": "Group", "name": g} for g in groups],
    }


_VIEW = [
    _rule(READ, "", "pods", "replicationcontrollers", "replicationcontrollers/scale",
          "serviceaccounts", "services", "services/status", "endpoints",
          "persistentvolumeclaims", "persistentvolumeclaims/status", "configmaps"),
    _rule(READ, "", "limitranges", "resourcequotas", "bindings", "events", "pods/status",
          "resourcequotas/status", "namespaces/status", "replicationcontrollers/status",
          "pods/log"),
    _rule(READ, "", "namespaces"),
    _rule(READ, "discovery.k8s.io", "endpointslices"),
    _rule(READ, "apps", "controllerrevisions", "statefulsets", "statefulsets/scale",
          "statefulsets/status", "daemonsets", "daemonsets/status", "deployments",
          "deployments/scale", "deployments/status", "replicasets", "replicasets/scale",
          "replicasets/status"),
    _rule(READ, "autoscaling", "horizontalpodautoscalers", "horizontalpodautoscalers/status"),
    _rule(READ, "batch", "cronjobs", "cronjobs/status", "jobs", "jobs/status"),
    _rule(READ, "policy", "poddisruptionbudgets", "poddisruptionbudgets/status"),
    _rule(READ, "networking.k8s.io", "ingresses", "ingresses/status", "networkpolicies"),
]

_EDIT = [
    _rule(READ, "", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets",
          "services/proxy"),
    _rule(["impersonate"], "", "serviceaccounts"),
    _rule(WRITE, "", "pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"),
    _rule(["create"], "", "pods/eviction"),
    _rule(WRITE, "", "configmaps", "events", "persistentvolumeclaims", "replicationcontrollers",
          "replicationcontrollers/scale", "secrets", "serviceaccounts", "services",
          "services/proxy"),
    _rule(["create"], "", "serviceaccounts/token"),
    _rule(WRITE, "apps", "daemonsets", "deployments", "deployments/rollback",
          "deployments/scale", "replicasets", "replicasets/scale", "statefulsets",
          "statefulsets/scale"),
    _rule(WRITE, "autoscaling", "horizontalpodautoscalers"),
    _rule(WRITE, "batch", "cronjobs", "jobs"),
    _rule(WRITE, "policy", "poddisruptionbudgets"),
    _rule(WRITE, "networking.k8s.io", "ingresses", "networkpolicies"),
    _rule(READ + WRITE, "coordination.k8s.io", "leases"),
]

_ADMIN = [
    _rule(["create"], "authorization.k8s.io", "localsubjectaccessreviews"),
    _rule(READ + WRITE, GROUP, "rolebindings", "roles"),
]

_DISCOVERY_URLS = ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi",
                   "/openapi/*", "/readyz", "/version", "/version/"]
_PUBLIC_URLS = ["/healthz", "/livez", "/readyz", "/version", "/version/"]


def cluster_roles() -> list[Obj]:
    return [
        _role("cluster-admin", [
            {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
            {"nonResourceURLs": ["*"], "verbs": ["*"]},
        ]),
        _role("admin", [], aggregate_from="admin"),
        _role("edit", [], {AGGREGATE + "admin": "true"}, aggregate_from="edit"),
        _role("view", [], {AGGREGATE + "edit": "true"}, aggregate_from="view"),
        _role("system:aggregate-to-admin", _ADMIN, {AGGREGATE + "admin": "true"}),
        _role("system:aggregate-to-edit", _EDIT, {AGGREGATE + "edit": "true"}),
        _role("system:aggregate-to-view", _VIEW, {AGGREGATE + "view": "true"}),
        _role("system:basic-user", [
            _rule(["create"], "authentication.k8s.io", "selfsubjectreviews"),
            _rule(["create"], "authorization.k8s.io", "selfsubjectaccessreviews",
                  "selfsubjectrulesreviews"),
        ]),
        _role("system:discovery", [{"nonResourceURLs": _DISCOVERY_URLS, "verbs": ["get"]}]),
        _role("system:public-info-viewer",
              [{"nonResourceURLs": _PUBLIC_URLS, "verbs": ["get"]}]),
    ]


def cluster_role_bindings() -> list[Obj]:
    return [
        _binding("cluster-admin", "cluster-admin", "system:masters"),
        _binding("system:basic-user", "system:basic-user", "system:authenticated"),
        _binding("system:discovery", "system:discovery", "system:authenticated"),
        _binding("system:public-info-viewer", "system:public-info-viewer",
                 "system:authenticated", "system:unauthenticated"),
    ]
