"""The subset of kubectl-style JSONPath used by printer columns and selectable fields.

Supported: `.a.b`, `['a.b']`, `.a[0]`, `.a[-1]`, `.a[*]`, `.*`, `..a` (recursive),
`.a[1:3]`, and filters `[?(@.type=='Ready')]`, `[?(@.ok==true)]`, `[?(@.n>2)]`,
`[?(@.x)]`.  Keys containing dots may be escaped as `a\\.b`.  Braces `{...}` and a
leading `$` are accepted and ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any


class JSONPathError(ValueError):
    pass


@dataclass(frozen=True)
class _Key:
    name: str


@dataclass(frozen=True)
class _Recurse:
    name: str | None


@dataclass(frozen=True)
class _Wild:
    pass


@dataclass(frozen=True)
class _Index:
    index: int


@dataclass(frozen=True)
class _Slice:
    start: int | None
    stop: int | None


@dataclass(frozen=True)
class _Filter:
    path: tuple[Any, ...]
    op: str | None
    literal: Any


_Step = _Key | _Recurse | _Wild | _Index | _Slice | _Filter

_FILTER_RE = re.compile(r"^\s*@((?:\.[^\s=!<>]+|\[[^\]]*\])*)\s*(?:(==|!=|<=|>=|<|>)\s*(.+?))?\s*$")


def _literal(text: str) -> Any:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    if text == "null":
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError as exc:
        raise JSONPathError(f"unrecognized literal {text!r}") from exc


def _read_name(expr: str, i: int) -> tuple[str, int]:
    name = []
    while i < len(expr) and expr[i] not in ".[":
        if expr[i] == "\\" and i + 1 < len(expr):
            name.append(expr[i + 1])
            i += 2
            continue
        name.append(expr[i])
        i += 1
    return "".join(name), i


def _bracket_end(expr: str, i: int) -> int:
    """Index of the `]` closing the bracket opened at i, skipping quoted text."""
    quote = None
    depth = 0
    for j in range(i, len(expr)):
        c = expr[j]
        if quote:
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
            if depth == 0:
                return j
    raise JSONPathError(f"unterminated [ in {expr!r}")


def _bracket(content: str) -> _Step:
    content = content.strip()
    if content == "*":
        return _Wild()
    if content.startswith("?"):
        inner = content[1:].strip()
        if not (inner.startswith("(") and inner.endswith(")")):
            raise JSONPathError(f"bad filter {content!r}")
        m = _FILTER_RE.match(inner[1:-1])
        if not m:
            raise JSONPathError(f"unsupported filter {content!r}")
        path = _parse_steps(m.group(1)) if m.group(1) else ()
        literal = _literal(m.group(3)) if m.group(2) else None
        return _Filter(path, m.group(2), literal)
    if len(content) >= 2 and content[0] == content[-1] and content[0] in "'\"":
        return _Key(content[1:-1])
    if ":" in content:
        start, _, stop = content.partition(":")
        stop = stop.split(":")[0]
        return _Slice(int(start) if start.strip() else None, int(stop) if stop.strip() else None)
    try:
        return _Index(int(content))
    except ValueError as exc:
        raise JSONPathError(f"unsupported subscript [{content}]") from exc


def _parse_steps(expr: str) -> tuple[_Step, ...]:
    steps: list[_Step] = []
    i = 0
    while i < len(expr):
        c = expr[i]
        if expr.startswith("..", i):
            i += 2
            if i < len(expr) and expr[i] == "[":
                steps.append(_Recurse(None))
                continue
            name, i = _read_name(expr, i)
            steps.append(_Recurse(name or None))
        elif c == ".":
            name, i = _read_name(expr, i + 1)
            if name == "*":
                steps.append(_Wild())
            elif name:
                steps.append(_Key(name))
        elif c == "[":
            end = _bracket_end(expr, i)
            steps.append(_bracket(expr[i + 1 : end]))
            i = end + 1
        else:
            name, i = _read_name(expr, i)
            steps.append(_Key(name))
    return tuple(steps)


@lru_cache(maxsize=512)
def parse(expr: str) -> tuple[_Step, ...]:
    text = expr.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if text.startswith("$"):
        text = text[1:]
    return _parse_steps(text)


def _children(node: Any) -> Iterator[Any]:
    if isinstance(node, dict):
        yield from node.values()
    elif isinstance(node, list):
        yield from node


def _descendants(node: Any) -> Iterator[Any]:
    yield node
    for child in _children(node):
        yield from _descendants(child)


def _compare(left: Any, op: str, right: Any) -> bool:
    if op in ("==", "!="):
        # true must not equal 1: JSON booleans and numbers are different kinds
        if isinstance(left, bool) or isinstance(right, bool):
            same = isinstance(left, bool) and isinstance(right, bool) and left == right
        else:
            same = bool(left == right)
        return same if op == "==" else not same
    try:
        if op == "<":
            return bool(left < right)
        if op == "<=":
            return bool(left <= right)
        if op == ">":
            return bool(left > right)
        if op == ">=":
            return bool(left >= right)
    except TypeError:
        return False
    raise JSONPathError(f"unknown operator {op}")


def _step(nodes: list[Any], step: _Step) -> list[Any]:
    out: list[Any] = []
    for node in nodes:
        if isinstance(step, _Key):
            if isinstance(node, dict) and step.name in node:
                out.append(node[step.name])
        elif isinstance(step, _Wild):
            out.extend(_children(node))
        elif isinstance(step, _Index):
            if isinstance(node, list) and -len(node) <= step.index < len(node):
                out.append(node[step.index])
        elif isinstance(step, _Slice):
            if isinstance(node, list):
                out.extend(node[step.start : step.stop])
        elif isinstance(step, _Recurse):
            for d in _descendants(node):
                if step.name is None:
                    out.append(d)
                elif isinstance(d, dict) and step.name in d:
                    out.append(d[step.name])
        elif isinstance(step, _Filter):
            items = (
                node
                if isinstance(node, list)
                else list(node.values())
                if isinstance(node, dict)
                else []
            )
            for item in items:
                found = _evaluate(item, step.path)
                if step.op is None:
                    if found:
                        out.append(item)
                elif found and _compare(found[0], step.op, step.literal):
                    out.append(item)
    return out


def _evaluate(obj: Any, steps: tuple[_Step, ...]) -> list[Any]:
    nodes = [obj]
    for step in steps:
        nodes = _step(nodes, step)
        if not nodes:
            break
    return nodes


def find(obj: Any, expr: str) -> list[Any]:
    """All values `expr` selects in `obj` (empty when nothing matches)."""
    return _evaluate(obj, parse(expr))


def first(obj: Any, expr: str, default: Any = None) -> Any:
    found = find(obj, expr)
    return found[0] if found else default
