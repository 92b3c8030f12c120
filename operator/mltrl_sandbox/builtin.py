"""The built-in kinds the sandbox serves: plain objects on the same CRUD/watch machinery.

What each kind is called and where it lives is listed here (as kube-apiserver's
discovery has it); its schema is Kubernetes' published one (`kubeschemas`), its
defaults and Go rules are in `strategies`.
"""

from __future__ import annotations

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
    last = age(
        obj.get("lastTimestamp") or obj.get("eventTime") or obj["metadata"].get("creationTimestamp")
    )
    # kube-apiserver's printer: a series shows its count and since when ("5m (x2 over 8d)").
    count = obj.get("count")
    if isinstance(count, int) and count > 1:
        first = age(obj.get("firstTimestamp") or obj["metadata"].get("creationTimestamp"))
        return f"{last} (x{count} over {first})"
    return last


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
    "cronjobs.batch",
    "deployments.apps",
    "statefulsets.apps",
    "daemonsets.apps",
    "replicasets.apps",
    "poddisruptionbudgets.policy",
    "ingresses.networking.k8s.io",
    "networkpolicies.networking.k8s.io",
    "validatingadmissionpolicies.admissionregistration.k8s.io",
    "validatingadmissionpolicybindings.admissionregistration.k8s.io",
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


def _job_duration(obj: Obj) -> str:
    status = obj.get("status") or {}
    return "" if not status.get("startTime") else age(status["startTime"]) or ""


def _ready(obj: Obj) -> str:
    status = obj.get("status") or {}
    wanted = (obj.get("spec") or {}).get("replicas", 1)
    return f"{status.get('readyReplicas', 0)}/{wanted}"


def _pod_ready(obj: Obj) -> str:
    containers = ((obj.get("spec") or {}).get("containers")) or []
    statuses = (obj.get("status") or {}).get("containerStatuses") or []
    return f"{sum(1 for c in statuses if c.get('ready'))}/{len(containers)}"


_REPLICAS_SCALE = {
    "specReplicasPath": ".spec.replicas",
    "statusReplicasPath": ".status.replicas",
    "labelSelectorPath": ".status.selector",
}


def _kind(
    group: str,
    plural: str,
    kind: str,
    namespaced: bool = True,
    *,
    singular: str = "",
    **extra: Any,
) -> ResourceType:
    """A built-in kind; its schema comes from Kubernetes' published ones (`kubeschemas`)."""
    return ResourceType(group, "v1", plural, singular or kind.lower(), kind, namespaced, **extra)


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
_CREATED_AT = (Column("Created At", "string", ".metadata.creationTimestamp", format="date"),)


def builtin_types() -> list[ResourceType]:
    types = _builtin_types()
    for rt in types:
        rt.tracks_generation = rt.group_resource in _WITH_GENERATION
    return types


