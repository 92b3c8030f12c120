"""meta.k8s.io/v1 Table answers (what `kubectl get` prints) from printer columns."""

from __future__ import annotations

import json
from typing import Any

from . import jsonpath
from .meta import age
from .resources import Column, Obj, ResourceType

NAME_COLUMN = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": "Name must be unique within a namespace. Is required when creating resources, "
    "although some resources may allow a client to request the generation of an appropriate "
    "name automatically. Name is primarily intended for creation idempotence and configuration "
    "definition. Cannot be updated.",
    "priority": 0,
}


def column_definitions(rt: ResourceType) -> list[Obj]:
    return ([NAME_COLUMN] if rt.name_column else []) + [
        {
            "name": c.name,
            "type": c.type,
            "format": c.format,
            "description": c.description,
            "priority": c.priority,
        }
        for c in rt.columns
    ]


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def _cell(column: Column, obj: Obj) -> Any:
    if column.func is not None:
        return column.func(obj)
    found = jsonpath.find(obj, column.json_path or "")
    # like the CRD table convertor: only the first match counts
    if not found or found[0] is None:
        return None
    value = found[0]
    kind = column.type
    if kind == "date":
        return age(value) if isinstance(value, str) else None
    if kind == "integer":
        if isinstance(value, bool):
            return None
        if isinstance(value, int | float):
            return int(value)
        return None
    if kind == "number":
        return value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if kind == "boolean":
        return value if isinstance(value, bool) else None
    return _as_text(value)


def row(rt: ResourceType, obj: Obj, include_object: str = "Metadata") -> Obj:
    cells = [_cell(c, obj) for c in rt.columns]
    out: Obj = {"cells": [obj["metadata"].get("name"), *cells] if rt.name_column else cells}
    if include_object == "Object":
        out["object"] = obj
    elif include_object != "None":
        out["object"] = {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj["metadata"],
        }
    return out


def table(
    rt: ResourceType,
    objs: list[Obj],
    *,
    include_object: str = "Metadata",
    resource_version: str = "",
    continue_token: str = "",
    remaining: int | None = None,
    headers: bool = True,
) -> Obj:
    metadata: Obj = {"resourceVersion": resource_version} if resource_version else {}
    if continue_token:
        metadata["continue"] = continue_token
    if remaining is not None:
        metadata["remainingItemCount"] = remaining
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": column_definitions(rt) if headers else [],
        "rows": [row(rt, o, include_object) for o in objs],
    }
