"""RBAC as kube-apiserver decides it: Roles, ClusterRoles, RoleBindings and
ClusterRoleBindings read from the store, default deny, `system:masters` allowed
everything, the requests' attributes taken from their paths, kube-apiserver's 403 text,
and the escalation checks on writing roles and bindings.

The authorizer reads the RBAC objects by their storage (group and plural), so it does
not care how their kinds are registered. It is called from the auth middleware
(auth.py), from the impersonation check, and from the access reviews (reviews.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .admission import AdmissionDenied, AdmissionRequest
from .errors import ApiError, qualified
from .store import Store
from .users import MASTERS, UserInfo

Obj = dict[str, Any]

GROUP = "rbac.authorization.k8s.io"
ROLES = f"roles.{GROUP}"
CLUSTER_ROLES = f"clusterroles.{GROUP}"
ROLE_BINDINGS = f"rolebindings.{GROUP}"
CLUSTER_ROLE_BINDINGS = f"clusterrolebindings.{GROUP}"
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
FULL_AUTHORITY = (
    {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
    {"nonResourceURLs": ["*"], "verbs": ["*"]},
)

_VERBS = {"POST": "create", "GET": "get", "HEAD": "get", "PUT": "update", "PATCH": "patch",
          "DELETE": "delete"}
# /api/v1/namespaces/NAME/{status,finalize} are the namespace's own subresources
_NAMESPACE_SUBRESOURCES = {"status", "finalize"}


@dataclass(frozen=True)
class Attributes:
    """What a request asks to do, as kube-apiserver's RequestInfo and authorizer see it."""

    user: UserInfo
    verb: str
    resource_request: bool = True
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""

    @property
    def combined_resource(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


def request_attributes(
    user: UserInfo, method: str, path: str, query: Mapping[str, str]
) -> Attributes:
    """kube-apiserver's RequestInfoFactory: the verb, group, resource, subresource,
    namespace and name of a request, from its method, path and query alone."""
    parts = [p for p in path.strip("/").split("/") if p]
    verb = _VERBS.get(method.upper(), method.lower())
    if len(parts) < 3 or parts[0] not in ("api", "apis") or (parts[0] == "apis" and len(parts) < 4):
        return Attributes(user, method.lower(), False, path=path or "/")
    if parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    else:
        group, version, rest = parts[1], parts[2], parts[3:]
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if not name and verb == "get":
        verb = "list"
    if verb == "list" and query.get("watch") in ("true", "1"):
        verb = "watch"
    if verb in ("list", "watch"):
        # a list or watch of one object by name is authorized as that object
        for term in (query.get("fieldSelector") or "").split(","):
            key, _, value = term.partition("=")
            if key.strip() == "metadata.name" and value and not value.startswith("="):
                name = value.strip()
    if not name and verb == "delete":
        verb = "deletecollection"
    return Attributes(user, verb, True, group, version, resource, subresource, namespace, name,
                      path)


def _matches(values: Iterable[str], wanted: str) -> bool:
    return any(value in ("*", wanted) for value in values)


def _resource_matches(resources: Iterable[str], attrs: Attributes) -> bool:
    combined = attrs.combined_resource
    for resource in resources:
        if resource in ("*", combined):
            return True
        if attrs.subresource and resource == f"*/{attrs.subresource}":
            return True
    return False


def _url_matches(urls: Iterable[str], path: str) -> bool:
    return any(
        url == path or url == "*" or (url.endswith("*") and path.startswith(url[:-1]))
        for url in urls
    )


def rule_allows(rule: Obj, attrs: Attributes) -> bool:
    """One PolicyRule against one request (rbac/v1's RuleAllows)."""
    if not _matches(rule.get("verbs") or [], attrs.verb):
        return False
    if not attrs.resource_request:
        return _url_matches(rule.get("nonResourceURLs") or [], attrs.path)
    if rule.get("nonResourceURLs") and not rule.get("resources"):
        return False
    names = rule.get("resourceNames") or []
    return (
        _matches(rule.get("apiGroups") or [], attrs.api_group)
        and _resource_matches(rule.get("resources") or [], attrs)
        and (not names or attrs.name in names)
    )


def service_account_name(username: str) -> tuple[str, str] | None:
    """system:serviceaccount:NS:NAME -> (NS, NAME)."""
    if not username.startswith(SERVICE_ACCOUNT_PREFIX):
        return None
    namespace, _, name = username[len(SERVICE_ACCOUNT_PREFIX):].partition(":")
    return (namespace, name) if namespace and name else None


def subject_matches(subject: Obj, user: UserInfo, binding_namespace: str) -> bool:
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return bool(name == user.username)
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        account = service_account_name(user.username)
        namespace = subject.get("namespace") or binding_namespace
        return account == (namespace, name)
    return False


@dataclass(frozen=True)
class Grant:
    """A rule the user holds, and the binding that gives it (for reviews' reasons)."""

    rule: Obj
    binding: str


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


@dataclass
class Authorizer:
    store: Store
    # who may do everything without a binding (kube-apiserver's privileged group)
    superuser_groups: frozenset[str] = field(default_factory=lambda: frozenset({MASTERS}))

    def _role_rules(self, kind: str, name: str, namespace: str) -> list[Obj]:
        if kind == "ClusterRole":
            role = self.store.get(CLUSTER_ROLES, None, name)
        elif kind == "Role":
            role = self.store.get(ROLES, namespace, name)
        else:
            return []
        return [r for r in (role or {}).get("rules") or [] if isinstance(r, dict)]

    def grants(self, user: UserInfo, namespace: str) -> Iterator[Grant]:
        """Every rule the user holds at the cluster scope, and in `namespace` if given."""
        for binding in self.store.list(CLUSTER_ROLE_BINDINGS):
            if any(subject_matches(s, user, "") for s in binding.get("subjects") or []):
                ref = binding.get("roleRef") or {}
                source = (f'ClusterRoleBinding "{binding["metadata"]["name"]}" of '
                          f'ClusterRole "{ref.get("name")}"')
                for rule in self._role_rules(str(ref.get("kind")), str(ref.get("name")), ""):
                    yield Grant(rule, source)
        if not namespace:
            return
        for binding in self.store.list(ROLE_BINDINGS, namespace):
            if any(subject_matches(s, user, namespace) for s in binding.get("subjects") or []):
                ref = binding.get("roleRef") or {}
                source = (f'RoleBinding "{binding["metadata"]["name"]}/{namespace}" of '
                          f'{ref.get("kind")} "{ref.get("name")}"')
                for rule in self._role_rules(str(ref.get("kind")), str(ref.get("name")),
                                             namespace):
                    yield Grant(rule, source)

    def authorize(self, attrs: Attributes) -> Decision:
        if self.superuser_groups & set(attrs.user.groups):
            return Decision(True, "")
        for grant in self.grants(attrs.user, attrs.namespace):
            if rule_allows(grant.rule, attrs):
                return Decision(True, f"RBAC: allowed by {grant.binding} to "
                                      f'{_subject_text(attrs.user)}')
        return Decision(False, "")

    def allowed(self, attrs: Attributes) -> bool:
        return self.authorize(attrs).allowed

    def check(self, attrs: Attributes) -> None:
        """Raise kube-apiserver's 403 unless the request is allowed."""
        if not self.allowed(attrs):
            raise forbidden(attrs)

    # escalation: you may only grant what you hold

    async def admit_escalation(self, request: AdmissionRequest) -> None:
        """A validating admission hook for roles and bindings (kube-apiserver's
        ConfirmNoEscalation and BindingAuthorized)."""
        rt = request.resource
        if rt.group != GROUP or request.operation == "DELETE" or request.object is None:
            return
        user = request.user
        if self.superuser_groups & set(user.groups):
            return
        obj = request.object
        namespace = request.namespace
        if rt.plural in ("roles", "clusterroles"):
            escalate = Attributes(user, "escalate", True, GROUP, "v1", rt.plural,
                                  namespace=namespace, name=request.name)
            if self.allowed(escalate):
                return
            self._confirm_held(request, [r for r in obj.get("rules") or [] if isinstance(r, dict)])
            # an aggregationRule can gather anything: it takes holding everything
            if obj.get("aggregationRule") and not all(
                covers([g.rule for g in self.grants(user, namespace)], rule)
                for rule in FULL_AUTHORITY
            ):
                raise AdmissionDenied(
                    _forbidden_text(rt.group, rt.plural, request.name,
                                    "must have cluster-admin privileges to use the "
                                    "aggregationRule"),
                    403, "Forbidden",
                )
        elif rt.plural in ("rolebindings", "clusterrolebindings"):
            ref = obj.get("roleRef") or {}
            kind, name = str(ref.get("kind", "")), str(ref.get("name", ""))
            bind = Attributes(user, "bind", True, GROUP, "v1",
                              "clusterroles" if kind == "ClusterRole" else "roles",
                              namespace=namespace, name=name)
            if self.allowed(bind):
                return
            role = (self.store.get(CLUSTER_ROLES, None, name) if kind == "ClusterRole"
                    else self.store.get(ROLES, namespace, name))
            if role is None:
                raise AdmissionDenied(
                    _forbidden_text(rt.group, rt.plural, request.name,
                                    f'{kind.lower()}.{GROUP} "{name}" not found'),
                    403, "Forbidden",
                )
            self._confirm_held(request, self._role_rules(kind, name, namespace))

    def _confirm_held(self, request: AdmissionRequest, rules: list[Obj]) -> None:
        held = [g.rule for g in self.grants(request.user, request.namespace)]
        missing = [rule for rule in rules if not covers(held, rule)]
        if not missing:
            return
        user = request.user
        groups = "[" + " ".join(json.dumps(g) for g in user.groups) + "]"
        why = (f'user "{user.username}" (groups={groups}) is attempting to grant RBAC '
               f"permissions not currently held:\n" + "\n".join(rule_text(r) for r in missing))
        rt = request.resource
        raise AdmissionDenied(_forbidden_text(rt.group, rt.plural, request.name, why),
                              403, "Forbidden")


def _subject_text(user: UserInfo) -> str:
    account = service_account_name(user.username)
    if account:
        return f'ServiceAccount "{account[1]}/{account[0]}"'
    return f'User "{user.username}"'


def _atoms(rule: Obj) -> Iterator[Attributes]:
    """A rule as the single requests it allows (the literal values, wildcards included)."""
    nobody = UserInfo("")
    verbs = rule.get("verbs") or []
    urls = rule.get("nonResourceURLs") or []
    for verb in verbs:
        for url in urls:
            yield Attributes(nobody, verb, False, path=url)
        for group in rule.get("apiGroups") or []:
            for resource in rule.get("resources") or []:
                main, _, sub = resource.partition("/")
                for name in rule.get("resourceNames") or [""]:
                    yield Attributes(nobody, verb, True, group, "", main, sub, name=name)


def covers(held: list[Obj], rule: Obj) -> bool:
    """Whether the held rules allow everything `rule` would (kube's validation.Covers)."""
    return all(any(_covers_atom(h, atom) for h in held) for atom in _atoms(rule))


def _covers_atom(held: Obj, atom: Attributes) -> bool:
    if not atom.resource_request:
        return rule_allows(held, atom)
    # a named request is covered by a rule without names, not the other way round
    if not atom.name and held.get("resourceNames"):
        return False
    return rule_allows(held, atom)


def rule_text(rule: Obj) -> str:
    """A rule as kube-apiserver prints it in escalation errors."""
    parts = []
    for key, label in (("apiGroups", "APIGroups"), ("resources", "Resources"),
                       ("resourceNames", "ResourceNames"),
                       ("nonResourceURLs", "NonResourceURLs"), ("verbs", "Verbs")):
        if rule.get(key) or key == "verbs":
            values = ", ".join(json.dumps(v) for v in rule.get(key) or [])
            parts.append(f"{label}:[{values}]")
    return "{" + ", ".join(parts) + "}"


def _forbidden_text(group: str, resource: str, name: str, why: str) -> str:
    if not resource:
        return f"forbidden: {why}"
    what = qualified(group, resource)
    return f'{what} "{name}" is forbidden: {why}' if name else f"{what} is forbidden: {why}"


def forbidden_reason(attrs: Attributes) -> str:
    """kube-apiserver's forbiddenMessage."""
    user = attrs.user.username
    if not attrs.resource_request:
        return f'User "{user}" cannot {attrs.verb} path "{attrs.path}"'
    where = (f'in the namespace "{attrs.namespace}"' if attrs.namespace
             else "at the cluster scope")
    return (f'User "{user}" cannot {attrs.verb} resource "{attrs.combined_resource}" '
            f'in API group "{attrs.api_group}" {where}')


def forbidden(attrs: Attributes) -> ApiError:
    resource = attrs.resource if attrs.resource_request else ""
    message = _forbidden_text(attrs.api_group, resource, attrs.name, forbidden_reason(attrs))
    details: dict[str, Any] = {}
    if resource:
        details = {"group": attrs.api_group, "kind": resource}
        if attrs.name:
            details["name"] = attrs.name
    return ApiError(403, "Forbidden", message, details)
