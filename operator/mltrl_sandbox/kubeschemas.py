"""Kubernetes' published schemas for the built-in kinds, from kubernetes-validate.

kubernetes-validate ships the JSON schemas generated from kube-apiserver's OpenAPI
document, one directory per Kubernetes version; `_definitions.json` holds every
definition with its `x-kubernetes-*` extensions (patch merge keys, list types, group-
version-kinds).  The sandbox takes the newest version's definitions, read once on first
use (8 ms), and turns each definition it uses back into OpenAPI form: the generator made every type
nullable (`["string", "null"]`), the API server's documents say `"string"`.

References stay references (`#/$defs/<name>`); `resolve` follows them during
validation, and the OpenAPI documents rewrite the prefix for v2 or v3.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
from pathlib import Path
from typing import Any

Schema = dict[str, Any]

REF_PREFIX = "#/$defs/"
_VERSION_DIR = re.compile(r"^v(\d+)\.(\d+)\.(\d+)-local$")


class SchemasMissing(RuntimeError):
    """kubernetes-validate (the source of the built-in kinds' schemas) is not installed."""


def _schema_root() -> Path:
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:
        raise SchemasMissing(
            "the sandbox serves built-in kinds from the schemas in the kubernetes-validate "
            "package; install it (pip install kubernetes-validate)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "kubernetes-json-schema"


@functools.cache
def schema_directory() -> Path:
    """The newest Kubernetes version's (non-strict, local-reference) schema directory."""
    root = _schema_root()
    versions = []
    for entry in root.iterdir():
        m = _VERSION_DIR.match(entry.name)
        if m and (entry / "_definitions.json").is_file():
            versions.append((tuple(int(g) for g in m.groups()), entry))
    if not versions:
        raise SchemasMissing(f"no vX.Y.Z-local schema directory under {root}")
    return max(versions)[1]


def kubernetes_version() -> str:
    return schema_directory().name.removesuffix("-local")


def _openapi_form(node: Any) -> Any:
    """Undo the generator's nullable types and name int-or-string as the server does."""
    if isinstance(node, list):
        return [_openapi_form(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _openapi_form(value) for key, value in node.items()}
    kind = out.get("type")
    if isinstance(kind, list):
        concrete = [t for t in kind if t != "null"]
        if len(concrete) == 1:
            out["type"] = concrete[0]
        else:
            out.pop("type")
    return out


def _int_or_string(schema: Schema) -> Schema:
    return {
        "description": schema.get("description", ""),
        "x-kubernetes-int-or-string": True,
        "anyOf": [{"type": "integer"}, {"type": "string"}],
    }


@functools.cache
def _raw() -> dict[str, Schema]:
    with (schema_directory() / "_definitions.json").open("rb") as handle:
        loaded: dict[str, Schema] = json.load(handle)["$defs"]
    return loaded


@functools.cache
def definition(name: str) -> Schema | None:
    """One published definition (e.g. io.k8s.api.core.v1.PodSpec) in OpenAPI form,
    converted on first use: a start-up that validates a Namespace converts a handful."""
    raw = _raw().get(name)
    if raw is None:
        return None
    if name == "io.k8s.apimachinery.pkg.util.intstr.IntOrString":
        return _int_or_string(raw)
    converted: Schema = _openapi_form(raw)
    return converted


@functools.cache
def _by_gvk() -> dict[tuple[str, str, str], str]:
    found: dict[tuple[str, str, str], str] = {}
    for name, schema in _raw().items():
        for gvk in schema.get("x-kubernetes-group-version-kind") or []:
            key = (gvk.get("group", ""), gvk.get("version", ""), gvk.get("kind", ""))
            # Shared kinds (DeleteOptions, WatchEvent) carry many GVKs; the first name wins.
            found.setdefault(key, name)
    return found


def definition_name(group: str, version: str, kind: str) -> str | None:
    return _by_gvk().get((group, version, kind))


def kind_schema(group: str, version: str, kind: str) -> Schema | None:
    name = definition_name(group, version, kind)
    return definition(name) if name else None


def resolve(schema: Schema | None) -> Schema | None:
    """Follow a `$ref` to its definition (siblings such as `description` are dropped)."""
    if schema is None:
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith(REF_PREFIX):
        return definition(ref[len(REF_PREFIX) :])
    return schema


def referenced(names: list[str]) -> dict[str, Schema]:
    """The named definitions and everything they refer to, transitively."""
    out: dict[str, Schema] = {}
    pending = list(names)
    while pending:
        name = pending.pop()
        found = None if name in out else definition(name)
        if found is not None:
            out[name] = found
            pending.extend(_refs(found))
    return out


def _refs(node: Any) -> list[str]:
    found: list[str] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            ref = item.get("$ref")
            if isinstance(ref, str) and ref.startswith(REF_PREFIX):
                found.append(ref[len(REF_PREFIX) :])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found
