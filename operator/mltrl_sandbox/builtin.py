"""Builtin kinds the sandbox stores: plain objects on the same CRUD/watch machinery."""

from __future__ import annotations

import base64
from typing import Any

from .auth import user_info_wire
from .meta import age
from .resources import AGE, Column, Obj, ResourceType

_EVENT_RENAMES = {
    "involvedObject": "regarding",
    "message": "note",
    "source": "deprecatedSource",
    "firstTimestamp": "deprecatedFirstTimestamp",
    "lastTimestamp": "deprecatedLastTimestamp",
    "count": "deprecatedCount",
    "reportingComponent": "reportingController",
}
_EVENT_RENAMES_BACK = {v: k for k, v in _EVENT_RENAMES.items()}


def _rename(obj: Obj, names: dict[str, str]) -> Obj:
    return {names.get(k, k): v for k, v in obj.items()}


def core_event_to_events_v1(obj: Obj) -> Obj:
    return {**_rename(obj, _EVENT_RENAMES), "apiVersion": "events.k8s.io/v1"}


def events_v1_to_core_event(obj: Obj) -> Obj:
    return {**_rename(obj, _EVENT_RENAMES_BACK), "apiVersion": "v1"}


def _count(key: str) -> Any:
    def count(obj: Obj) -> int:
        value = obj.get(key)
        return len(value) if isinstance(value, dict | list) else 0

    return count


def _secret_data(obj: Obj) -> int:
    return len(obj.get("data") or {})


def _event_last_seen(obj: Obj) -> str | None:
    return age(
        obj.get("lastTimestamp") or obj.get("eventTime") or obj["metadata"].get("creationTimestamp")
    )


def _event_object(obj: Obj) -> str:
    ref = obj.get("involvedObject") or {}
    return f"{str(ref.get('kind', '')).lower()}/{ref.get('name', '')}"


def _service_ports(obj: Obj) -> str:
    ports = (obj.get("spec") or {}).get("ports") or []
    shown = [f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in ports if isinstance(p, dict)]
    return ",".join(shown) or "<none>"


def _job_completions(obj: Obj) -> str:
    wanted = (obj.get("spec") or {}).get("completions", 1)
    done = (obj.get("status") or {}).get("succeeded", 0)
    return f"{done}/{wanted}"


_EVENT_FIELDS = {
    f"involvedObject.{k}": f".involvedObject.{k}"
    for k in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
} | {
    "reason": ".reason",
    "type": ".type",
    "source": ".source.component",
    "reportingComponent": ".reportingComponent",
}

_EVENT_COLUMNS = (
    Column("Last Seen", "string", func=_event_last_seen),
    Column("Type", "string", ".type"),
    Column("Reason", "string", ".reason"),
    Column("Object", "string", func=_event_object),
    Column("Message", "string", ".message"),
    Column("Name", "string", ".metadata.name", format="name", priority=1),
)


_WITH_GENERATION = {
    "jobs.batch",
    "customresourcedefinitions.apiextensions.k8s.io",
    "validatingwebhookconfigurations.admissionregistration.k8s.io",
    "mutatingwebhookconfigurations.admissionregistration.k8s.io",
}


def _self_subject_review(body: Obj, user: Any) -> Obj:
    """`kubectl auth whoami`: who the server takes the requester to be."""
    return {
        **body,
        "metadata": {"creationTimestamp": None},
        "status": {"userInfo": user_info_wire(user)},
    }


def _answered_by_the_authorizer(body: Obj, user: Any) -> Obj:
    """Access reviews: the server wires its RBAC authorizer in (reviews.py)."""
    raise NotImplementedError("access reviews are answered by the server's authorizer")


def builtin_types() -> list[ResourceType]:
    types = _builtin_types()
    for rt in types:
        rt.tracks_generation = rt.group_resource in _WITH_GENERATION
    return types


