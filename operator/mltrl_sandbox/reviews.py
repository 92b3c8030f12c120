"""authorization.k8s.io/v1's reviews, answered by the RBAC authorizer: `kubectl auth
can-i` (SelfSubjectAccessReview), `kubectl auth can-i --list` (SelfSubjectRulesReview),
and SubjectAccessReview (for someone else: the requester needs `create` on it, which the
auth middleware checks like any other request)."""

from __future__ import annotations

from typing import Any

from .errors import ApiError, invalid, invalid_object
from .rbac import Attributes, Authorizer
from .users import UserInfo

Obj = dict[str, Any]
GROUP = "authorization.k8s.io"


def _attributes(spec: Obj, user: UserInfo, kind: str) -> Attributes:
    resource = spec.get("resourceAttributes")
    non_resource = spec.get("nonResourceAttributes")
    if isinstance(resource, dict) and not non_resource:
        return Attributes(
            user, str(resource.get("verb") or ""), True, str(resource.get("group") or ""),
            str(resource.get("version") or ""), str(resource.get("resource") or ""),
            str(resource.get("subresource") or ""), str(resource.get("namespace") or ""),
            str(resource.get("name") or ""),
        )
    if isinstance(non_resource, dict) and not resource:
        return Attributes(user, str(non_resource.get("verb") or ""), False,
                          path=str(non_resource.get("path") or ""))
    raise invalid_object(GROUP, kind, "", [invalid(
        "spec.resourceAttributes", None,
        "exactly one of nonResourceAttributes or resourceAttributes must be specified",
    )])


def _spec(body: Obj) -> Obj:
    spec = body.get("spec")
    return spec if isinstance(spec, dict) else {}


def _answer(body: Obj, status: Obj) -> Obj:
    return {**body, "metadata": {"creationTimestamp": None}, "status": status}


class Reviews:
    def __init__(self, authorizer: Authorizer) -> None:
        self.authorizer = authorizer

    def _decide(self, body: Obj, user: UserInfo, kind: str) -> Obj:
        spec = _spec(body)
        decision = self.authorizer.authorize(_attributes(spec, user, kind))
        status: Obj = {"allowed": decision.allowed}
        if decision.reason:
            status["reason"] = decision.reason
        return _answer(body, status)

    def self_subject_access_review(self, body: Obj, user: UserInfo) -> Obj:
        return self._decide(body, user, "SelfSubjectAccessReview")

    def subject_access_review(self, body: Obj, requester: UserInfo,
                              kind: str = "SubjectAccessReview") -> Obj:
        spec = _spec(body)
        if not spec.get("user") and not spec.get("groups"):
            raise invalid_object(GROUP, kind, "", [invalid(
                "spec.user", "", "at least one of user or group must be specified")])
        extra = spec.get("extra") or {}
        subject = UserInfo(
            str(spec.get("user") or ""), tuple(spec.get("groups") or ()),
            str(spec.get("uid") or ""),
            {str(k): tuple(v) for k, v in extra.items() if isinstance(v, list)},
        )
        return self._decide(body, subject, kind)

    def local_subject_access_review(self, body: Obj, requester: UserInfo) -> Obj:
        """A SubjectAccessReview within the namespace it is created in (namespace admins
        may create them)."""
        namespace = (body.get("metadata") or {}).get("namespace", "")
        attributes = _spec(body).get("resourceAttributes")
        if isinstance(attributes, dict) and attributes.get("namespace") not in (
            None, "", namespace
        ):
            raise invalid_object(GROUP, "LocalSubjectAccessReview", "", [invalid(
                "spec.resourceAttributes.namespace", attributes.get("namespace"),
                "must match metadata.namespace")])
        if isinstance(attributes, dict):
            body = {**body, "spec": {**_spec(body), "resourceAttributes": {
                **attributes, "namespace": namespace}}}
        return self.subject_access_review(body, requester, "LocalSubjectAccessReview")

    def self_subject_rules_review(self, body: Obj, user: UserInfo) -> Obj:
        spec = _spec(body)
        namespace = str(spec.get("namespace") or "")
        if not namespace:
            raise ApiError(400, "BadRequest", "no namespace on request")
        resource_rules: list[Obj] = []
        non_resource_rules: list[Obj] = []
        if self.authorizer.superuser_groups & set(user.groups):
            # what cluster-admin holds; a real server lists the masters' binding the same way
            resource_rules.append({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]})
            non_resource_rules.append({"verbs": ["*"], "nonResourceURLs": ["*"]})
        for grant in self.authorizer.grants(user, namespace):
            rule = grant.rule
            if rule.get("nonResourceURLs"):
                non_resource_rules.append(
                    {"verbs": rule.get("verbs") or [], "nonResourceURLs": rule["nonResourceURLs"]}
                )
            else:
                entry = {key: rule[key] for key in
                         ("verbs", "apiGroups", "resources", "resourceNames") if rule.get(key)}
                resource_rules.append(entry)
        return _answer(body, {"resourceRules": resource_rules,
                              "nonResourceRules": non_resource_rules, "incomplete": False})
