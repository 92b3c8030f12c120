"""Structural-schema pruning, defaulting and validation of custom resources.

Mirrors the order and texts of the apiextensions-apiserver: unknown fields are pruned
(or reported under strict field validation), then `default`s are applied, then the
openAPIV3Schema's value validations run.  Built-in kinds go through the same code with
Kubernetes' published schemas (`kubeschemas`), whose `$ref`s are followed as they come.
`null` in a field that is not nullable is dropped before defaulting, as the API server
does for custom resources (and Go's decoder does for built-in kinds).
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from .errors import FieldError, go_plain, invalid, required
from .kubeschemas import resolve

Schema = dict[str, Any]

OBJECT_META_FIELDS = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)
_ROOT_FIELDS = ("apiVersion", "kind", "metadata")

_DATE_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:?\d{2})?$"
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$")
_FORMATS = {"date-time": _DATE_TIME, "datetime": _DATE_TIME, "date": _DATE, "uuid": _UUID}


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _child_schema(schema: Schema, key: str) -> tuple[Schema | None, bool]:
    """The schema for `key` of an object, and whether the key is known at all."""
    props = schema.get("properties") or {}
    if key in props:
        return resolve(props[key]), True
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        return resolve(extra), True
    if extra is True or schema.get("x-kubernetes-preserve-unknown-fields"):
        return None, True
    if schema.get("x-kubernetes-embedded-resource") and key in _ROOT_FIELDS:
        return None, True
    return None, False


def _drops_null(schema: Schema | None) -> bool:
    """Whether a `null` here is dropped: a typed field that is not nullable."""
    if not schema or schema.get("nullable"):
        return False
    return "type" in schema or "properties" in schema


def _free_form(schema: Schema) -> bool:
    """A schema that says nothing of the value's shape (e.g. JSONSchemaPropsOrArray); its
    keys are looked up one by one, not intersected: a schema has many other keys."""
    return not (
        "type" in schema
        or "properties" in schema
        or "additionalProperties" in schema
        or "items" in schema
        or "x-kubernetes-int-or-string" in schema
    )


def _prune_node(value: Any, schema: Schema | None, path: str, unknown: list[str]) -> Any:
    schema = resolve(schema)
    if schema is None or _free_form(schema):
        return value  # free-form (e.g. JSONSchemaPropsOrArray): kept as given
    if isinstance(value, float) and value.is_integer() and schema.get("type") == "integer":
        return int(value)
    if isinstance(value, dict):
        if schema.get("type") not in (None, "object"):
            return value  # a type error, reported by validation
        for key in list(value):
            child, known = _child_schema(schema, key)
            if not known:
                unknown.append(_join(path, key))
                del value[key]
            elif value[key] is None and _drops_null(child):
                del value[key]
            else:
                value[key] = _prune_node(value[key], child, _join(path, key), unknown)
        return value
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [
            _prune_node(item, schema["items"], f"{path}[{i}]", unknown)
            for i, item in enumerate(value)
        ]
    return value


def prune(obj: dict[str, Any], schema: Schema | None) -> list[str]:
    """Drop fields the schema does not declare (in place); return their paths."""
    unknown: list[str] = []
    metadata = obj.get("metadata")
    if isinstance(metadata, dict):
        for key in list(metadata):
            if key not in OBJECT_META_FIELDS:
                unknown.append(f"metadata.{key}")
                del metadata[key]
            elif metadata[key] is None:
                del metadata[key]
    if schema is None:
        return unknown
    props = schema.get("properties") or {}
    for key in list(obj):
        if key in _ROOT_FIELDS:
            continue
        if key in props:
            if obj[key] is None and _drops_null(resolve(props[key])):
                del obj[key]
                continue
            obj[key] = _prune_node(obj[key], props[key], key, unknown)
        elif not schema.get("x-kubernetes-preserve-unknown-fields"):
            unknown.append(key)
            del obj[key]
    return unknown


def _default_node(value: Any, schema: Schema | None) -> None:
    schema = resolve(schema)
    if schema is None:
        return
    if isinstance(value, dict):
        for key, prop in (schema.get("properties") or {}).items():
            if "default" not in prop:
                continue
            if key not in value or (value[key] is None and not prop.get("nullable")):
                value[key] = copy.deepcopy(prop["default"])
        for key, child in value.items():
            child_schema, _ = _child_schema(schema, key)
            _default_node(child, child_schema)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            _default_node(item, schema["items"])


def apply_defaults(obj: dict[str, Any], schema: Schema | None) -> None:
    """Fill in schema `default`s recursively (in place), skipping metadata."""
    if schema is None:
        return
    for key, prop in (schema.get("properties") or {}).items():
        if key in _ROOT_FIELDS:
            continue
        if "default" in prop and (
            key not in obj or (obj[key] is None and not prop.get("nullable"))
        ):
            obj[key] = copy.deepcopy(prop["default"])
        if key in obj:
            _default_node(obj[key], prop)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _type_ok(value: Any, expected: str) -> bool:
    actual = _json_type(value)
    if expected == "number":
        return actual in ("integer", "number")
    if expected == "integer" and actual == "number":
        return float(value).is_integer()
    return actual == expected


def _type_error(path: str, expected: str, value: Any) -> FieldError:
    actual = _json_type(value)
    return FieldError(
        "TypeInvalid",
        path,
        f"{path} in body must be of type {expected}: {json.dumps(actual)}",
        actual,
    )


def _validate_number(value: float, schema: Schema, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if "minimum" in schema:
        low = schema["minimum"]
        if schema.get("exclusiveMinimum") is True and value <= low:
            errors.append(
                invalid(path, value, f"{path} in body should be greater than {go_plain(low)}")
            )
        elif value < low:
            errors.append(
                invalid(
                    path,
                    value,
                    f"{path} in body should be greater than or equal to {go_plain(low)}",
                )
            )
    if "maximum" in schema:
        high = schema["maximum"]
        if schema.get("exclusiveMaximum") is True and value >= high:
            errors.append(
                invalid(path, value, f"{path} in body should be less than {go_plain(high)}")
            )
        elif value > high:
            errors.append(
                invalid(
                    path, value, f"{path} in body should be less than or equal to {go_plain(high)}"
                )
            )
    step = schema.get("multipleOf")
    if step and (value / step) != int(value / step):
        errors.append(
            invalid(path, value, f"{path} in body should be a multiple of {go_plain(step)}")
        )
    return errors


def _validate_string(value: str, schema: Schema, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    length = len(value)
    if "minLength" in schema and length < schema["minLength"]:
        errors.append(
            invalid(
                path, value, f"{path} in body should be at least {schema['minLength']} chars long"
            )
        )
    if "maxLength" in schema and length > schema["maxLength"]:
        errors.append(
            FieldError("TooLong", path, f"may not be more than {schema['maxLength']} bytes", value)
        )
    pattern = schema.get("pattern")
    if pattern and not re.search(pattern, value):
        errors.append(invalid(path, value, f"{path} in body should match '{pattern}'"))
    fmt = schema.get("format")
    if fmt in _FORMATS and not _FORMATS[fmt].match(value):
        errors.append(
            invalid(path, value, f"{path} in body must be of type {fmt}: {json.dumps(value)}")
        )
    return errors


def _list_key(item: Any, keys: list[str]) -> Any:
    if not isinstance(item, dict):
        return json.dumps(item, sort_keys=True)
    return json.dumps({k: item.get(k) for k in keys}, sort_keys=True)


def _validate_array(value: list[Any], schema: Schema, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if "minItems" in schema and len(value) < schema["minItems"]:
        errors.append(
            invalid(path, value, f"{path} in body should have at least {schema['minItems']} items")
        )
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        errors.append(
            FieldError("TooMany", path, f"must have at most {schema['maxItems']} items", len(value))
        )
    list_type = schema.get("x-kubernetes-list-type")
    if schema.get("uniqueItems") or list_type in ("set", "map"):
        keys = (schema.get("x-kubernetes-list-map-keys") or []) if list_type == "map" else []
        seen: set[str] = set()
        for i, item in enumerate(value):
            marker = _list_key(item, keys) if keys else json.dumps(item, sort_keys=True)
            if marker in seen:
                shown = {k: item.get(k) for k in keys} if keys and isinstance(item, dict) else item
                errors.append(FieldError("Duplicate", f"{path}[{i}]", "", shown))
            seen.add(marker)
    items = schema.get("items")
    if isinstance(items, dict):
        for i, item in enumerate(value):
            errors.extend(validate_value(item, items, f"{path}[{i}]"))
    return errors


def _validate_object(value: dict[str, Any], schema: Schema, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    for key in schema.get("required") or []:
        if key not in value:
            errors.append(required(_join(path, key)))
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        errors.append(
            invalid(
                path,
                value,
                f"{path} in body should have at least {schema['minProperties']} properties",
            )
        )
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        errors.append(
            FieldError(
                "TooMany", path, f"must have at most {schema['maxProperties']} items", len(value)
            )
        )
    props = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    for key, child in value.items():
        if key in props:
            errors.extend(validate_value(child, props[key], _join(path, key)))
        elif isinstance(extra, dict):
            errors.extend(validate_value(child, extra, _join(path, key)))
    return errors


def _validate_combinators(value: Any, schema: Schema, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    for sub in schema.get("allOf") or []:
        errors.extend(validate_value(value, sub, path))
    any_of = schema.get("anyOf")
    if any_of and all(validate_value(value, sub, path) for sub in any_of):
        errors.append(invalid(path, value, f'{path} in body must be of type "anyOf"'))
    one_of = schema.get("oneOf")
    if one_of:
        passing = sum(1 for sub in one_of if not validate_value(value, sub, path))
        if passing != 1:
            errors.append(
                invalid(
                    path, value, f"{path} in body must validate one and only one schema (oneOf)"
                )
            )
    if isinstance(schema.get("not"), dict) and not validate_value(value, schema["not"], path):
        errors.append(invalid(path, value, f"{path} in body must not validate the schema (not)"))
    return errors


_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


def _int_range_error(value: int, schema: Schema, path: str) -> list[FieldError]:
    """Go decodes into int32/int64 fields: a number out of their range is refused."""
    bounds = _INT_RANGES.get(schema.get("format") or "int64")
    if bounds and not bounds[0] <= value <= bounds[1]:
        kind = schema.get("format") or "int64"
        return [invalid(path, value, f"{path} in body must be of type {kind}: {value}")]
    return []


def validate_value(value: Any, schema: Schema | None, path: str) -> list[FieldError]:
    schema = resolve(schema)
    if not schema:
        return []
    expected = schema.get("type")
    if value is None:
        if schema.get("nullable") or not expected:
            return []
        return [_type_error(path, expected, value)]
    if schema.get("x-kubernetes-int-or-string"):
        if isinstance(value, bool) or not isinstance(value, int | str):
            return [_type_error(path, "integer-or-string", value)]
    elif expected and not _type_ok(value, expected):
        return [_type_error(path, expected, value)]
    errors: list[FieldError] = []
    enum = schema.get("enum")
    if enum is not None and value not in enum:
        supported = ", ".join(json.dumps(go_plain(v)) for v in enum)
        errors.append(FieldError("NotSupported", path, f"supported values: {supported}", value))
    # Each check below is called only when the schema has a key it reads (every node of
    # every write is validated: most have no constraint at all).
    if isinstance(value, int) and not isinstance(value, bool) and expected == "integer":
        errors.extend(_int_range_error(value, schema, path))
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema or "maximum" in schema or "multipleOf" in schema:
            errors.extend(_validate_number(value, schema, path))
    elif isinstance(value, str):
        if "minLength" in schema or "maxLength" in schema or "pattern" in schema or (
            "format" in schema
        ):
            errors.extend(_validate_string(value, schema, path))
    elif isinstance(value, list):
        errors.extend(_validate_array(value, schema, path))
    elif isinstance(value, dict):
        errors.extend(_validate_object(value, schema, path))
    if "allOf" in schema or "anyOf" in schema or "oneOf" in schema or "not" in schema:
        errors.extend(_validate_combinators(value, schema, path))
    return errors


def validate(
    obj: dict[str, Any], schema: Schema | None, *, only: str | None = None
) -> list[FieldError]:
    """Validate an object (apiVersion/kind/metadata excluded) against its schema.

    `only` restricts validation to one top-level field (e.g. "status" for writes to
    the status subresource).
    """
    if schema is None:
        return []
    errors: list[FieldError] = []
    props = schema.get("properties") or {}
    for key in schema.get("required") or []:
        if key not in _ROOT_FIELDS and key not in obj and only in (None, key):
            errors.append(required(key))
    for key, value in obj.items():
        if key in _ROOT_FIELDS or key not in props or only not in (None, key):
            continue
        errors.extend(validate_value(value, props[key], key))
    return errors