def _builtin_types() -> list[ResourceType]:
    return [
        ResourceType(
            "",
            "v1",
            "namespaces",
            "namespace",
            "Namespace",
            False,
            short_names=("ns",),
            status_subresource=True,
            name_rule="label",
            columns=(Column("Status", "string", ".status.phase"), AGE),
            selectable_fields={"status.phase": ".status.phase"},
        ),
        ResourceType(
            "",
            "v1",
            "events",
            "event",
            "Event",
            True,
            short_names=("ev",),
            columns=_EVENT_COLUMNS,
            name_column=False,
            selectable_fields=_EVENT_FIELDS,
            name_rule="segment",
        ),
        ResourceType(
            "events.k8s.io",
            "v1",
            "events",
            "event",
            "Event",
            True,
            short_names=("ev",),
            storage="events",
            name_rule="segment",
            to_view=core_event_to_events_v1,
            from_view=events_v1_to_core_event,
            columns=_EVENT_COLUMNS,
            name_column=False,
        ),
        ResourceType(
            "",
            "v1",
            "configmaps",
            "configmap",
            "ConfigMap",
            True,
            short_names=("cm",),
            columns=(Column("Data", "integer", func=_count("data")), AGE),
        ),
        ResourceType(
            "",
            "v1",
            "secrets",
            "secret",
            "Secret",
            True,
            columns=(
                Column("Type", "string", ".type"),
                Column("Data", "integer", func=_secret_data),
                AGE,
            ),
            selectable_fields={"type": ".type"},
        ),
        ResourceType(
            "",
            "v1",
            "serviceaccounts",
            "serviceaccount",
            "ServiceAccount",
            True,
            short_names=("sa",),
        ),
        ResourceType(
            "",
            "v1",
            "services",
            "service",
            "Service",
            True,
            short_names=("svc",),
            categories=("all",),
            status_subresource=True,
            name_rule="label",
            columns=(
                Column("Type", "string", ".spec.type"),
                Column("Cluster-IP", "string", ".spec.clusterIP"),
                Column("Port(s)", "string", func=_service_ports),
                AGE,
            ),
        ),
        ResourceType(
            "coordination.k8s.io",
            "v1",
            "leases",
            "lease",
            "Lease",
            True,
            columns=(Column("Holder", "string", ".spec.holderIdentity"), AGE),
        ),
        ResourceType(
            "batch",
            "v1",
            "jobs",
            "job",
            "Job",
            True,
            categories=("all",),
            status_subresource=True,
            columns=(Column("Completions", "string", func=_job_completions), AGE),
        ),
        ResourceType(
            "admissionregistration.k8s.io",
            "v1",
            "validatingwebhookconfigurations",
            "validatingwebhookconfiguration",
            "ValidatingWebhookConfiguration",
            False,
            columns=(Column("Webhooks", "integer", func=_count("webhooks")), AGE),
        ),
        ResourceType(
            "admissionregistration.k8s.io",
            "v1",
            "mutatingwebhookconfigurations",
            "mutatingwebhookconfiguration",
            "MutatingWebhookConfiguration",
            False,
            columns=(Column("Webhooks", "integer", func=_count("webhooks")), AGE),
        ),
        ResourceType(
            "authentication.k8s.io",
            "v1",
            "selfsubjectreviews",
            "selfsubjectreview",
            "SelfSubjectReview",
            False,
            virtual=_self_subject_review,
        ),
        ResourceType(
            "authorization.k8s.io",
            "v1",
            "selfsubjectaccessreviews",
            "selfsubjectaccessreview",
            "SelfSubjectAccessReview",
            False,
            virtual=_answered_by_the_authorizer,
        ),
        *_rbac_types(),
        ResourceType(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "customresourcedefinition",
            "CustomResourceDefinition",
            False,
            short_names=("crd", "crds"),
            status_subresource=True,
            columns=(Column("Created At", "string", ".metadata.creationTimestamp", format="date"),),
        ),
    ]


def _role_ref(obj: Obj) -> str:
    ref = obj.get("roleRef") or {}
    return f"{ref.get('kind', '')}/{ref.get('name', '')}"


def _subjects(kind: str) -> Any:
    def names(obj: Obj) -> str:
        found = []
        for subject in obj.get("subjects") or []:
            if isinstance(subject, dict) and subject.get("kind") == kind:
                name = subject.get("name", "")
                found.append(f"{subject.get('namespace', '')}/{name}"
                             if kind == "ServiceAccount" else name)
        return ", ".join(found)

    return names


_BINDING_COLUMNS = (
    Column("Role", "string", func=_role_ref),
    AGE,
    Column("Users", "string", func=_subjects("User"), priority=1),
    Column("Groups", "string", func=_subjects("Group"), priority=1),
    Column("ServiceAccounts", "string", func=_subjects("ServiceAccount"), priority=1),
)


def _rbac_types() -> list[ResourceType]:
    """rbac.authorization.k8s.io/v1 and the authorization.k8s.io/v1 reviews (issue 14;
    the RBAC authorizer reads these kinds from the store by group and plural)."""
    rbac = "rbac.authorization.k8s.io"
    created = (Column("Created At", "string", ".metadata.creationTimestamp", format="date"),)
    return [
        ResourceType(rbac, "v1", "roles", "role", "Role", True, name_rule="segment",
                     columns=created),
        ResourceType(rbac, "v1", "clusterroles", "clusterrole", "ClusterRole", False,
                     name_rule="segment", columns=created),
        ResourceType(rbac, "v1", "rolebindings", "rolebinding", "RoleBinding", True,
                     name_rule="segment", columns=_BINDING_COLUMNS),
        ResourceType(rbac, "v1", "clusterrolebindings", "clusterrolebinding",
                     "ClusterRoleBinding", False, name_rule="segment",
                     columns=_BINDING_COLUMNS),
        ResourceType("authorization.k8s.io", "v1", "selfsubjectrulesreviews",
                     "selfsubjectrulesreview", "SelfSubjectRulesReview", False,
                     virtual=_answered_by_the_authorizer),
        ResourceType("authorization.k8s.io", "v1", "localsubjectaccessreviews",
                     "localsubjectaccessreview", "LocalSubjectAccessReview", True,
                     virtual=_answered_by_the_authorizer),
        ResourceType("authorization.k8s.io", "v1", "subjectaccessreviews",
                     "subjectaccessreview", "SubjectAccessReview", False,
                     virtual=_answered_by_the_authorizer),
    ]


def prepare_builtin(rt: ResourceType, obj: Obj, old: Obj | None, cluster_ip: str) -> None:
    """Server-side fields the real controllers/strategies would fill in (in place)."""
    if rt.group_resource == "namespaces":
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        if old is None:
            obj["status"] = {"phase": "Active"}
    elif rt.group_resource == "secrets":
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None)
        if isinstance(string_data, dict):
            data = obj.setdefault("data", {})
            for key, value in string_data.items():
                data[key] = base64.b64encode(str(value).encode()).decode()
    elif rt.group_resource == "services":
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        if old is not None and (old.get("spec") or {}).get("clusterIP"):
            spec["clusterIP"] = old["spec"]["clusterIP"]
        else:
            spec.setdefault("clusterIP", cluster_ip)
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
