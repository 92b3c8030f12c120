"""The RBAC authorizer's parts: request attributes, rule matching, covering, aggregation,
and the 403 text, each against what kube-apiserver does."""

from __future__ import annotations

from typing import Any

import pytest

from mltrl_sandbox.aggregation import aggregated_rules, selector_matches
from mltrl_sandbox.rbac import (
    Attributes,
    covers,
    forbidden,
    request_attributes,
    rule_allows,
    rule_text,
)
from mltrl_sandbox.server import SandboxServer
from mltrl_sandbox.users import UserInfo

ALICE = UserInfo("alice", ("system:authenticated",))


@pytest.mark.parametrize(("method", "path", "query", "expected"), [
    ("GET", "/api/v1/namespaces/team/pods", {}, ("list", "", "pods", "", "team", "")),
    ("GET", "/api/v1/namespaces/team/pods", {"watch": "true"},
     ("watch", "", "pods", "", "team", "")),
    ("GET", "/apis/mltrl.dev/v1alpha1/namespaces/t/mltechnologies",
     {"fieldSelector": "metadata.name=x"}, ("list", "mltrl.dev", "mltechnologies", "", "t", "x")),
    ("PATCH", "/apis/mltrl.dev/v1alpha1/namespaces/t/mltechnologies/x/status", {},
     ("patch", "mltrl.dev", "mltechnologies", "status", "t", "x")),
    ("DELETE", "/apis/batch/v1/namespaces/t/jobs", {},
     ("deletecollection", "batch", "jobs", "", "t", "")),
    ("POST", "/apis/mltrl.dev/v1alpha1/mltrlpolicies", {},
     ("create", "mltrl.dev", "mltrlpolicies", "", "", "")),
    # a namespace is its own namespace; its status is a subresource, not a resource
    ("GET", "/api/v1/namespaces/team", {}, ("get", "", "namespaces", "", "team", "team")),
    ("PUT", "/api/v1/namespaces/team/finalize", {},
     ("update", "", "namespaces", "finalize", "team", "team")),
])
def test_request_attributes_as_kube_apiserver_reads_them(
    method: str, path: str, query: dict[str, str], expected: tuple[str, ...]
) -> None:
    attrs = request_attributes(ALICE, method, path, query)
    assert attrs.resource_request
    assert (attrs.verb, attrs.api_group, attrs.resource, attrs.subresource, attrs.namespace,
            attrs.name) == expected


@pytest.mark.parametrize("path", ["/api", "/api/v1", "/apis", "/apis/mltrl.dev",
                                  "/apis/mltrl.dev/v1alpha1", "/openapi/v3", "/version"])
def test_discovery_and_the_like_are_non_resource_paths(path: str) -> None:
    attrs = request_attributes(ALICE, "GET", path, {})
    assert not attrs.resource_request and (attrs.verb, attrs.path) == ("get", path)


def test_rules_match_verbs_groups_resources_subresources_and_names() -> None:
    status = Attributes(ALICE, "patch", True, "mltrl.dev", "v1", "mltechnologies", "status",
                        "t", "x")
    assert not rule_allows({"apiGroups": ["mltrl.dev"], "resources": ["mltechnologies"],
                            "verbs": ["*"]}, status)
    assert rule_allows({"apiGroups": ["*"], "resources": ["*/status"], "verbs": ["patch"]},
                       status)
    assert rule_allows({"apiGroups": ["mltrl.dev"], "resources": ["mltechnologies/status"],
                        "verbs": ["patch"], "resourceNames": ["x"]}, status)
    assert not rule_allows({"apiGroups": ["mltrl.dev"], "resources": ["mltechnologies/status"],
                            "verbs": ["patch"], "resourceNames": ["y"]}, status)
    create = Attributes(ALICE, "create", True, "mltrl.dev", "v1", "mltechnologies")
    # resourceNames never allow a create: its name is not known when it is authorized
    assert not rule_allows({"apiGroups": ["mltrl.dev"], "resources": ["mltechnologies"],
                            "verbs": ["create"], "resourceNames": ["x"]}, create)
    path = Attributes(ALICE, "get", False, path="/openapi/v3/apis/mltrl.dev/v1alpha1")
    assert rule_allows({"nonResourceURLs": ["/openapi/*"], "verbs": ["get"]}, path)
    assert not rule_allows({"nonResourceURLs": ["/openapi"], "verbs": ["get"]}, path)
    assert not rule_allows({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, path)


def test_a_rule_is_covered_only_by_what_holds_every_part_of_it() -> None:
    held = [{"apiGroups": ["mltrl.dev"], "resources": ["mltechnologies"],
             "verbs": ["get", "list"]},
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["*"],
             "resourceNames": ["settings"]}]
    assert covers(held, {"apiGroups": ["mltrl.dev"], "resources": ["mltechnologies"],
                         "verbs": ["get"]})
    assert not covers(held, {"apiGroups": ["mltrl.dev"], "resources": ["mltechnologies"],
                             "verbs": ["*"]})
    assert not covers(held, {"apiGroups": ["*"], "resources": ["mltechnologies"],
                             "verbs": ["get"]})
    assert covers(held, {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"],
                         "resourceNames": ["settings"]})
    assert not covers(held, {"apiGroups": [""], "resources": ["configmaps"],
                             "verbs": ["get"]})


