"""OpenAPI documents: what kubectl needs for server-side field validation and explain.

kubectl (1.37) uses server-side field validation when the group-version document has
a PATCH operation tagged with the kind's `x-kubernetes-group-version-kind` that takes a
`fieldValidation` query parameter; `kubectl explain` reads `components.schemas`.
Built-in kinds are described by Kubernetes' published definitions (`kubeschemas`),
custom resources by their CRD's openAPIV3Schema; `/openapi/v2` joins them all, in
JSON or in gnostic's protobuf (`openapi_pb`), which kubectl reads to validate a List's
items client-side.
Documents are built on first request and kept while their group-version is unchanged.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from . import kubeschemas, openapi_pb
from .resources import Obj, Registry, ResourceType

META = "io.k8s.apimachinery.pkg.apis.meta.v1"
OBJECT_META = f"{META}.ObjectMeta"
LIST_META = f"{META}.ListMeta"
STATUS = f"{META}.Status"
PATCH = f"{META}.Patch"
DELETE_OPTIONS = f"{META}.DeleteOptions"

_API_VERSION_DOC = (
    "APIVersion defines the versioned schema of this representation of an object. Servers should "
    "convert recognized schemas to the latest internal value, and may reject unrecognized values."
)
_KIND_DOC = (
    "Kind is a string value representing the REST resource this object represents. Servers may "
    "infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase."
)
_METADATA_DOC = "Standard object's metadata."


def _ref(name: str) -> Obj:
    return {"$ref": f"#/components/schemas/{name}"}


def schema_name(rt: ResourceType) -> str:
    published = kubeschemas.definition_name(rt.group, rt.version, rt.kind) if rt.builtin else None
    if published:
        return published
    if rt.group == "":
        return f"io.k8s.api.core.{rt.version}.{rt.kind}"
    if rt.group == "apiextensions.k8s.io":
        return f"io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.{rt.version}.{rt.kind}"
    if rt.builtin:
        return f"io.k8s.api.{rt.group.split('.')[0]}.{rt.version}.{rt.kind}"
    return ".".join(reversed(rt.group.split("."))) + f".{rt.version}.{rt.kind}"


def _gvk(rt: ResourceType) -> Obj:
    return {"group": rt.group, "version": rt.version, "kind": rt.kind}


def _common_schemas() -> dict[str, Obj]:
    text = {"type": "string"}
    string_map = {"type": "object", "additionalProperties": {"type": "string", "default": ""}}
    return {
        OBJECT_META: {
            "description": "ObjectMeta is metadata that all persisted resources must have, "
            "which includes all objects users must create.",
            "type": "object",
            "properties": {
                "name": {**text, "description": "Name must be unique within a namespace."},
                "generateName": {
                    **text,
                    "description": "GenerateName is an optional prefix, used by the server, "
                    "to generate a unique name ONLY IF the Name field has not been provided.",
                },
                "namespace": {
                    **text,
                    "description": "Namespace defines the space within which each name must be "
                    "unique.",
                },
                "uid": {
                    **text,
                    "description": "UID is the unique in time and space value for this object.",
                },
                "resourceVersion": {
                    **text,
                    "description": "An opaque value that represents the internal "
                    "version of this object.",
                },
                "generation": {
                    "type": "integer",
                    "format": "int64",
                    "description": "A sequence number "
                    "representing a specific generation of the desired state.",
                },
                "creationTimestamp": {
                    **text,
                    "format": "date-time",
                    "description": "CreationTimestamp is a "
                    "timestamp representing the server time when this object was created.",
                },
                "deletionTimestamp": {
                    **text,
                    "format": "date-time",
                    "description": "DeletionTimestamp is RFC "
                    "3339 date and time at which this resource will be deleted.",
                },
                "deletionGracePeriodSeconds": {
                    "type": "integer",
                    "format": "int64",
                    "description": "Number of seconds allowed for this object to gracefully "
                    "terminate.",
                },
                "labels": {
                    **string_map,
                    "description": "Map of string keys and values that can be used to "
                    "organize and categorize (scope and select) objects.",
                },
                "annotations": {
                    **string_map,
                    "description": "Annotations is an unstructured key value map "
                    "stored with a resource that may be set by external tools.",
                },
                "finalizers": {
                    "type": "array",
                    "items": {**text, "default": ""},
                    "x-kubernetes-list-type": "set",
                    "description": "Must be empty before the object is deleted from the registry.",
                },
                "ownerReferences": {
                    "type": "array",
                    "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    "description": "List of objects depended by this object.",
                },
                "managedFields": {
                    "type": "array",
                    "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    "description": "ManagedFields maps workflow-id and version to the set of "
                    "fields that are managed by that workflow.",
                },
            },
        },
        LIST_META: {
            "description": "ListMeta describes metadata that synthetic resources must have.",
            "type": "object",
            "properties": {
                "resourceVersion": text,
                "continue": text,
                "remainingItemCount": {"type": "integer", "format": "int64"},
            },
        },
        STATUS: {
            "description": "Status is a return value for calls that don't return other objects.",
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": True,
        },
        PATCH: {
            "description": "Patch is provided to give a concrete name and type to the "
            "Kubernetes PATCH request body.",
            "type": "object",
        },
        DELETE_OPTIONS: {
            "description": "DeleteOptions may be provided when deleting an API object.",
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": True,
        },
    }


def kind_schema(rt: ResourceType) -> Obj:
    if rt.builtin or rt.schema is None:
        out: Obj = {
            "description": rt.description or f"{rt.kind} (accepted as-is by the sandbox).",
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": True,
            "properties": {},
        }
    else:
        out = copy.deepcopy(rt.schema)
        out.setdefault("type", "object")
    props = out.setdefault("properties", {})
    props["apiVersion"] = {
        "type": "string",
        "description": _API_VERSION_DOC,
        **(props.get("apiVersion") or {}),
    }
    props["kind"] = {"type": "string", "description": _KIND_DOC, **(props.get("kind") or {})}
    props["metadata"] = {"allOf": [_ref(OBJECT_META)], "default": {}, "description": _METADATA_DOC}
    out["x-kubernetes-group-version-kind"] = [_gvk(rt)]
    return out


def _list_schema(rt: ResourceType, item: str) -> Obj:
    return {
        "description": f"{rt.kind}List is a list of {rt.kind}",
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"type": "string", "description": _API_VERSION_DOC},
            "kind": {"type": "string", "description": _KIND_DOC},
            "items": {"type": "array", "items": _ref(item)},
            "metadata": {"allOf": [_ref(LIST_META)], "default": {}},
        },
        "x-kubernetes-group-version-kind": [{**_gvk(rt), "kind": rt.list_kind}],
    }


def _query(name: str, kind: str = "string", description: str = "") -> Obj:
    return {
        "name": name,
        "in": "query",
        "description": description,
        "schema": {"type": kind, "uniqueItems": True},
    }


_FIELD_VALIDATION = _query(
    "fieldValidation",
    description="fieldValidation instructs the server on how to handle objects in the request "
    "containing unknown or duplicate fields. Valid values are: Ignore, Warn, Strict.",
)
_WRITE_PARAMS = [_query("dryRun"), _query("fieldManager"), _FIELD_VALIDATION]


def _responses(ref: str, *codes: str) -> Obj:
    content = {"application/json": {"schema": _ref(ref)}, "application/yaml": {"schema": _ref(ref)}}
    return {
        code: {"description": "OK" if code == "200" else "Created", "content": content}
        for code in codes
    }


def _op(rt: ResourceType, action: str, op_id: str, ref: str, **extra: Any) -> Obj:
    op: Obj = {
        "tags": [f"{rt.group or 'core'}_{rt.version}"],
        "description": f"{action} {rt.kind}",
        "operationId": op_id,
        "responses": _responses(ref, "200"),
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": _gvk(rt),
    }
    op.update(extra)
    return op


def _body(ref: str, *types: str) -> Obj:
    return {"content": {t: {"schema": _ref(ref)} for t in types}, "required": True}


def _read_write(rt: ResourceType, operation: str, item: str, patch_body: Obj) -> Obj:
    """get, put and patch of one object (or of its status): the operations kubectl uses."""
    return {
        "get": _op(rt, "get", f"read{operation}", item),
        "put": _op(
            rt,
            "put",
            f"replace{operation}",
            item,
            parameters=list(_WRITE_PARAMS),
            requestBody=_body(item, "*/*"),
        ),
        "patch": _op(
            rt,
            "patch",
            f"patch{operation}",
            item,
            parameters=[*_WRITE_PARAMS, _query("force", "boolean")],
            requestBody=patch_body,
        ),
    }


def _paths(rt: ResourceType, item: str) -> dict[str, Obj]:
    prefix = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
    scope = "Namespaced" if rt.namespaced else ""
    collection = (
        f"{prefix}/namespaces/{{namespace}}/{rt.plural}"
        if rt.namespaced
        else f"{prefix}/{rt.plural}"
    )
    single = f"{collection}/{{name}}"
    name_param = {
        "name": "name",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "uniqueItems": True},
    }
    ns_param = {
        "name": "namespace",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "uniqueItems": True},
    }
    common = [name_param, ns_param] if rt.namespaced else [name_param]
    list_ref = f"{item}List"
    patch_types = ["application/json-patch+json", "application/merge-patch+json"]
    if rt.builtin:  # strategic merge needs the built-in kinds' patch strategies
        patch_types.append("application/strategic-merge-patch+json")
    patch_body = _body(PATCH, *patch_types, "application/apply-patch+yaml")
    create = {
        "post": _op(
            rt,
            "post",
            f"create{scope}{rt.kind}",
            item,
            parameters=list(_WRITE_PARAMS),
            requestBody=_body(item, "*/*"),
        ),
        "parameters": [ns_param] if rt.namespaced else [],
    }
    if rt.virtual is not None:
        # reviews are only created (answered, never stored): the API server publishes
        # their POST alone, and no List kind for them
        return {collection: create}
    paths: dict[str, Obj] = {
        collection: {"get": _op(rt, "list", f"list{scope}{rt.kind}", list_ref), **create},
        single: {
            **_read_write(rt, f"{scope}{rt.kind}", item, patch_body),
            "delete": _op(
                rt,
                "delete",
                f"delete{scope}{rt.kind}",
                STATUS,
                requestBody=_body(DELETE_OPTIONS, "*/*"),
            ),
            "parameters": common,
        },
    }
    if rt.namespaced:
        paths[f"{prefix}/{rt.plural}"] = {
            "get": _op(rt, "list", f"list{rt.kind}ForAllNamespaces", list_ref)
        }
    if rt.status_subresource:
        paths[f"{single}/status"] = {
            **_read_write(rt, f"{scope}{rt.kind}Status", item, patch_body),
            "parameters": common,
        }
    return paths


def _published_common() -> dict[str, Obj]:
    """ObjectMeta, ListMeta, Status, Patch and DeleteOptions as Kubernetes publishes them."""
    return dict(kubeschemas.referenced([OBJECT_META, LIST_META, STATUS, PATCH, DELETE_OPTIONS]))


def _kind_schemas(rt: ResourceType) -> dict[str, Obj]:
    name = schema_name(rt)
    if rt.builtin and kubeschemas.definition_name(rt.group, rt.version, rt.kind):
        return kubeschemas.referenced([name, f"{name}List"])
    return {name: kind_schema(rt), f"{name}List": _list_schema(rt, name)}


def _wrap_refs(node: Any) -> Any:
    """OpenAPI 3.0 ignores siblings of `$ref`: the API server wraps such refs in allOf."""
    if isinstance(node, list):
        return [_wrap_refs(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _wrap_refs(value) for key, value in node.items()}
    if isinstance(out.get("$ref"), str) and len(out) > 1:  # (JSONSchemaProps has a "$ref" field)
        ref = out.pop("$ref")
        out["allOf"] = [{"$ref": ref}]
    return out


def group_version_document(registry: Registry, group_version: str) -> Obj | None:
    resources = registry.resources(group_version)
    if not resources:
        return None
    schemas = _common_schemas()
    schemas.update(_published_common())
    paths: dict[str, Obj] = {}
    for rt in sorted(resources, key=lambda r: r.plural):
        schemas.update(_kind_schemas(rt))
        paths.update(_paths(rt, schema_name(rt)))
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": kubeschemas.kubernetes_version()},
        "paths": paths,
        "components": {"schemas": _wrap_refs(schemas)},
    }


def _v3_to_v2(text: str) -> str:
    return text.replace('"#/components/schemas/', '"#/definitions/')


def swagger_document(registry: Registry) -> Obj:
    """/openapi/v2: every definition, and the paths, in Swagger 2.0 form."""
    definitions = {name: _v2_schema(s) for name, s in _published_common().items()}
    paths: dict[str, Obj] = {}
    for rt in registry.all():
        published = rt.builtin and kubeschemas.definition_name(rt.group, rt.version, rt.kind)
        for name, found in _kind_schemas(rt).items():
            definitions[name] = _v2_schema(found, custom=not published)
        for path, item in _paths(rt, schema_name(rt)).items():
            paths[path] = _swagger_path(item)
    return {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": kubeschemas.kubernetes_version()},
        "paths": paths,
        "definitions": definitions,
        # as kube-apiserver publishes them; the sandbox checks bearer tokens too
        "securityDefinitions": {
            "BearerToken": {
                "description": "Bearer Token authentication",
                "type": "apiKey",
                "name": "authorization",
                "in": "header",
            }
        },
        "security": [{"BearerToken": []}],
    }


def _v2_schema(node: Any, custom: bool = False) -> Any:
    """A schema as kube-apiserver publishes it in v2, where kubectl's client-side
    validation (kube-openapi's proto models) reads it.

    Everywhere: a `$ref` stands with its siblings, not wrapped in a one-element allOf
    (the v3 form), and an int-or-string or a Quantity is a string, as the server's v2
    generator writes them. For custom resources (`custom`), the API server's v2
    conversion of a CRD's structural schema: no allOf/anyOf/oneOf/not (v2 has no such
    junctors kubectl reads); a nullable or `x-kubernetes-preserve-unknown-fields` node
    loses its properties and items (kubectl would refuse null values and unknown fields
    there), an object that keeps unknown fields and an array without items lose their
    type; a nullable property is not required.
    """
    if not isinstance(node, dict):
        return node
    out = dict(node)
    wrapped = out.get("allOf")
    if "$ref" not in out and isinstance(wrapped, list) and [set(w) for w in wrapped] == [{"$ref"}]:
        out.pop("allOf")
        out["$ref"] = wrapped[0]["$ref"]
    if not custom and ("anyOf" in out or "oneOf" in out) and "type" not in out:
        out.pop("anyOf", None)
        out.pop("oneOf", None)
        out["type"] = "string"
        if out.get("x-kubernetes-int-or-string"):
            out["format"] = "int-or-string"
    if custom:
        for junctor in ("allOf", "anyOf", "oneOf", "not"):
            out.pop(junctor, None)
        if out.pop("nullable", False):
            out.pop("type", None)
            out.pop("items", None)
            out.pop("properties", None)
        if out.get("x-kubernetes-preserve-unknown-fields"):
            out.pop("items", None)
            out.pop("properties", None)
            if out.get("type") == "object":
                out.pop("type")
        if out.get("type") == "array" and "items" not in out:
            out.pop("type")
    if isinstance(out.get("properties"), dict):
        props = out["properties"]
        if custom and isinstance(out.get("required"), list):
            required = [f for f in out["required"] if not _nullable(props.get(f))]
            if required:
                out["required"] = required
            else:
                out.pop("required")
        out["properties"] = {k: _v2_schema(v, custom) for k, v in props.items()}
    extra = out.get("additionalProperties")
    if isinstance(extra, dict):
        if custom and _nullable(extra):
            out.pop("required", None)
        out["additionalProperties"] = _v2_schema(extra, custom)
    if isinstance(out.get("items"), dict):
        out["items"] = _v2_schema(out["items"], custom)
    return out


def _nullable(node: Any) -> bool:
    return isinstance(node, dict) and node.get("nullable") is True


def _swagger_path(item: Obj) -> Obj:
    """The v3 operations with their bodies turned into v2 body parameters."""
    out: Obj = {}
    for method, op in item.items():
        if not isinstance(op, dict):  # the path's own parameters
            out[method] = [_swagger_parameter(p) for p in op]
            continue
        op = dict(op)
        body = op.pop("requestBody", None)
        params = [_swagger_parameter(p) for p in op.get("parameters") or []]
        if body is not None:
            schema = next(iter(body["content"].values()))["schema"]
            params.append({"name": "body", "in": "body", "required": True, "schema": schema})
        op["parameters"] = params
        op["responses"] = {
            code: {
                "description": r["description"],
                "schema": r["content"]["application/json"]["schema"],
            }
            for code, r in op.get("responses", {}).items()
        }
        out[method] = op
    return out


def _swagger_parameter(param: Obj) -> Obj:
    """A v3 parameter's schema becomes the v2 parameter's own `type` and `uniqueItems`."""
    out = {k: v for k, v in param.items() if k != "schema"}
    return out | {k: v for k, v in param["schema"].items() if k in ("type", "uniqueItems")}


def doc_path(group_version: str) -> str:
    return f"apis/{group_version}" if "/" in group_version else f"api/{group_version}"


def _serialise(doc: Obj, v2: bool = False) -> bytes:
    text = json.dumps(doc, separators=(",", ":")).replace(
        f'"{kubeschemas.REF_PREFIX}', '"#/components/schemas/'
    )
    return (_v3_to_v2(text) if v2 else text).encode()


class OpenAPICache:
    """Serialised documents and their hashes; a group-version's document is rebuilt only
    when its resource types change (built-in ones never do)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._docs: dict[str, tuple[tuple[int, ...], bytes, str]] = {}
        self._v2: tuple[int, bytes] | None = None
        self._v2_pb: bytes | None = None  # encoded from _v2, cleared when it is rebuilt

    def _entry(self, gv: str) -> tuple[bytes, str] | None:
        resources = self.registry.resources(gv)
        if not resources:
            self._docs.pop(doc_path(gv), None)
            return None
        key = tuple(sorted(id(rt) for rt in resources))
        path = doc_path(gv)
        cached = self._docs.get(path)
        if cached is None or cached[0] != key:
            doc = group_version_document(self.registry, gv)
            assert doc is not None
            body = _serialise(doc)
            cached = (key, body, hashlib.sha512(body).hexdigest().upper())
            self._docs[path] = cached
        return cached[1], cached[2]

    def index(self) -> Obj:
        paths = {}
        for gv in self.registry.group_versions():
            entry = self._entry(gv)
            if entry is not None:
                paths[doc_path(gv)] = {
                    "serverRelativeURL": f"/openapi/v3/{doc_path(gv)}?hash={entry[1]}"
                }
        return {"paths": dict(sorted(paths.items()))}

    def document(self, path: str) -> bytes | None:
        gv = path.removeprefix("apis/").removeprefix("api/")
        if doc_path(gv) != path:
            return None
        entry = self._entry(gv)
        return entry[0] if entry else None

    def swagger(self) -> bytes:
        if self._v2 is None or self._v2[0] != self.registry.generation:
            body = _serialise(swagger_document(self.registry), v2=True)
            self._v2 = (self.registry.generation, body)
            self._v2_pb = None
        return self._v2[1]

    def swagger_protobuf(self) -> bytes:
        """The same document in gnostic's protobuf form, encoded from the JSON one (so
        the two never differ) once per registry generation."""
        body = self.swagger()
        if self._v2_pb is None:
            self._v2_pb = openapi_pb.document(json.loads(body))
        return self._v2_pb
