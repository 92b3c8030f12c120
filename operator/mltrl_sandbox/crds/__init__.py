"""CustomResourceDefinitions: bundled documents and turning CRDs into served types."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from ..cel import schema_rule_errors
from ..errors import FieldError, invalid, required
from ..meta import timestamp
from ..resources import AGE, Column, Obj, ResourceType

BUNDLED_DIR = Path(__file__).parent


def load_yaml_documents(path: Path) -> list[Obj]:
    with path.open(encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if isinstance(d, dict)]


def bundled_crd_documents() -> list[Obj]:
    docs: list[Obj] = []
    for path in sorted(BUNDLED_DIR.glob("*.yaml")):
        docs.extend(load_yaml_documents(path))
    return docs


def default_crd_documents(repo_crds_dir: Path | None) -> list[Obj]:
    """The bundled InferenceService CRD plus every `*.yaml` CRD under `repo_crds_dir`."""
    docs = bundled_crd_documents()
    if repo_crds_dir is not None and Path(repo_crds_dir).is_dir():
        for path in sorted(Path(repo_crds_dir).glob("*.yaml")):
            docs.extend(
                d for d in load_yaml_documents(path) if d.get("kind") == "CustomResourceDefinition"
            )
    return docs


def _columns(version: Obj) -> tuple[Column, ...]:
    declared = version.get("additionalPrinterColumns")
    if not declared:
        return (AGE,)
    return tuple(
        Column(
            name=c["name"],
            type=c.get("type", "string"),
            json_path=c.get("jsonPath"),
            format=c.get("format", ""),
            description=c.get("description", ""),
            priority=int(c.get("priority", 0)),
        )
        for c in declared
    )


def resource_types(crd: Obj) -> list[ResourceType]:
    """One served type per served version of a (valid) CRD."""
    spec = crd["spec"]
    names = spec["names"]
    group = spec["group"]
    types = []
    for version in spec.get("versions") or []:
        if not version.get("served", True):
            continue
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        types.append(
            ResourceType(
                group=group,
                version=version["name"],
                plural=names["plural"],
                singular=names.get("singular") or names["kind"].lower(),
                kind=names["kind"],
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                schema=copy.deepcopy(schema)
                if schema
                else {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                status_subresource="status" in (version.get("subresources") or {}),
                scale=(version.get("subresources") or {}).get("scale"),
                columns=_columns(version),
                builtin=False,
                selectable_fields={
                    f["jsonPath"].lstrip("."): f["jsonPath"]
                    for f in version.get("selectableFields") or []
                },
                description=(schema or {}).get("description", ""),
            )
        )
    return types


def validate_crd(crd: Obj) -> list[FieldError]:
    """The structural checks the real server makes that matter for serving a CRD."""
    errors: list[FieldError] = []
    spec = crd.get("spec")
    if not isinstance(spec, dict):
        return [required("spec")]
    group = spec.get("group")
    raw_names = spec.get("names")
    names: Obj = raw_names if isinstance(raw_names, dict) else {}
    if not group:
        errors.append(required("spec.group"))
    for key in ("plural", "kind"):
        if not names.get(key):
            errors.append(required(f"spec.names.{key}"))
    name = (crd.get("metadata") or {}).get("name")
    if group and names.get("plural") and name != f"{names['plural']}.{group}":
        errors.append(invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group'))
    scope = spec.get("scope")
    if scope not in ("Cluster", "Namespaced"):
        errors.append(
            FieldError(
                "NotSupported", "spec.scope", 'supported values: "Cluster", "Namespaced"', scope
            )
        )
    versions = spec.get("versions")
    if not isinstance(versions, list) or not versions:
        errors.append(required("spec.versions"))
        return errors
    storage = [v for v in versions if isinstance(v, dict) and v.get("storage")]
    if len(storage) != 1:
        errors.append(
            invalid(
                "spec.versions", versions, "must have exactly one version marked as storage version"
            )
        )
    for i, v in enumerate(versions):
        if not isinstance(v, dict) or not v.get("name"):
            errors.append(required(f"spec.versions[{i}].name"))
            continue
        schema = (v.get("schema") or {}).get("openAPIV3Schema")
        if not isinstance(schema, dict):
            errors.append(
                required(f"spec.versions[{i}].schema.openAPIV3Schema", "schemas are required")
            )
        elif "x-kubernetes-validations" in repr(schema):
            errors += schema_rule_errors(schema, "spec.validation.openAPIV3Schema")
    return errors


def established_status(crd: Obj) -> Obj:
    spec = crd["spec"]
    names = dict(spec["names"])
    names.setdefault("singular", names["kind"].lower())
    names.setdefault("listKind", f"{names['kind']}List")
    stamp = timestamp()
    return {
        "acceptedNames": names,
        "conditions": [
            {
                "type": "NamesAccepted",
                "status": "True",
                "reason": "NoConflicts",
                "message": "no conflicts found",
                "lastTransitionTime": stamp,
            },
            {
                "type": "Established",
                "status": "True",
                "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted",
                "lastTransitionTime": stamp,
            },
        ],
        "storedVersions": [v["name"] for v in spec["versions"] if v.get("storage")],
    }


def crd_defaults(crd: Obj) -> None:
    """Defaults the real API server fills into a CRD (in place)."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    if names.get("kind"):
        names.setdefault("singular", names["kind"].lower())
        names.setdefault("listKind", f"{names['kind']}List")
    spec.setdefault("conversion", {"strategy": "None"})
    for v in spec.get("versions") or []:
        if isinstance(v, dict):
            v.setdefault("served", True)
            v.setdefault("storage", False)


__all__ = [
    "bundled_crd_documents",
    "crd_defaults",
    "default_crd_documents",
    "established_status",
    "resource_types",
    "validate_crd",
]
