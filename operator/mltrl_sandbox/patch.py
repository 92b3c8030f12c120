"""PATCH bodies: JSON merge patch, JSON patch, strategic merge patch.

Strategic merge patch follows the built-in kind's published schema: a list whose
`x-kubernetes-patch-strategy` includes `merge` is merged by its
`x-kubernetes-patch-merge-key` (or as a set of primitives), every other list is
replaced; the directives `$patch: replace|delete|merge`, `$retainKeys` and
`$deleteFromPrimitiveList/<f>` are honoured (`$setElementOrder/<f>` is accepted and
ignored).  Without a schema, lists of objects are merged by well-known keys.

Server-side apply lives in `fieldmanager`, with field ownership.

All functions may modify their `target` argument; callers pass a private copy.
"""

from __future__ import annotations

import copy
from typing import Any

from .kubeschemas import resolve

Schema = dict[str, Any]

# List fields merged by a key other than `name` (a subset of the builtin struct tags).
MERGE_KEYS: dict[str, str] = {
    "ownerReferences": "uid",
    "conditions": "type",
    "ports": "containerPort",
    "volumeDevices": "devicePath",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
    "env": "name",
    "tolerations": "key",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
}
# Primitive lists whose patch strategy is "merge" (set union) rather than replace.
MERGE_PRIMITIVE_LISTS = {"finalizers"}


class PatchError(ValueError):
    """A patch that cannot be applied; `code` is the HTTP status to answer."""

    def __init__(self, message: str, code: int = 422) -> None:
        super().__init__(message)
        self.code = code


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = target if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str):
        raise PatchError(f"invalid JSON pointer {path!r}", 400)
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f'JSON pointer must be empty or start with a "/": {path!r}', 400)
    return [_unescape(t) for t in path[1:].split("/")]


def _container(doc: Any, tokens: list[str], path: str) -> Any:
    node = doc
    for token in tokens:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            raise PatchError(f"doc is missing path: {path!r}")
    return node


def _list_index(node: list[Any], token: str, path: str, *, adding: bool) -> int:
    if adding and token == "-":
        return len(node)
    if not token.isdigit() and not (token.startswith("-") and token[1:].isdigit()):
        raise PatchError(f"invalid array index {token!r} in {path!r}")
    index = int(token)
    limit = len(node) if adding else len(node) - 1
    if index < 0 or index > limit:
        raise PatchError(f"array index out of bounds: {index} in {path!r}")
    return index


def _get(doc: Any, path: str) -> Any:
    tokens = _pointer(path)
    return _container(doc, tokens, path)


def _remove(doc: Any, path: str) -> tuple[Any, Any]:
    tokens = _pointer(path)
    if not tokens:
        raise PatchError("cannot remove the document root")
    parent = _container(doc, tokens[:-1], path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"unable to remove nonexistent key: {last}: missing value")
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_list_index(parent, last, path, adding=False))
    raise PatchError(f"doc is missing path: {path!r}")


def _add(doc: Any, path: str, value: Any, *, replace: bool = False) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    parent = _container(doc, tokens[:-1], path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if replace and last not in parent:
            raise PatchError(f"replace operation does not apply: doc is missing key: {path}")
        parent[last] = value
    elif isinstance(parent, list):
        if replace:
            parent[_list_index(parent, last, path, adding=False)] = value
        else:
            parent.insert(_list_index(parent, last, path, adding=True), value)
    else:
        raise PatchError(f"doc is missing path: {path!r}")
    return doc


def json_patch(doc: Any, operations: Any) -> Any:
    """RFC 6902 JSON patch."""
    if not isinstance(operations, list):
        raise PatchError("json patch must be a list of operations", 400)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op:
            raise PatchError(f"invalid operation {op!r}", 400)
        kind = op["op"]
        path = op.get("path", "")
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"missing value for {kind} operation at {path!r}", 400)
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "replace":
            doc = _add(doc, path, copy.deepcopy(op["value"]), replace=True)
        elif kind == "remove":
            doc, _ = _remove(doc, path)
        elif kind == "move":
            doc, value = _remove(doc, op.get("from", ""))
            doc = _add(doc, path, value)
        elif kind == "copy":
            doc = _add(doc, path, copy.deepcopy(_get(doc, op.get("from", ""))))
        elif kind == "test":
            if _get(doc, path) != op["value"]:
                raise PatchError(f"testing value {path} failed: test failed")
        else:
            raise PatchError(f"unexpected kind of operation: {kind!r}", 400)
    return doc


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _strip_directives(v)
            for k, v in value.items()
            if not k.startswith("$") and v is not None
        }
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value