def _builtin_types() -> list[ResourceType]:
    """What the sandbox serves besides CRDs: the kinds charts, kubectl and the operator use.

    Names, scopes, short names and categories are those of kube-apiserver's discovery;
    the schemas (validation, `kubectl explain`) are Kubernetes' published ones.
    """
    workload = ("all",)
    return [
        _kind(
            "",
            "namespaces",
            "Namespace",
            False,
            short_names=("ns",),
            status_subresource=True,
            name_rule="label",
            columns=(Column("Status", "string", ".status.phase"), AGE),
            selectable_fields={"status.phase": ".status.phase"},
        ),
        _kind(
            "",
            "events",
            "Event",
            short_names=("ev",),
            columns=_EVENT_COLUMNS,
            name_column=False,
            selectable_fields=_EVENT_FIELDS,
            name_rule="segment",
        ),
        _kind(
            "events.k8s.io",
            "events",
            "Event",
            short_names=("ev",),
            storage="events",
            name_rule="segment",
            to_view=core_event_to_events_v1,
            from_view=events_v1_to_core_event,
            columns=_EVENT_COLUMNS,
            name_column=False,
            schema_gvk=("", "v1", "Event"),
        ),
        _kind(
            "",
            "configmaps",
            "ConfigMap",
            short_names=("cm",),
            columns=(Column("Data", "integer", func=_count("data")), AGE),
        ),
        _kind(
            "",
            "secrets",
            "Secret",
            columns=(
                Column("Type", "string", ".type"),
                Column("Data", "integer", func=_secret_data),
                AGE,
            ),
            selectable_fields={"type": ".type"},
        ),
        _kind("", "serviceaccounts", "ServiceAccount", short_names=("sa",)),
        _kind(
            "",
            "services",
            "Service",
            short_names=("svc",),
            categories=workload,
            status_subresource=True,
            name_rule="label",
            columns=(
                Column("Type", "string", ".spec.type"),
                Column("Cluster-IP", "string", ".spec.clusterIP"),
                Column("Port(s)", "string", func=_service_ports),
                AGE,
            ),
        ),
        _kind(
            "",
            "pods",
            "Pod",
            short_names=("po",),
            categories=workload,
            status_subresource=True,
            columns=(
                Column("Ready", "string", func=_pod_ready),
                Column("Status", "string", ".status.phase"),
                AGE,
            ),
            selectable_fields={"spec.nodeName": ".spec.nodeName", "status.phase": ".status.phase"},
        ),
        _kind("", "endpoints", "Endpoints", short_names=("ep",)),
        _kind(
            "",
            "persistentvolumeclaims",
            "PersistentVolumeClaim",
            short_names=("pvc",),
            status_subresource=True,
        ),
        _kind("", "limitranges", "LimitRange", short_names=("limits",)),
        _kind(
            "", "resourcequotas", "ResourceQuota", short_names=("quota",), status_subresource=True
        ),
        _kind(
            "apps",
            "deployments",
            "Deployment",
            short_names=("deploy",),
            categories=workload,
            status_subresource=True,
            scale=_REPLICAS_SCALE,
            columns=(
                Column("Ready", "string", func=_ready),
                Column("Up-to-date", "integer", ".status.updatedReplicas"),
                Column("Available", "integer", ".status.availableReplicas"),
                AGE,
            ),
        ),
        _kind(
            "apps",
            "statefulsets",
            "StatefulSet",
            short_names=("sts",),
            categories=workload,
            status_subresource=True,
            scale=_REPLICAS_SCALE,
        ),
        _kind(
            "apps",
            "daemonsets",
            "DaemonSet",
            short_names=("ds",),
            categories=workload,
            status_subresource=True,
        ),
        _kind(
            "apps",
            "replicasets",
            "ReplicaSet",
            short_names=("rs",),
            categories=workload,
            status_subresource=True,
            scale=_REPLICAS_SCALE,
        ),
        _kind("apps", "controllerrevisions", "ControllerRevision"),
        _kind(
            "batch",
            "jobs",
            "Job",
            categories=workload,
            status_subresource=True,
            columns=(
                Column("Completions", "string", func=_job_completions),
                Column("Duration", "string", func=_job_duration),
                AGE,
            ),
        ),
        _kind(
            "batch",
            "cronjobs",
            "CronJob",
            short_names=("cj",),
            categories=workload,
            status_subresource=True,
            columns=(Column("Schedule", "string", ".spec.schedule"), AGE),
        ),
        _kind(
            "policy",
            "poddisruptionbudgets",
            "PodDisruptionBudget",
            short_names=("pdb",),
            status_subresource=True,
        ),
        # RBAC names are path segments (system:aggregate-to-view); the authorizer reads
        # these kinds from the store by storage `plural.group` (rbac.py).
        _kind(
            "rbac.authorization.k8s.io",
            "roles",
            "Role",
            name_rule="segment",
            columns=_CREATED_AT,
        ),
        _kind(
            "rbac.authorization.k8s.io",
            "clusterroles",
            "ClusterRole",
            False,
            name_rule="segment",
            columns=_CREATED_AT,
        ),
        _kind(
            "rbac.authorization.k8s.io",
            "rolebindings",
            "RoleBinding",
            name_rule="segment",
            columns=_BINDING_COLUMNS,
        ),
        _kind(
            "rbac.authorization.k8s.io",
            "clusterrolebindings",
            "ClusterRoleBinding",
            False,
            name_rule="segment",
            columns=_BINDING_COLUMNS,
        ),
        _kind(
            "networking.k8s.io",
            "networkpolicies",
            "NetworkPolicy",
            short_names=("netpol",),
            singular="networkpolicy",
        ),
        _kind(
            "networking.k8s.io",
            "ingresses",
            "Ingress",
            short_names=("ing",),
            singular="ingress",
            status_subresource=True,
        ),
        _kind(
            "scheduling.k8s.io",
            "priorityclasses",
            "PriorityClass",
            False,
            short_names=("pc",),
            singular="priorityclass",
        ),
        _kind(
            "coordination.k8s.io",
            "leases",
            "Lease",
            columns=(Column("Holder", "string", ".spec.holderIdentity"), AGE),
        ),
        _kind(
            "admissionregistration.k8s.io",
            "validatingwebhookconfigurations",
            "ValidatingWebhookConfiguration",
            False,
            columns=(Column("Webhooks", "integer", func=_count("webhooks")), AGE),
        ),
        _kind(
            "admissionregistration.k8s.io",
            "mutatingwebhookconfigurations",
            "MutatingWebhookConfiguration",
            False,
            columns=(Column("Webhooks", "integer", func=_count("webhooks")), AGE),
        ),
        _kind(
            "admissionregistration.k8s.io",
            "validatingadmissionpolicies",
            "ValidatingAdmissionPolicy",
            False,
            singular="validatingadmissionpolicy",
            status_subresource=True,
        ),
        _kind(
            "admissionregistration.k8s.io",
            "validatingadmissionpolicybindings",
            "ValidatingAdmissionPolicyBinding",
            False,
        ),
        _kind(
            "authentication.k8s.io",
            "selfsubjectreviews",
            "SelfSubjectReview",
            False,
            virtual=_self_subject_review,
        ),
        _kind(
            "authorization.k8s.io",
            "selfsubjectaccessreviews",
            "SelfSubjectAccessReview",
            False,
            virtual=_answered_by_the_authorizer,
        ),
        _kind(
            "authorization.k8s.io",
            "selfsubjectrulesreviews",
            "SelfSubjectRulesReview",
            False,
            virtual=_answered_by_the_authorizer,
        ),
        _kind(
            "authorization.k8s.io",
            "subjectaccessreviews",
            "SubjectAccessReview",
            False,
            virtual=_answered_by_the_authorizer,
        ),
        _kind(
            "authorization.k8s.io",
            "localsubjectaccessreviews",
            "LocalSubjectAccessReview",
            virtual=_answered_by_the_authorizer,
        ),
        _kind(
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            False,
            short_names=("crd", "crds"),
            status_subresource=True,
            columns=_CREATED_AT,
        ),
    ]

