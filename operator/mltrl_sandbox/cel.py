"""CEL, the sandbox's one home for it: webhook `matchConditions` and CRD validation rules
(`x-kubernetes-validations`), evaluated with cel-python plus the Kubernetes extension
functions a rule is likely to use (strings: lowerAscii, upperAscii, trim, split, join,
replace, indexOf, lastIndexOf; regex: find, findAll; lists: isSorted, sum, min, max).

cel-python (and its grammar) is loaded on the first expression, so a sandbox whose CRDs
and webhooks have no CEL starts without it.  Programs are compiled once per expression.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Mapping
from typing import Any

from .errors import FieldError
from .kubeschemas import resolve

Schema = dict[str, Any]


class CelError(ValueError):
    """An expression that does not compile, or an evaluation error."""


@functools.cache
def _environment() -> Any:
    import celpy  # cel-python and its grammar cost 0.3 s: loaded for the first rule

    return celpy.Environment()


def _extensions() -> dict[str, Any]:
    from celpy import celtypes

    def string(value: Any) -> Any:
        return celtypes.StringType(value)

    def strings(values: Any) -> Any:
        return celtypes.ListType([celtypes.StringType(v) for v in values])

    def index_of(target: Any, item: Any) -> Any:
        if isinstance(target, str):
            return celtypes.IntType(target.find(str(item)))
        return celtypes.IntType(list(target).index(item) if item in target else -1)

    def last_index_of(target: Any, item: Any) -> Any:
        if isinstance(target, str):
            return celtypes.IntType(target.rfind(str(item)))
        found = [i for i, v in enumerate(target) if v == item]
        return celtypes.IntType(found[-1] if found else -1)

    def find(text: Any, pattern: Any) -> Any:
        match = re.search(str(pattern), str(text))
        return string(match.group(0) if match else "")

    def strict(operator: Any) -> Any:
        """CEL's && and || take bools (or errors) only: `'x' && true` is no overload."""

        def logical(left: Any, right: Any) -> Any:
            for operand in (left, right):
                if not isinstance(operand, celtypes.BoolType | Exception):
                    raise TypeError(f"no matching overload for a logical operator on {operand!r}")
            return operator(left, right)

        return logical

    return {
        "_&&_": strict(celtypes.logical_and),
        "_||_": strict(celtypes.logical_or),
        "lowerAscii": lambda s: string(str(s).lower()),
        "upperAscii": lambda s: string(str(s).upper()),
        "trim": lambda s: string(str(s).strip()),
        "split": lambda s, sep: strings(str(s).split(str(sep))),
        "join": lambda values, sep="": string(str(sep).join(str(v) for v in values)),
        "replace": lambda s, old, new: string(str(s).replace(str(old), str(new))),
        "indexOf": index_of,
        "lastIndexOf": last_index_of,
        "find": find,
        "findAll": lambda text, pattern: strings(
            m.group(0) for m in re.finditer(str(pattern), str(text))
        ),
        "isSorted": lambda values: celtypes.BoolType(list(values) == sorted(values)),
        "sum": lambda values: functools.reduce(lambda a, b: a + b, values, celtypes.IntType(0)),
        "min": lambda values: min(values),
        "max": lambda values: max(values),
    }


@functools.lru_cache(maxsize=512)
def compile_expression(source: str) -> Any:
    """A runnable program; raises CelError when the expression does not compile."""
    env = _environment()
    try:
        return env.program(env.compile(source), functions=_extensions())
    except Exception as error:  # cel-python raises its own parse errors
        raise CelError(f"compilation failed: {error}") from error


def _to_cel(value: Any) -> Any:
    from celpy.adapter import json_to_cel

    return json_to_cel(value)


def _from_cel(value: Any) -> Any:
    from celpy import celtypes

    if isinstance(value, celtypes.BoolType):
        return bool(value)
    if isinstance(value, celtypes.IntType | celtypes.UintType):
        return int(value)
    if isinstance(value, celtypes.DoubleType):
        return float(value)
    if isinstance(value, celtypes.StringType):
        return str(value)
    if isinstance(value, celtypes.MapType):
        return {_from_cel(k): _from_cel(v) for k, v in value.items()}
    if isinstance(value, celtypes.ListType):
        return [_from_cel(v) for v in value]
    return value


def _short(error: BaseException) -> str:
    """cel-python's message without the activation dump it appends."""
    text = str(error.args[0] if error.args else error)
    return text.split(" (in activation", 1)[0]


def evaluate(source: str, variables: Mapping[str, Any]) -> Any:
    """The value of `source` with JSON-shaped `variables`; CelError on any error."""
    program = compile_expression(source)
    try:
        result = program.evaluate({k: _to_cel(v) for k, v in variables.items()})
    except Exception as error:
        raise CelError(_short(error)) from error
    if isinstance(result, Exception):
        raise CelError(_short(result))
    return _from_cel(result)