def _merge_key(field: str | None, items: list[Any]) -> str | None:
    """Without a schema: guess the key from well-known field names, else `name`."""
    if not items or not all(isinstance(i, dict) for i in items):
        return None
    candidates = [MERGE_KEYS[field]] if field in MERGE_KEYS else []
    candidates.append("name")
    for key in candidates:
        if all(key in i for i in items if i.get("$patch") != "delete" or key in i):
            return key
    return None


def _list_strategy(
    field: str | None, patch: list[Any], schema: Schema | None
) -> tuple[str, str | None]:
    """("merge", key) for lists merged by key, ("set", None) for primitive sets merged
    by value, ("replace", None) otherwise: from the schema's x-kubernetes-patch-* when
    there is one (the API server's Go struct tags), else guessed."""
    if schema is not None:
        strategy = str(schema.get("x-kubernetes-patch-strategy") or "")
        if "merge" not in strategy.split(","):
            return "replace", None
        key = schema.get("x-kubernetes-patch-merge-key")
        return ("merge", str(key)) if key else ("set", None)
    if field in MERGE_PRIMITIVE_LISTS and all(not isinstance(i, dict | list) for i in patch):
        return "set", None
    key = _merge_key(field, patch)
    return ("merge", key) if key else ("replace", None)


def _merge_list(
    current: Any, patch: list[Any], field: str | None, schema: Schema | None = None
) -> list[Any]:
    if not isinstance(current, list):
        current = []
    strategy, key = _list_strategy(field, patch, schema)
    if strategy == "set":
        return [*current, *(i for i in patch if i not in current)]
    if key is None or not all(isinstance(i, dict) for i in current):
        return [_strip_directives(i) for i in patch]
    item_schema = resolve(schema.get("items")) if schema is not None else None
    result = list(current)
    for item in patch:
        if not isinstance(item, dict):
            raise PatchError(f"{field}: items of a list merged by {key} must be objects", 400)
        match = next((n for n, c in enumerate(result) if c.get(key) == item.get(key)), None)
        if item.get("$patch") == "delete":
            if match is not None:
                result.pop(match)
        elif match is None:
            result.append(_strip_directives(item))
        else:
            result[match] = strategic_merge(result[match], item, None, item_schema)
    return result


def _child(schema: Schema | None, key: str) -> Schema | None:
    if schema is None:
        return None
    props = schema.get("properties") or {}
    if key in props:
        return resolve(props[key])
    extra = schema.get("additionalProperties")
    return resolve(extra) if isinstance(extra, dict) else None


def strategic_merge(
    target: Any, patch: Any, field: str | None = None, schema: Schema | None = None
) -> Any:
    """Strategic merge patch; `schema` (a built-in kind's published schema) gives each
    list's patch strategy and merge key, as Go struct tags do in kube-apiserver."""
    schema = resolve(schema)
    if isinstance(patch, list):
        return _merge_list(target, patch, field, schema)
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return _strip_directives(patch)
    result = target if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            name = key.split("/", 1)[1]
            drop = value if isinstance(value, list) else [value]
            if isinstance(result.get(name), list):
                result[name] = [v for v in result[name] if v not in drop]
            continue
        if value is None or (isinstance(value, dict) and value.get("$patch") == "delete"):
            result.pop(key, None)
        else:
            result[key] = strategic_merge(result.get(key), value, key, _child(schema, key))
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        for key in list(result):
            if key not in retain:
                del result[key]
    return result
