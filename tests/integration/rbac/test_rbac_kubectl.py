"""RBAC as kube-apiserver does it, tried with real kubectl as different users on a sandbox
holding exactly the chart's RBAC (harness.USER_ROLES says who is bound to what)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import Sandbox, eventually
from tests.integration.operator.scenarios import technology

pytestmark = pytest.mark.integration

FORBIDDEN = "Error from server (Forbidden): "


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    cluster = Sandbox(tmp_path_factory.mktemp("rbac"), kserve=False, rbac=True).start()
    cluster.namespace("team")
    yield cluster
    cluster.stop()


def can_i(sandbox: Sandbox, user: str, *args: str) -> str:
    answer = sandbox.as_user(user, "auth", "can-i", *args)
    assert answer.returncode == (0 if answer.stdout.strip() == "yes" else 1), answer
    return answer.stdout.strip()


def rbac(kind: str, name: str, namespace: str | None = None, **body: Any) -> str:
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    return json.dumps({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind,
                       "metadata": metadata, **body})


def binding(kind: str, name: str, namespace: str | None, role_kind: str, role: str,
            user: str) -> str:
    return rbac(kind, name, namespace,
                roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind,
                         "name": role},
                subjects=[{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                           "name": user}])


def test_can_i_answers_from_the_bindings(sandbox: Sandbox) -> None:
    assert can_i(sandbox, "alice", "create", "mltechnologies", "-n", "team") == "yes"
    assert can_i(sandbox, "alice", "patch", "mltechnologies", "--subresource=status",
                 "-n", "team") == "no"
    assert can_i(sandbox, "alice", "create", "mltrlpolicies") == "no"
    assert can_i(sandbox, "paula", "create", "mltrlpolicies") == "yes"
    assert can_i(sandbox, "vera", "list", "levelreviews", "-n", "team") == "yes"
    assert can_i(sandbox, "vera", "create", "levelreviews", "-n", "team") == "no"
    assert can_i(sandbox, "bob", "update", "levelreviews", "-n", "team") == "yes"
    assert can_i(sandbox, "system:serviceaccount:ci:approver", "delete", "levelreviews",
                 "-n", "team") == "no"
    # default deny: nobody bound, nothing allowed, not even reading
    assert sandbox.kubectl("auth", "can-i", "get", "mltechnologies", "--as", "nobody",
                           check=False).stdout.strip() == "no"
    # the admin context is in system:masters
    assert sandbox.kubectl("auth", "can-i", "*", "*").stdout.strip() == "yes"


def test_can_i_list_shows_the_rules_held(sandbox: Sandbox) -> None:
    listed = sandbox.as_user("vera", "auth", "can-i", "--list", "-n", "team", check=True).stdout
    rows = {line.split()[0]: line for line in listed.splitlines() if line.strip()}
    assert "[get list watch]" in rows["mltechnologies.mltrl.dev"]
    assert "[get list watch]" in rows["inferenceservices.serving.kserve.io"]
    assert "selfsubjectaccessreviews.authorization.k8s.io" in rows
    assert "secrets" not in rows  # view does not read secrets
    policy_admin = sandbox.as_user("paula", "auth", "can-i", "--list", check=True).stdout
    assert "mltrlpolicies.mltrl.dev" in policy_admin
    assert "mltechnologies.mltrl.dev" not in policy_admin


def test_a_denied_request_gets_kube_apiservers_403(sandbox: Sandbox) -> None:
    document = json.dumps(technology("denied", "team"))
    refused = sandbox.as_user("vera", "create", "-f", "-", input=document)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f'{FORBIDDEN}error when creating "STDIN": mltechnologies.mltrl.dev is forbidden: '
        'User "vera" cannot create resource "mltechnologies" in API group "mltrl.dev" '
        'in the namespace "team"'
    )
    listed = sandbox.kubectl("get", "mltrlpolicies", "--as", "nobody", check=False)
    assert listed.stderr.strip() == (
        f'{FORBIDDEN}mltrlpolicies.mltrl.dev is forbidden: User "nobody" cannot list '
        'resource "mltrlpolicies" in API group "mltrl.dev" at the cluster scope'
    )
    named = sandbox.as_user("vera", "get", "secret", "anything", "-n", "team")
    assert named.stderr.strip() == (
        f'{FORBIDDEN}secrets "anything" is forbidden: User "vera" cannot get resource '
        '"secrets" in API group "" in the namespace "team"'
    )
    status = sandbox.as_user("alice", "patch", "mltech", "x", "-n", "team",
                             "--subresource=status", "--type=merge", "-p", "{}")
    # kubectl reads the status before patching it, and may not
    assert 'User "alice" cannot get resource "mltechnologies/status" in API group ' \
        '"mltrl.dev"' in status.stderr


def test_impersonation_needs_the_impersonate_verb(sandbox: Sandbox) -> None:
    sandbox.as_user("alice", "get", "mltech", "-n", "team", check=True)  # discovery cached
    refused = sandbox.as_user("alice", "get", "mltech", "-n", "team", "--as", "bob")
    assert refused.stderr.strip() == (
        f'{FORBIDDEN}users "bob" is forbidden: User "alice" cannot impersonate resource '
        '"users" in API group "" at the cluster scope'
    )
    refused = sandbox.as_user("alice", "get", "mltech", "-n", "team", "--as", "alice",
                              "--as-group", "system:masters")
    assert 'users "alice" is forbidden: User "alice" cannot impersonate' in refused.stderr
    # edit may impersonate the namespace's service accounts, which hold nothing here
    as_account = sandbox.as_user("alice", "get", "mltech", "-n", "team",
                                 "--as", "system:serviceaccount:team:builder")
    assert as_account.stderr.strip() == (
        f'{FORBIDDEN}mltechnologies.mltrl.dev is forbidden: User '
        '"system:serviceaccount:team:builder" cannot list resource "mltechnologies" in API '
        'group "mltrl.dev" in the namespace "team"'
    )
    whoami = sandbox.kubectl("auth", "whoami", "--as", "system:serviceaccount:team:builder",
                             "-o", "json").stdout
    assert json.loads(whoami)["status"]["userInfo"]["groups"] == [
        "system:serviceaccounts", "system:serviceaccounts:team", "system:authenticated"]


def test_roles_and_bindings_grant_only_what_their_author_holds(sandbox: Sandbox) -> None:
    # a namespace admin (the `admin` role in one namespace) may write roles and bindings
    sandbox.apply(json.loads(binding("RoleBinding", "alice-admin", "team", "ClusterRole",
                                     "admin", "alice")))
    held = rbac("Role", "technology-reader", "team", rules=[
        {"apiGroups": ["mltrl.dev"], "resources": ["mltechnologies"], "verbs": ["get"]}])
    sandbox.as_user("alice", "apply", "-f", "-", input=held, check=True)
    escalating = rbac("Role", "policy-writer", "team", rules=[
        {"apiGroups": ["mltrl.dev"], "resources": ["mltechnologies/status"],
         "verbs": ["patch"]}])
    refused = sandbox.as_user("alice", "create", "-f", "-", input=escalating)
    assert refused.stderr.strip() == (
        f'{FORBIDDEN}error when creating "STDIN": roles.rbac.authorization.k8s.io '
        '"policy-writer" is forbidden: user "alice" (groups=["system:authenticated"]) is '
        "attempting to grant RBAC permissions not currently held:\n"
        '{APIGroups:["mltrl.dev"], Resources:["mltechnologies/status"], Verbs:["patch"]}'
    )
    to_admin = binding("RoleBinding", "mallory-root", "team", "ClusterRole", "cluster-admin",
                       "mallory")
    refused = sandbox.as_user("alice", "create", "-f", "-", input=to_admin)
    assert "is attempting to grant RBAC permissions not currently held" in refused.stderr
    assert '{APIGroups:["*"], Resources:["*"], Verbs:["*"]}' in refused.stderr
    to_viewer = binding("RoleBinding", "mallory-view", "team", "ClusterRole", "mltrl-viewer",
                        "mallory")
    sandbox.as_user("alice", "create", "-f", "-", input=to_viewer, check=True)
    # `bind` on a role lets its holder bind it without holding it; `escalate`, write it
    sandbox.apply(json.loads(rbac("ClusterRole", "binds-operator", rules=[
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"],
         "verbs": ["bind"], "resourceNames": ["mltrl-operator"]},
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"],
         "verbs": ["escalate"]}])))
    sandbox.apply(json.loads(binding("RoleBinding", "alice-binds", "team", "ClusterRole",
                                     "binds-operator", "alice")))
    sandbox.as_user("alice", "create", "-f", "-", check=True, input=binding(
        "RoleBinding", "ci-operator", "team", "ClusterRole", "mltrl-operator", "ci"))
    sandbox.as_user("alice", "create", "-f", "-", input=escalating, check=True)
    assert "not currently held" in sandbox.as_user("alice", "create", "-f", "-", input=binding(
        "RoleBinding", "ci-root", "team", "ClusterRole", "cluster-admin", "ci")).stderr
    # an aggregationRule can gather anything: only who holds everything may set one
    sandbox.apply([json.loads(rbac("ClusterRole", "clusterrole-writer", rules=[
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"],
         "verbs": ["create"]}])), json.loads(binding(
             "ClusterRoleBinding", "alice-writes-clusterroles", None, "ClusterRole",
             "clusterrole-writer", "alice"))])
    gathering = rbac("ClusterRole", "gather-all", aggregationRule={"clusterRoleSelectors": [
        {"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-admin": "true"}}]})
    refused = sandbox.as_user("alice", "create", "-f", "-", input=gathering)
    assert refused.stderr.strip() == (
        f'{FORBIDDEN}error when creating "STDIN": clusterroles.rbac.authorization.k8s.io '
        '"gather-all" is forbidden: must have cluster-admin privileges to use the '
        "aggregationRule"
    )


def test_aggregation_fills_the_user_facing_roles(sandbox: Sandbox) -> None:
    edit = json.loads(sandbox.kubectl("get", "clusterrole", "edit", "-o", "json").stdout)
    assert {"apiGroups": ["mltrl.dev"], "resources": ["mltechnologies", "levelreviews"],
            "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]} \
        in edit["rules"]
    # an editor edits technologies through `edit`, into which the chart aggregates
    sandbox.as_user("alice", "apply", "-f", "-", check=True,
                    input=json.dumps(technology("aggregated", "team")))
    assert sandbox.as_user("alice", "delete", "mltech", "aggregated", "-n", "team").returncode == 0
    # a role labelled later is aggregated, and taken back when it goes
    leases = {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get"]}
    assert can_i(sandbox, "vera", "get", "leases", "-n", "team") == "no"
    sandbox.apply(json.loads(rbac("ClusterRole", "leases-viewer", rules=[leases])))
    sandbox.kubectl("label", "clusterrole", "leases-viewer",
                    "rbac.authorization.k8s.io/aggregate-to-view=true")
    eventually(lambda: can_i(sandbox, "vera", "get", "leases", "-n", "team") == "yes",
               what="view to aggregate leases-viewer")
    admin = json.loads(sandbox.kubectl("get", "clusterrole", "admin", "-o", "json").stdout)
    assert leases in admin["rules"]  # view feeds edit, which feeds admin
    sandbox.kubectl("delete", "clusterrole", "leases-viewer")
    eventually(lambda: can_i(sandbox, "vera", "get", "leases", "-n", "team") == "no",
               what="view to drop leases-viewer")


def test_subject_access_review_needs_its_own_permission(sandbox: Sandbox, tmp_path: Path
                                                        ) -> None:
    review = json.dumps({
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": "bob", "resourceAttributes": {
            "namespace": "team", "verb": "update", "group": "mltrl.dev",
            "resource": "levelreviews"}},
    })
    answer = json.loads(sandbox.kubectl("create", "-f", "-", "-o", "json", input=review).stdout)
    assert answer["status"]["allowed"] is True
    assert answer["status"]["reason"].startswith("RBAC: allowed by ClusterRoleBinding ")
    # Reviews are only created, so there is no PATCH operation from which kubectl could
    # learn that the server validates fields: it falls back to asking whether the kind is a
    # CRD, which needs `list` on CRDs, as against kube-apiserver. Without client-side
    # validation the request reaches the server, which refuses it.
    refused = sandbox.as_user("alice", "create", "-f", "-", input=review)
    assert 'failed to check CRD: failed to list CRDs: customresourcedefinitions.' \
        'apiextensions.k8s.io is forbidden: User "alice" cannot list' in refused.stderr
    refused = sandbox.as_user("alice", "create", "--validate=false", "-f", "-", input=review)
    assert 'User "alice" cannot create resource "subjectaccessreviews" in API group ' \
        '"authorization.k8s.io" at the cluster scope' in refused.stderr
    # a namespace admin asks within the namespace: LocalSubjectAccessReview
    sandbox.apply(json.loads(binding("RoleBinding", "paula-admin", "team", "ClusterRole",
                                     "admin", "paula")))
    local = json.loads(review) | {"kind": "LocalSubjectAccessReview",
                                  "metadata": {"namespace": "team"}}
    answer = json.loads(sandbox.as_user("paula", "create", "--validate=false", "-f", "-",
                                        "-o", "json", input=json.dumps(local),
                                        check=True).stdout)
    assert answer["status"]["allowed"] is True
    local["spec"]["resourceAttributes"]["namespace"] = "elsewhere"
    refused = sandbox.as_user("paula", "create", "--validate=false", "-f", "-",
                              input=json.dumps(local))
    assert "spec.resourceAttributes.namespace: Invalid value: \"elsewhere\": must match " \
        "metadata.namespace" in refused.stderr
