"""What kube-apiserver's per-kind strategies decide that the published schemas do not say.

Defaulting (what `kubectl get -o yaml`, Helm's three-way merge and the Job validation
see) and the Go validation rules clients run into: a Job's pods may not restart
Always, immutable ConfigMaps and Secrets, a Secret's type, an Event's involvedObject
namespace, a Deployment's selector and template labels, a binding's roleRef.

No controller runs: a Deployment creates no ReplicaSet or Pod, a Job never starts.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from .errors import FieldError, invalid, required
from .resources import Obj, ResourceType

# kube-apiserver labels every namespace with its own name (Namespace defaulting and the
# namespace strategy's Canonicalize), on create and on every update, so that
# namespaceSelectors can pick namespaces by name; a client cannot change or remove it.
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def _dict(parent: Obj, key: str) -> Obj:
    value = parent.get(key)
    if not isinstance(value, dict):
        value = parent[key] = {}
    return value


def _container_defaults(container: Any) -> None:
    if not isinstance(container, dict):
        return
    image = str(container.get("image") or "")
    tag = image.rsplit("/", 1)[-1]
    latest = "@" not in tag and (":" not in tag or tag.endswith(":latest"))
    container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    container.setdefault("resources", {})
    for port in container.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")


def pod_spec_defaults(spec: Any) -> None:
    """SetDefaults_PodSpec and SetDefaults_Container, the fields clients read back."""
    if not isinstance(spec, dict):
        return
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})
    for key in ("initContainers", "containers"):
        for container in spec.get(key) or []:
            _container_defaults(container)


def _template_spec(spec: Obj) -> Any:
    template = spec.get("template")
    return template.get("spec") if isinstance(template, dict) else None


def _deployment_defaults(spec: Obj) -> None:
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    strategy = _dict(spec, "strategy")
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = _dict(strategy, "rollingUpdate")
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")


def _job_defaults(spec: Obj) -> None:
    if "completions" not in spec and "parallelism" not in spec:
        spec["completions"] = 1  # neither set: one pod to completion (else a work queue)
    spec.setdefault("parallelism", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
    pod_spec_defaults(_template_spec(spec))


def _service_defaults(obj: Obj, old: Obj | None, cluster_ip: str) -> None:
    spec = _dict(obj, "spec")
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    old_ip = ((old or {}).get("spec") or {}).get("clusterIP")
    if old_ip and "clusterIP" not in spec:
        spec["clusterIP"] = old_ip  # an update that leaves it out keeps the allocated one
    elif cluster_ip:
        spec.setdefault("clusterIP", cluster_ip)
    if spec.get("clusterIP"):
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
    if spec["type"] != "ExternalName":
        spec.setdefault("internalTrafficPolicy", "Cluster")
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            if "port" in port:
                port.setdefault("targetPort", port["port"])


def prepare(rt: ResourceType, obj: Obj, old: Obj | None, cluster_ip: str) -> None:
    """Server-side defaults of built-in kinds (in place), before validation."""
    resource = rt.group_resource
    spec = obj.get("spec")
    if resource == "namespaces":
        name = obj["metadata"].get("name")
        if isinstance(name, str) and name:
            _dict(obj["metadata"], "labels")[NAMESPACE_NAME_LABEL] = name
        _dict(obj, "spec").setdefault("finalizers", ["kubernetes"])
        if old is None:
            obj["status"] = {"phase": "Active"}
    elif resource == "secrets":
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None)
        if isinstance(string_data, dict):
            data = _dict(obj, "data")
            for key, value in string_data.items():
                data[key] = base64.b64encode(str(value).encode()).decode()
    elif resource == "services":
        _service_defaults(obj, old, cluster_ip)
    elif resource == "pods":
        pod_spec_defaults(spec)
    elif not isinstance(spec, dict):
        return
    elif resource == "deployments.apps":
        _deployment_defaults(spec)
        pod_spec_defaults(_template_spec(spec))
    elif resource in ("statefulsets.apps", "replicasets.apps", "daemonsets.apps"):
        if resource != "daemonsets.apps":
            spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        pod_spec_defaults(_template_spec(spec))
    elif resource == "jobs.batch":
        _job_defaults(spec)
    elif resource == "cronjobs.batch":
        spec.setdefault("concurrencyPolicy", "Allow")
        spec.setdefault("suspend", False)
        spec.setdefault("successfulJobsHistoryLimit", 3)
        spec.setdefault("failedJobsHistoryLimit", 1)
        job_template = spec.get("jobTemplate")
        if isinstance(job_template, dict) and isinstance(job_template.get("spec"), dict):
            _job_defaults(job_template["spec"])


def _immutable(path: str, value: Any) -> FieldError:
    return invalid(path, value, "field is immutable")


def _restart_policy(spec: Any, path: str) -> list[FieldError]:
    pod = _template_spec(spec) if isinstance(spec, dict) else None
    if not isinstance(pod, dict):
        return []
    policy = pod.get("restartPolicy")
    if policy in ("OnFailure", "Never"):
        return []
    return [
        FieldError(
            "NotSupported",
            f"{path}.template.spec.restartPolicy",
            'supported values: "OnFailure", "Never"',
            policy,
        )
    ]


def _selector_matches_template(spec: Any) -> list[FieldError]:
    if not isinstance(spec, dict):
        return []
    selector = spec.get("selector")
    if not isinstance(selector, dict):
        return [required("spec.selector")]
    template = spec.get("template")
    labels = ((template or {}).get("metadata") or {}).get("labels") or {}
    wanted = selector.get("matchLabels") or {}
    if not wanted and not selector.get("matchExpressions"):
        return [invalid("spec.selector", selector, "empty selector is invalid for deployment")]
    if any(labels.get(key) != value for key, value in wanted.items()):
        return [
            invalid(
                "spec.template.metadata.labels",
                labels,
                "`selector` does not match template `labels`",
            )
        ]
    return []


MAX_DATA_BYTES = 1024 * 1024  # a ConfigMap's or Secret's data, as kube-apiserver checks


_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_CONFIG_KEY_RULE = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' "
    "(e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
    "'[-._a-zA-Z0-9]+')"
)
# what each Secret type must carry in its data
_SECRET_KEYS = {
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/basic-auth": (),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
}


def _data_errors(obj: Obj, secret: bool) -> list[FieldError]:
    """Keys, total size and (for Secrets) the keys their type requires."""
    problems: list[FieldError] = []
    total = 0
    for key in ("data", "binaryData"):
        for name, value in (obj.get(key) or {}).items():
            total += len(name) + len(str(value))
            if not _CONFIG_KEY.match(name) or name in (".", ".."):
                problems.append(invalid(f"{key}[{name}]", name, _CONFIG_KEY_RULE))
    if total > MAX_DATA_BYTES:
        problems.append(
            FieldError("TooLong", "data", f"may not be more than {MAX_DATA_BYTES} bytes")
        )
    if secret:
        data = obj.get("data") or {}
        for needed in _SECRET_KEYS.get(str(obj.get("type")), ()):
            if needed not in data:
                problems.append(required(f"data[{needed}]"))
    return problems


_POD_UPDATE = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
    "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
    "(allow it to be set to 1 if it was previously negative)"
)
_STATEFULSET_UPDATE = (
    "updates to statefulset spec for fields other than 'replicas', 'ordinals', "
    "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and "
    "'minReadySeconds' are forbidden"
)


def _pod_spec_frozen(spec: Any) -> Any:
    """A pod spec without what an update may change."""
    frozen = dict(spec) if isinstance(spec, dict) else {}
    for key in ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds"):
        frozen.pop(key, None)
    for key in ("containers", "initContainers"):
        frozen[key] = [
            {k: v for k, v in c.items() if k != "image"} if isinstance(c, dict) else c
            for c in frozen.get(key) or []
        ]
    return frozen


def _update_errors(rt: ResourceType, obj: Obj, old: Obj) -> list[FieldError]:
    resource = rt.group_resource
    problems: list[FieldError] = []
    if resource == "pods" and _pod_spec_frozen(obj.get("spec")) != _pod_spec_frozen(
        old.get("spec")
    ):
        problems.append(FieldError("Forbidden", "spec", _POD_UPDATE))
    if resource == "statefulsets.apps":
        mutable = ("replicas", "ordinals", "template", "updateStrategy",
                   "persistentVolumeClaimRetentionPolicy", "minReadySeconds")  # fmt: skip
        before = {k: v for k, v in (old.get("spec") or {}).items() if k not in mutable}
        after = {k: v for k, v in (obj.get("spec") or {}).items() if k not in mutable}
        if before != after:
            problems.append(FieldError("Forbidden", "spec", _STATEFULSET_UPDATE))
    if resource in ("configmaps", "secrets") and old.get("immutable") is True:
        if obj.get("immutable") is not True:
            problems.append(
                FieldError("Forbidden", "immutable", "field is immutable when `immutable` is set")
            )
        for key in ("data", "binaryData"):
            if (obj.get(key) or {}) != (old.get(key) or {}):
                problems.append(
                    FieldError("Forbidden", key, "field is immutable when `immutable` is set")
                )
    if resource == "secrets" and obj.get("type") != old.get("type"):
        problems.append(_immutable("type", obj.get("type")))
    spec, old_spec = obj.get("spec") or {}, old.get("spec") or {}
    selector_fixed = resource in ("deployments.apps", "statefulsets.apps", "daemonsets.apps")
    if selector_fixed and spec.get("selector") != old_spec.get("selector"):
        problems.append(_immutable("spec.selector", spec.get("selector")))
    if resource == "jobs.batch" and spec.get("template") != old_spec.get("template"):
        problems.append(_immutable("spec.template", spec.get("template")))
    if resource.startswith(("rolebindings.", "clusterrolebindings.")) and obj.get(
        "roleRef"
    ) != old.get("roleRef"):
        problems.append(invalid("roleRef", obj.get("roleRef"), "cannot change roleRef"))
    old_ip = old_spec.get("clusterIP") if resource == "services" else None
    if old_ip not in (None, "", "None") and spec.get("clusterIP") != old_ip:
        problems.append(_immutable("spec.clusterIP", spec.get("clusterIP")))
    return problems


def validation_errors(rt: ResourceType, obj: Obj, old: Obj | None) -> list[FieldError]:
    """The Go validation of built-in kinds that clients run into (after the schema's)."""
    resource = rt.group_resource
    problems: list[FieldError] = []
    spec = obj.get("spec")
    if resource == "jobs.batch":
        problems += _restart_policy(spec, "spec")
    elif resource == "cronjobs.batch" and isinstance(spec, dict):
        job_spec = (spec.get("jobTemplate") or {}).get("spec")
        problems += _restart_policy(job_spec, "spec.jobTemplate.spec")
    elif resource == "deployments.apps":
        problems += _selector_matches_template(spec)
    elif resource == "events":
        regarding = obj.get("involvedObject") or {}
        namespace = obj["metadata"].get("namespace")
        if regarding.get("namespace") and regarding["namespace"] != namespace:
            problems.append(
                invalid(
                    "involvedObject.namespace",
                    regarding["namespace"],
                    "does not match event.namespace",
                )
            )
    elif resource in ("configmaps", "secrets"):
        problems += _data_errors(obj, secret=resource == "secrets")
    elif resource == "pods" and isinstance(spec, dict) and not spec.get("containers"):
        problems.append(required("spec.containers"))
    if old is not None:
        problems += _update_errors(rt, obj, old)
    return problems
