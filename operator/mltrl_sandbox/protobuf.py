"""Decoding the protobuf request bodies kubectl sends for a few builtin kinds.

kubectl's typed clients (`kubectl create namespace|configmap|secret|serviceaccount|
service|deployment|job|cronjob|role|clusterrole|rolebinding|clusterrolebinding`,
`kubectl run`) send
`application/vnd.kubernetes.protobuf` bodies and cannot be told to use JSON.  This
decodes the Kubernetes envelope (magic `k8s\\0` + runtime.Unknown) and the fields of
those kinds (field numbers from k8s.io/api's generated.proto) into the JSON form.
Other kinds are refused with 415 naming the kind.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

MAGIC = b"k8s\x00"
PROTOBUF = "application/vnd.kubernetes.protobuf"


class ProtobufError(ValueError):
    pass


# A message layout: field number -> (json name, kind, nested layout or None).
# kinds: str, bytes, int, bool, msg, time, intstr, map_str, map_bytes;
# a leading "*" marks a repeated field.
Layout = dict[int, tuple[str, str, Any]]

OWNER_REFERENCE: Layout = {
    1: ("kind", "str", None),
    3: ("name", "str", None),
    4: ("uid", "str", None),
    5: ("apiVersion", "str", None),
    6: ("controller", "bool", None),
    7: ("blockOwnerDeletion", "bool", None),
}
OBJECT_META: Layout = {
    1: ("name", "str", None),
    2: ("generateName", "str", None),
    3: ("namespace", "str", None),
    5: ("uid", "str", None),
    6: ("resourceVersion", "str", None),
    7: ("generation", "int", None),
    8: ("creationTimestamp", "time", None),
    9: ("deletionTimestamp", "time", None),
    10: ("deletionGracePeriodSeconds", "int", None),
    11: ("labels", "map_str", None),
    12: ("annotations", "map_str", None),
    13: ("ownerReferences", "*msg", OWNER_REFERENCE),
    14: ("finalizers", "*str", None),
}
OBJECT_REFERENCE: Layout = {
    1: ("kind", "str", None),
    2: ("namespace", "str", None),
    3: ("name", "str", None),
    4: ("uid", "str", None),
    5: ("apiVersion", "str", None),
    6: ("resourceVersion", "str", None),
    7: ("fieldPath", "str", None),
}
LOCAL_REFERENCE: Layout = {1: ("name", "str", None)}
SERVICE_PORT: Layout = {
    1: ("name", "str", None),
    2: ("protocol", "str", None),
    3: ("port", "int", None),
    4: ("targetPort", "intstr", None),
    5: ("nodePort", "int", None),
    6: ("appProtocol", "str", None),
}
SERVICE_SPEC: Layout = {
    1: ("ports", "*msg", SERVICE_PORT),
    2: ("selector", "map_str", None),
    3: ("clusterIP", "str", None),
    4: ("type", "str", None),
    5: ("externalIPs", "*str", None),
    7: ("sessionAffinity", "str", None),
    11: ("externalName", "str", None),
    18: ("clusterIPs", "*str", None),
}

RESOURCE_ATTRIBUTES: Layout = {
    1: ("namespace", "str", None),
    2: ("verb", "str", None),
    3: ("group", "str", None),
    4: ("version", "str", None),
    5: ("resource", "str", None),
    6: ("subresource", "str", None),
    7: ("name", "str", None),
}
ACCESS_REVIEW_SPEC: Layout = {
    1: ("resourceAttributes", "msg", RESOURCE_ATTRIBUTES),
    2: ("nonResourceAttributes", "msg", {1: ("path", "str", None), 2: ("verb", "str", None)}),
}
# SubjectAccessReview and LocalSubjectAccessReview share SubjectAccessReviewSpec
SUBJECT_ACCESS_REVIEW: Layout = {
    1: ("metadata", "msg", OBJECT_META),
    2: (
        "spec",
        "msg",
        {
            **ACCESS_REVIEW_SPEC,
            3: ("user", "str", None),
            4: ("groups", "*str", None),
            6: ("uid", "str", None),
        },
    ),
}

# rbac.authorization.k8s.io/v1 (`kubectl create role|clusterrole|rolebinding|...`)
POLICY_RULE: Layout = {
    1: ("verbs", "*str", None),
    2: ("apiGroups", "*str", None),
    3: ("resources", "*str", None),
    4: ("resourceNames", "*str", None),
    5: ("nonResourceURLs", "*str", None),
}
LABEL_SELECTOR: Layout = {
    1: ("matchLabels", "map_str", None),
    2: (
        "matchExpressions",
        "*msg",
        {1: ("key", "str", None), 2: ("operator", "str", None), 3: ("values", "*str", None)},
    ),
}
SUBJECT: Layout = {
    1: ("kind", "str", None),
    2: ("apiGroup", "str", None),
    3: ("name", "str", None),
    4: ("namespace", "str", None),
}
ROLE_REF: Layout = {
    1: ("apiGroup", "str", None),
    2: ("kind", "str", None),
    3: ("name", "str", None),
}
ROLE: Layout = {1: ("metadata", "msg", OBJECT_META), 2: ("rules", "*msg", POLICY_RULE)}
BINDING: Layout = {
    1: ("metadata", "msg", OBJECT_META),
    2: ("subjects", "*msg", SUBJECT),
    3: ("roleRef", "msg", ROLE_REF),
}

# workloads (`kubectl create deployment|job|cronjob`, `kubectl run`): the fields those
# commands set, from k8s.io/api/{core,apps,batch}/v1/generated.proto
CONTAINER_PORT: Layout = {
    1: ("name", "str", None),
    2: ("hostPort", "int", None),
    3: ("containerPort", "int", None),
    4: ("protocol", "str", None),
    5: ("hostIP", "str", None),
}
ENV_VAR: Layout = {1: ("name", "str", None), 2: ("value", "str", None)}
QUANTITY: Layout = {1: ("string", "str", None)}
RESOURCES: Layout = {1: ("limits", "map_quantity", None), 2: ("requests", "map_quantity", None)}
CONTAINER: Layout = {
    1: ("name", "str", None),
    2: ("image", "str", None),
    3: ("command", "*str", None),
    4: ("args", "*str", None),
    5: ("workingDir", "str", None),
    6: ("ports", "*msg", CONTAINER_PORT),
    7: ("env", "*msg", ENV_VAR),
    8: ("resources", "msg", RESOURCES),
    13: ("terminationMessagePath", "str", None),
    14: ("imagePullPolicy", "str", None),
    16: ("stdin", "bool", None),
    17: ("stdinOnce", "bool", None),
    18: ("tty", "bool", None),
    20: ("terminationMessagePolicy", "str", None),
}
POD_SPEC: Layout = {
    2: ("containers", "*msg", CONTAINER),
    3: ("restartPolicy", "str", None),
    4: ("terminationGracePeriodSeconds", "int", None),
    5: ("activeDeadlineSeconds", "int", None),
    6: ("dnsPolicy", "str", None),
    7: ("nodeSelector", "map_str", None),
    8: ("serviceAccountName", "str", None),
    10: ("nodeName", "str", None),
    15: ("imagePullSecrets", "*msg", LOCAL_REFERENCE),
    16: ("hostname", "str", None),
    17: ("subdomain", "str", None),
    19: ("schedulerName", "str", None),
    20: ("initContainers", "*msg", CONTAINER),
}
POD_TEMPLATE: Layout = {1: ("metadata", "msg", OBJECT_META), 2: ("spec", "msg", POD_SPEC)}
DEPLOYMENT_SPEC: Layout = {
    1: ("replicas", "int", None),
    2: ("selector", "msg", LABEL_SELECTOR),
    3: ("template", "msg", POD_TEMPLATE),
    4: ("strategy", "msg", {1: ("type", "str", None)}),
    5: ("minReadySeconds", "int", None),
    6: ("revisionHistoryLimit", "int", None),
    7: ("paused", "bool", None),
    9: ("progressDeadlineSeconds", "int", None),
}
JOB_SPEC: Layout = {
    1: ("parallelism", "int", None),
    2: ("completions", "int", None),
    3: ("activeDeadlineSeconds", "int", None),
    4: ("selector", "msg", LABEL_SELECTOR),
    5: ("manualSelector", "bool", None),
    6: ("template", "msg", POD_TEMPLATE),
    7: ("backoffLimit", "int", None),
    8: ("ttlSecondsAfterFinished", "int", None),
    9: ("completionMode", "str", None),
    10: ("suspend", "bool", None),
}
CRONJOB_SPEC: Layout = {
    1: ("schedule", "str", None),
    2: ("startingDeadlineSeconds", "int", None),
    3: ("concurrencyPolicy", "str", None),
    4: ("suspend", "bool", None),
    5: ("jobTemplate", "msg", {1: ("metadata", "msg", OBJECT_META), 2: ("spec", "msg", JOB_SPEC)}),
    6: ("successfulJobsHistoryLimit", "int", None),
    7: ("failedJobsHistoryLimit", "int", None),
    8: ("timeZone", "str", None),
}

KINDS: dict[str, Layout] = {
    "Pod": {1: ("metadata", "msg", OBJECT_META), 2: ("spec", "msg", POD_SPEC)},
    "Deployment": {1: ("metadata", "msg", OBJECT_META), 2: ("spec", "msg", DEPLOYMENT_SPEC)},
    "Job": {1: ("metadata", "msg", OBJECT_META), 2: ("spec", "msg", JOB_SPEC)},
    "CronJob": {1: ("metadata", "msg", OBJECT_META), 2: ("spec", "msg", CRONJOB_SPEC)},
    "Role": ROLE,
    "ClusterRole": {
        **ROLE,
        3: ("aggregationRule", "msg", {1: ("clusterRoleSelectors", "*msg", LABEL_SELECTOR)}),
    },
    "RoleBinding": BINDING,
    "ClusterRoleBinding": BINDING,
    "SelfSubjectReview": {1: ("metadata", "msg", OBJECT_META)},
    "SelfSubjectAccessReview": {
        1: ("metadata", "msg", OBJECT_META),
        2: ("spec", "msg", ACCESS_REVIEW_SPEC),
    },
    "SelfSubjectRulesReview": {
        1: ("metadata", "msg", OBJECT_META),
        2: ("spec", "msg", {1: ("namespace", "str", None)}),
    },
    "SubjectAccessReview": SUBJECT_ACCESS_REVIEW,
    "LocalSubjectAccessReview": SUBJECT_ACCESS_REVIEW,
    "Namespace": {
        1: ("metadata", "msg", OBJECT_META),
        2: ("spec", "msg", {1: ("finalizers", "*str", None)}),
        3: ("status", "msg", {1: ("phase", "str", None)}),
    },
    "ConfigMap": {
        1: ("metadata", "msg", OBJECT_META),
        2: ("data", "map_str", None),
        3: ("binaryData", "map_bytes", None),
        4: ("immutable", "bool", None),
    },
    "Secret": {
        1: ("metadata", "msg", OBJECT_META),
        2: ("data", "map_bytes", None),
        3: ("type", "str", None),
        4: ("stringData", "map_str", None),
        5: ("immutable", "bool", None),
    },
    "ServiceAccount": {
        1: ("metadata", "msg", OBJECT_META),
        2: ("secrets", "*msg", OBJECT_REFERENCE),
        3: ("imagePullSecrets", "*msg", LOCAL_REFERENCE),
        4: ("automountServiceAccountToken", "bool", None),
    },
    "Service": {1: ("metadata", "msg", OBJECT_META), 2: ("spec", "msg", SERVICE_SPEC)},
    # what typed clients (Helm purging its release Secrets) send with DELETE
    "DeleteOptions": {
        1: ("gracePeriodSeconds", "int", None),
        2: ("preconditions", "msg", {1: ("uid", "str", None), 2: ("resourceVersion", "str", None)}),
        3: ("orphanDependents", "bool", None),
        4: ("propagationPolicy", "str", None),
        5: ("dryRun", "*str", None),
    },
}


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtobufError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def fields(data: bytes) -> list[tuple[int, int, Any]]:
    """Raw (field number, wire type, value) triples of one message."""
    out: list[tuple[int, int, Any]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: Any
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = int.from_bytes(data[pos : pos + 8], "little"), pos + 8
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = int.from_bytes(data[pos : pos + 4], "little"), pos + 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        out.append((number, wire, value))
    return out


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _time(data: bytes) -> str:
    seconds = 0
    for number, _, value in fields(data):
        if number == 1:
            seconds = _signed(value)
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _int_or_string(data: bytes) -> int | str:
    kind, number_value, text = 0, 0, ""
    for number, _, value in fields(data):
        if number == 1:
            kind = value
        elif number == 2:
            number_value = _signed(value)
        elif number == 3:
            text = value.decode()
    return text if kind == 1 else number_value


def _map_entry(data: bytes, binary: bool) -> tuple[str, str]:
    key, item = "", b""
    for number, _, value in fields(data):
        if number == 1:
            key = value.decode()
        elif number == 2:
            item = value
    text = base64.b64encode(item).decode() if binary else item.decode()
    return key, text


# pointer fields, where a zero or false that was sent is kept
_ZERO_KEPT = frozenset({"port", "replicas", "parallelism", "completions", "backoffLimit"})
_FALSE_KEPT = frozenset({"immutable", "suspend", "manualSelector", "automountServiceAccountToken"})


def _quantity_entry(data: bytes) -> tuple[str, str]:
    key = quantity = ""
    for number, _, value in fields(data):
        if number == 1:
            key = value.decode()
        elif number == 2:
            quantity = str(decode_message(value, QUANTITY).get("string", ""))
    return key, quantity


def decode_message(data: bytes, layout: Layout) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for number, _, value in fields(data):
        if number not in layout:
            continue  # a field the sandbox does not model
        name, kind, nested = layout[number]
        repeated = kind.startswith("*")
        kind = kind.lstrip("*")
        item: Any
        if kind == "str":
            item = value.decode()
            if not item and not repeated:
                continue  # Go writes empty strings; JSON's omitempty would leave them out
        elif kind == "bytes":
            item = base64.b64encode(value).decode()
        elif kind == "int":
            item = _signed(value)
            if item == 0 and name not in _ZERO_KEPT:
                continue
        elif kind == "bool":
            item = bool(value)
            if not item and name not in _FALSE_KEPT:
                continue  # a plain Go bool: JSON's omitempty leaves false out
        elif kind == "msg":
            item = decode_message(value, nested)
        elif kind == "time":
            item = _time(value)
        elif kind == "intstr":
            item = _int_or_string(value)
        elif kind in ("map_str", "map_bytes"):
            key, text = _map_entry(value, kind == "map_bytes")
            out.setdefault(name, {})[key] = text
            continue
        elif kind == "map_quantity":
            key, quantity = _quantity_entry(value)
            out.setdefault(name, {})[key] = quantity
            continue
        else:
            raise ProtobufError(f"unknown field kind {kind}")
        if repeated:
            out.setdefault(name, []).append(item)
        else:
            out[name] = item
    return out


def decode(body: bytes) -> dict[str, Any]:
    """Decode a `k8s\\0`-enveloped object of one of the supported kinds to JSON form."""
    if not body.startswith(MAGIC):
        raise ProtobufError("missing the k8s protobuf envelope")
    api_version = kind = ""
    raw = b""
    for number, _, value in fields(body[len(MAGIC) :]):
        if number == 1:
            for sub, _, text in fields(value):
                if sub == 1:
                    api_version = text.decode()
                elif sub == 2:
                    kind = text.decode()
        elif number == 2:
            raw = value
    layout = KINDS.get(kind)
    if layout is None:
        raise ProtobufError(
            f"the sandbox cannot decode protobuf for kind {kind!r}; "
            "send JSON or YAML instead (e.g. kubectl apply -f)"
        )
    return {"apiVersion": api_version, "kind": kind, **decode_message(raw, layout)}
