"""Request bodies read as JSON with limits, so a hostile or broken body is a 400 naming
the problem (never a RecursionError, a NaN in a status, or a lone surrogate the API
server refuses later).

Shared by the alert receiver and the admission webhooks; both check the size first
(413), so this bounds what the size cannot: nesting and content.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 64
"""Deeper than any Kubernetes object or Alertmanager notification; CPython's json
recursion runs out near 1,000 levels, so the limit is checked before parsing."""


class JsonBodyError(ValueError):
    """The body is not acceptable JSON; the message says why, for the 400 answer."""


def _depth(text: str) -> int:
    """The deepest nesting of [ and { outside strings, in one pass without recursion."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _refuse_constant(name: str) -> Any:
    raise JsonBodyError(f"{name} is not a JSON number")


def load_json(raw: bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """The parsed document, or JsonBodyError naming the problem."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise JsonBodyError(
            f"the body is not UTF-8 (byte {error.start})"
        ) from None
    if (deepest := _depth(text)) > max_depth:
        raise JsonBodyError(
            f"nested {deepest} levels deep, more than the {max_depth} allowed"
        )
    try:
        document = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as error:
        raise JsonBodyError(
            f"{error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    except RecursionError:  # not reachable below MAX_DEPTH; kept as a last guard
        raise JsonBodyError("nested too deeply") from None
    try:
        # A lone surrogate (\ud800) parses, but nothing downstream can encode it.
        json.dumps(document, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise JsonBodyError("a string holds a lone UTF-16 surrogate") from None
    return document
