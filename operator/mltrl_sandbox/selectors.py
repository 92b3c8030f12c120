"""Label and field selectors (`?labelSelector=` / `?fieldSelector=`)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


class SelectorError(ValueError):
    pass


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!", "gt", "lt"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("=", "in"):
            return present and value in self.values
        if self.op in ("!=", "notin"):
            return not present or value not in self.values
        if self.op in ("gt", "lt"):
            try:
                number = int(value or "")
            except ValueError:
                return False
            limit = int(self.values[0])
            return number > limit if self.op == "gt" else number < limit
        raise SelectorError(f"unknown operator {self.op}")


_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_KEY_RE = re.compile(f"^{_KEY}$")
_VALUE_RE = re.compile(f"^{_VALUE}$")
_SET_RE = re.compile(r"^(\S+)\s+(in|notin)\s*\((.*)\)$")
_BINARY_RE = re.compile(r"^([^=!<>\s]+)\s*(==|=|!=|>|<)\s*(.*)$")


def _split_top(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for c in text:
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        if c == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(c)
    parts.append("".join(current))
    return [p.strip() for p in parts]


def _check_key(key: str) -> str:
    if not _KEY_RE.match(key):
        raise SelectorError(f"unable to parse requirement: invalid label key {key!r}")
    return key


def _check_value(value: str) -> str:
    if len(value) > 63 or not _VALUE_RE.match(value):
        raise SelectorError(f"unable to parse requirement: invalid label value {value!r}")
    return value


def parse_label_selector(text: str | None) -> tuple[Requirement, ...]:
    if not text or not text.strip():
        return ()
    requirements: list[Requirement] = []
    for part in _split_top(text):
        if not part:
            raise SelectorError(
                f"unable to parse requirement: found '', expected: identifier in {text!r}"
            )
        if m := _SET_RE.match(part):
            values = tuple(_check_value(v.strip()) for v in m.group(3).split(",") if v.strip())
            requirements.append(Requirement(_check_key(m.group(1)), m.group(2), values))
        elif part.startswith("!"):
            requirements.append(Requirement(_check_key(part[1:].strip()), "!"))
        elif m := _BINARY_RE.match(part):
            key, op, value = m.group(1), m.group(2), m.group(3).strip()
            if op in (">", "<"):
                if not re.match(r"^-?\d+$", value):
                    raise SelectorError(
                        "unable to parse requirement: for 'Gt', 'Lt' operators, the value "
                        f"must be an integer: {value!r}"
                    )
                requirements.append(
                    Requirement(_check_key(key), "gt" if op == ">" else "lt", (value,))
                )
            else:
                requirements.append(
                    Requirement(
                        _check_key(key), "!=" if op == "!=" else "=", (_check_value(value),)
                    )
                )
        else:
            requirements.append(Requirement(_check_key(part), "exists"))
    return tuple(requirements)


def labels_match(requirements: tuple[Requirement, ...], labels: Mapping[str, str] | None) -> bool:
    labels = labels or {}
    return all(r.matches(labels) for r in requirements)


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    negate: bool
    value: str


def parse_field_selector(text: str | None) -> tuple[FieldRequirement, ...]:
    if not text or not text.strip():
        return ()
    out: list[FieldRequirement] = []
    for part in _split_top(text):
        if "!=" in part:
            field, _, value = part.partition("!=")
            out.append(FieldRequirement(field.strip(), True, value.strip()))
        elif "==" in part:
            field, _, value = part.partition("==")
            out.append(FieldRequirement(field.strip(), False, value.strip()))
        elif "=" in part:
            field, _, value = part.partition("=")
            out.append(FieldRequirement(field.strip(), False, value.strip()))
        else:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
    return tuple(out)


def field_text(value: Any) -> str:
    """Field selectors compare text; render values as the server's field sets do."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def fields_match(
    requirements: tuple[FieldRequirement, ...],
    obj: Mapping[str, Any],
    getter: Callable[[Mapping[str, Any], str], Any],
) -> bool:
    for r in requirements:
        equal = field_text(getter(obj, r.field)) == r.value
        if equal == r.negate:
            return False
    return True