def evaluate_condition(source: str, variables: Mapping[str, Any]) -> bool:
    """A condition's value, which must be a bool."""
    value = evaluate(source, variables)
    if not isinstance(value, bool):
        raise CelError(f"expected a bool, got {type(value).__name__}")
    return value


# x-kubernetes-validations

_MISSING = object()


def _type_name(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "string"


def _rule_errors(rule: Mapping[str, Any], value: Any, old: Any, path: str) -> list[FieldError]:
    source = str(rule.get("rule", ""))
    transition = "oldSelf" in source
    if transition and old is _MISSING and not rule.get("optionalOldSelf"):
        return []  # a transition rule only judges updates
    variables: dict[str, Any] = {"self": value}
    if transition:
        variables["oldSelf"] = None if old is _MISSING else old
    field = path + str(rule.get("fieldPath") or "")
    reason = {
        "FieldValueRequired": "Required",
        "FieldValueDuplicate": "Duplicate",
        "FieldValueForbidden": "Forbidden",
    }.get(str(rule.get("reason") or ""), "Invalid")
    try:
        holds = evaluate_condition(source, variables)
    except CelError as error:
        return [FieldError("Invalid", field or "<nil>", f"{error}, evaluating rule: {source}")]
    if holds:
        return []
    message = str(rule.get("message") or f"failed rule: {source}")
    if rule.get("messageExpression"):
        # on an error the static message stands in, as on a real server
        with contextlib.suppress(CelError):
            message = str(evaluate(str(rule["messageExpression"]), variables))
    return [FieldError(reason, field or "<nil>", message, _type_name(value))]


def _children(value: Any, old: Any, schema: Schema) -> list[tuple[str, Any, Any, Schema]]:
    out: list[tuple[str, Any, Any, Schema]] = []
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for key, child in value.items():
            sub = props.get(key) if key in props else extra if isinstance(extra, dict) else None
            if sub is not None:
                previous = old.get(key, _MISSING) if isinstance(old, dict) else _MISSING
                out.append((f".{key}", child, previous, sub))
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        keys = schema.get("x-kubernetes-list-map-keys") or []
        for index, item in enumerate(value):
            before: Any = _MISSING
            if keys and isinstance(old, list) and isinstance(item, dict):
                wanted = {k: item.get(k) for k in keys}
                before = next(
                    (
                        o
                        for o in old
                        if isinstance(o, dict) and {k: o.get(k) for k in keys} == wanted
                    ),
                    _MISSING,
                )
            out.append((f"[{index}]", item, before, schema["items"]))
    return out


_RULES_SEEN: dict[int, tuple[Schema, bool]] = {}


def _has_rules(schema: Schema) -> bool:
    """Whether a schema has any rule at all (looked up once per schema object)."""
    seen = _RULES_SEEN.get(id(schema))
    if seen is None or seen[0] is not schema:
        seen = (schema, "x-kubernetes-validations" in repr(schema))
        _RULES_SEEN[id(schema)] = seen
    return seen[1]


def rule_errors(
    obj: Any, schema: Schema | None, old: Any = None, *, only: str | None = None
) -> list[FieldError]:
    """Every failed `x-kubernetes-validations` rule of `obj` (with `old` for transition
    rules), as field errors with kube-apiserver's texts; `only` limits them to one
    top-level field (the status subresource)."""
    if schema is None or not _has_rules(schema):
        return []
    before = _MISSING if old is None else old
    if only is None:
        return _walk(obj, before, schema, "")
    sub = (schema.get("properties") or {}).get(only)
    if sub is None or only not in obj:
        return []
    previous = before.get(only, _MISSING) if isinstance(before, dict) else _MISSING
    return _walk(obj[only], previous, sub, f".{only}")


def _walk(value: Any, old: Any, schema: Schema, path: str) -> list[FieldError]:
    resolved = resolve(schema)
    if resolved is None or value is None:
        return []
    errors: list[FieldError] = []
    for rule in resolved.get("x-kubernetes-validations") or []:
        if isinstance(rule, Mapping):
            errors.extend(_rule_errors(rule, value, old, path.lstrip(".")))
    for suffix, child, before, sub in _children(value, old, resolved):
        errors.extend(_walk(child, before, sub, path + suffix))
    return errors


def schema_rule_errors(schema: Any, path: str) -> list[FieldError]:
    """Rules of a CRD's schema that do not compile (refused when the CRD is written)."""
    found: list[FieldError] = []
    if isinstance(schema, dict):
        for index, rule in enumerate(schema.get("x-kubernetes-validations") or []):
            source = rule.get("rule") if isinstance(rule, dict) else None
            where = f"{path}.x-kubernetes-validations[{index}].rule"
            try:
                compile_expression(str(source or ""))
            except CelError as error:
                found.append(FieldError("Invalid", where, str(error), source))
        for key, value in schema.items():
            if key == "properties" and isinstance(value, dict):
                for name, sub in value.items():
                    found += schema_rule_errors(sub, f"{path}.properties[{name}]")
            elif key in ("items", "additionalProperties") and isinstance(value, dict):
                found += schema_rule_errors(value, f"{path}.{key}")
    return found
