"""Generate the CustomResourceDefinitions from the pydantic models.

Run `python -m mltrl_operator.api.crdgen [DIR]` (or `mltrl crds`); a test fails when the
committed `crds/` differs from what this produces.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from mltrl_operator.api.resources import ALL_RESOURCES, Resource

JsonSchema = dict[str, Any]

# Kubernetes' structural schemas cannot carry these JSON Schema keywords.
_DROPPED_KEYS = {"title", "$defs", "additionalProperties"}


def _inline(node: Any, defs: dict[str, JsonSchema]) -> Any:
    """Resolve $ref, collapse Optional's anyOf-with-null, and drop non-structural keys."""
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "$ref" in node:
        target = defs[node.pop("$ref").rsplit("/", 1)[-1]]
        node = {**target, **node}
    if "allOf" in node and len(node["allOf"]) == 1:
        node = {**node.pop("allOf")[0], **node}
    if "anyOf" in node:
        variants = [v for v in node.pop("anyOf") if v.get("type") != "null"]
        if len(variants) != 1:
            raise ValueError(f"cannot express a union in a structural schema: {variants}")
        node = {**variants[0], **node}
        if node.get("default", ...) is None:
            node.pop("default")
    if "$ref" in node or "allOf" in node:
        return _inline(node, defs)
    if node.get("default", ...) is None:
        node.pop("default")
    additional = node.get("additionalProperties")
    result: JsonSchema = {}
    for key, value in node.items():
        if key in _DROPPED_KEYS:
            continue
        if key == "properties":
            result[key] = {name: _inline(sub, defs) for name, sub in value.items()}
        elif key in ("items",):
            result[key] = _inline(value, defs)
        else:
            result[key] = value
    if node.get("x-kubernetes-preserve-unknown-fields"):
        result["type"] = "object"
    elif isinstance(additional, dict):
        result["additionalProperties"] = _inline(additional, defs)
    elif additional is True:
        result["x-kubernetes-preserve-unknown-fields"] = True
    if (
        result.get("type") == "object"
        and "properties" not in result
        and "additionalProperties" not in result
    ):
        result["x-kubernetes-preserve-unknown-fields"] = True
    if "description" in result:
        result["description"] = " ".join(result["description"].split())
    return result


def _mark_list_maps(schema: JsonSchema) -> JsonSchema:
    """Conditions are a map keyed by type, as metav1.Condition lists are upstream."""
    for name, sub in schema.get("properties", {}).items():
        if name == "conditions" and sub.get("type") == "array":
            sub["x-kubernetes-list-type"] = "map"
            sub["x-kubernetes-list-map-keys"] = ["type"]
        _mark_list_maps(sub)
    if "items" in schema:
        _mark_list_maps(schema["items"])
    return schema


def open_api_schema(resource: Resource) -> JsonSchema:
    raw = resource.model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    body = _mark_list_maps(_inline(raw, defs))
    properties = {
        "apiVersion": {
            "type": "string",
            "description": "APIVersion defines the versioned schema of this representation "
            "of an object.",
        },
        "kind": {
            "type": "string",
            "description": "Kind is a string value representing the REST resource this "
            "object represents.",
        },
        "metadata": {"type": "object"},
        **body["properties"],
    }
    return {
        "type": "object",
        "description": body.get("description", ""),
        "properties": properties,
        "required": body.get("required", []),
    }


def crd_document(resource: Resource) -> dict[str, Any]:
    has_status = "status" in resource.model.model_fields
    version: dict[str, Any] = {
        "name": resource.version,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": open_api_schema(resource)},
        "additionalPrinterColumns": [
            {
                "name": column.name,
                "type": column.type,
                "jsonPath": column.json_path,
                **({"description": column.description} if column.description else {}),
                **({"priority": column.priority} if column.priority else {}),
            }
            for column in resource.columns
        ],
    }
    if has_status:
        version["subresources"] = {"status": {}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": resource.crd_name,
            "labels": {"app.kubernetes.io/part-of": "mltrl-operator"},
        },
        "spec": {
            "group": resource.group,
            "names": {
                "kind": resource.kind,
                "listKind": f"{resource.kind}List",
                "plural": resource.plural,
                "singular": resource.singular,
                "shortNames": list(resource.short_names),
                **({"categories": list(resource.categories)} if resource.categories else {}),
            },
            "scope": "Namespaced" if resource.namespaced else "Cluster",
            "versions": [version],
        },
    }


def crd_documents() -> list[dict[str, Any]]:
    return [crd_document(resource) for resource in ALL_RESOURCES]


HEADER = (
    "# Generated by `python -m mltrl_operator.api.crdgen` from the pydantic models.\n"
    "# Do not edit by hand.\n"
)


def render(document: dict[str, Any]) -> str:
    return HEADER + yaml.safe_dump(document, sort_keys=False, width=100)


def rendered_files() -> dict[str, str]:
    """File name -> YAML text, exactly as committed under crds/."""
    return {
        f"{doc['spec']['group']}_{doc['spec']['names']['plural']}.yaml": render(doc)
        for doc in crd_documents()
    }


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in rendered_files().items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    directory = Path(args[0]) if args else Path("crds")
    for path in write(directory):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
