"""Request bodies decoded as kube-apiserver's Go decoder does.

Python's json module accepts NaN and Infinity and integers of any size; Go's refuses
the first two outright, and the API machinery decodes integers into int64.  YAML's
`.nan`/`.inf` are refused the same way.
"""

from __future__ import annotations

import json
import math
from typing import Any

import yaml

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class BodyError(ValueError):
    """A body kube-apiserver's decoder would refuse (answered 400 by the caller)."""


def _refuse_constant(name: str) -> Any:
    raise BodyError(f"invalid character '{name[0]}' looking for beginning of value")


def loads(raw: bytes | str) -> Any:
    """json.loads, refusing NaN/Infinity and integers beyond int64."""
    value = json.loads(raw, parse_constant=_refuse_constant)
    check_numbers(value)
    return value


def check_numbers(value: Any) -> None:
    """Refuse numbers Go cannot hold (iterative: bodies may be deep)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, bool):
            continue
        elif isinstance(item, int) and not INT64_MIN <= item <= INT64_MAX:
            raise BodyError(f"json: cannot unmarshal number {item} into Go value of type int64")
        elif isinstance(item, float) and not math.isfinite(item):
            raise BodyError(f"json: unsupported value: {item}")


class _YamlLoader(yaml.SafeLoader):
    """YAML as Kubernetes reads it (into JSON): a timestamp stays a string."""


_YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_yaml(text: str) -> Any:
    """yaml.safe_load without datetimes, refusing what `loads` refuses."""
    value = yaml.load(text, Loader=_YamlLoader)
    check_numbers(value)
    return value