def test_refusals_and_rules_read_as_kube_apiserver_writes_them() -> None:
    named = forbidden(Attributes(ALICE, "get", True, "", "v1", "secrets", "", "team", "db"))
    assert (named.code, named.reason) == (403, "Forbidden")
    assert named.message == ('secrets "db" is forbidden: User "alice" cannot get resource '
                             '"secrets" in API group "" in the namespace "team"')
    cluster = forbidden(Attributes(ALICE, "list", True, "mltrl.dev", "v1", "mltrlpolicies"))
    assert cluster.message == ('mltrlpolicies.mltrl.dev is forbidden: User "alice" cannot '
                               'list resource "mltrlpolicies" in API group "mltrl.dev" at '
                               "the cluster scope")
    path = forbidden(Attributes(ALICE, "get", False, path="/apis"))
    assert path.message == 'forbidden: User "alice" cannot get path "/apis"'
    assert rule_text({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"],
                      "resourceNames": ["a"]}) == (
        '{APIGroups:[""], Resources:["pods"], ResourceNames:["a"], Verbs:["get"]}')


def role(name: str, labels: dict[str, str], rules: list[dict[str, Any]],
         selectors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"metadata": {"name": name, "labels": labels}, "rules": rules}
    if selectors is not None:
        body["aggregationRule"] = {"clusterRoleSelectors": selectors}
    return body


def test_aggregation_takes_the_rules_of_the_matching_roles_once() -> None:
    read = {"apiGroups": ["a"], "resources": ["x"], "verbs": ["get"]}
    write = {"apiGroups": ["a"], "resources": ["x"], "verbs": ["create"]}
    aggregate = role("agg", {}, [], [{"matchLabels": {"to-agg": "true"}},
                                     {"matchExpressions": [{"key": "tier", "operator": "In",
                                                            "values": ["gold"]}]}])
    roles = [aggregate, role("b", {"to-agg": "true"}, [read, write]),
             role("a", {"tier": "gold"}, [read]), role("c", {"tier": "silver"}, [write])]
    assert aggregated_rules(aggregate, roles) == [read, write]  # by role name, deduplicated
    assert not selector_matches({}, {"anything": "x"})


async def test_the_bootstrap_roles_are_aggregated_before_the_server_listens() -> None:
    async with SandboxServer() as server:
        edit = server.store.get("clusterroles.rbac.authorization.k8s.io", None, "edit")
        admin = server.store.get("clusterroles.rbac.authorization.k8s.io", None, "admin")
        assert edit is not None and admin is not None
        reads_pods = {"apiGroups": [""], "resources": ["pods", "replicationcontrollers",
                      "replicationcontrollers/scale", "serviceaccounts", "services",
                      "services/status", "endpoints", "persistentvolumeclaims",
                      "persistentvolumeclaims/status", "configmaps"],
                      "verbs": ["get", "list", "watch"]}
        assert reads_pods in edit["rules"] and reads_pods in admin["rules"]  # from view
        assert not any("roles" in r["resources"] for r in edit["rules"])
        assert any("roles" in r["resources"] for r in admin["rules"])


async def test_the_servers_own_writes_name_their_field_managers() -> None:
    """`--show-managed-fields` names kube-apiserver for what it creates at start, and the
    aggregation controller for the rules it fills in, as on a cluster."""

    def managers(storage: str, name: str) -> set[tuple[str, str]]:
        found = server.store.get(storage, None, name)
        assert found is not None
        return {(e["manager"], e["operation"]) for e in found["metadata"]["managedFields"]}

    async with SandboxServer() as server:
        assert managers("namespaces", "default") == {("kube-apiserver", "Update")}
        roles = "clusterroles.rbac.authorization.k8s.io"
        assert managers(roles, "view") == {
            ("kube-apiserver", "Update"), ("clusterrole-aggregation-controller", "Update")}
        assert managers("clusterrolebindings.rbac.authorization.k8s.io", "cluster-admin") == {
            ("kube-apiserver", "Update")}
        await server.grant("edit", users=["bob"])
        assert managers("clusterrolebindings.rbac.authorization.k8s.io", "edit-bob") == {
            ("kubectl-create", "Update")}
