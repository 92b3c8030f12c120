"""Field ownership (metadata.managedFields) and server-side apply, as kube-apiserver does.

Every write records which manager set which fields, in the FieldsV1 form clients read
(`f:<field>`, `k:{"name":"c"}` for items of keyed lists, `v:"x"` for set members, `.`
for an item itself).  An update hands the fields it changed to its manager (operation
Update) and takes them from everyone else.  An apply (operation Apply):

* conflicts (409) when it sets a field another manager owns to a different value,
  unless forced, which takes the field over;
* merges the applied configuration into the live object (keyed lists by their keys,
  sets by value, everything else replaced);
* removes fields the manager applied before and applies no more, unless another
  manager owns them too.

List semantics come from the schema: `x-kubernetes-list-type`/`-list-map-keys`, or
for built-in kinds the patch strategy and merge key; lists of custom resources without
a list type are atomic, as in structured-merge-diff.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from . import meta
from .kubeschemas import definition, resolve
from .resources import Obj, ResourceType

Path = tuple[str, ...]
Schema = dict[str, Any]

_MANAGED_META = ("labels", "annotations", "finalizers", "ownerReferences")
_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


class Conflicts(Exception):
    """Fields the applier would change that other managers own: (path, manager, version)."""

    def __init__(self, conflicts: list[tuple[str, str, str]]) -> None:
        self.conflicts = conflicts
        managers = sorted({(m, v) for _, m, v in conflicts})
        count = len(conflicts)
        noun = "conflict" if count == 1 else "conflicts"
        if count == 1:
            path, manager, version = conflicts[0]
            message = (
                f'Apply failed with 1 conflict: conflict with "{manager}" using {version}: {path}'
            )
        else:
            lines = []
            for manager, version in managers:
                lines.append(f'conflicts with "{manager}" using {version}:')
                lines.extend(f"- {p}" for p, m, v in conflicts if (m, v) == (manager, version))
            message = f"Apply failed with {count} {noun}: " + "\n".join(lines)
        super().__init__(message)


# reading schemas


def _child(schema: Schema | None, key: str) -> Schema | None:
    schema = resolve(schema)
    if schema is None:
        return None
    props = schema.get("properties") or {}
    if key in props:
        return resolve(props[key])
    extra = schema.get("additionalProperties")
    return resolve(extra) if isinstance(extra, dict) else None


def _list_kind(schema: Schema | None) -> tuple[str, list[str]]:
    if schema is None:
        return "atomic", []
    list_type = schema.get("x-kubernetes-list-type")
    if list_type == "map":
        return "map", list(schema.get("x-kubernetes-list-map-keys") or [])
    if list_type in ("set", "atomic"):
        return str(list_type), []
    key = schema.get("x-kubernetes-patch-merge-key")
    if key:
        return "map", [str(key)]
    if "merge" in str(schema.get("x-kubernetes-patch-strategy") or "").split(","):
        return "set", []
    return "atomic", []


def _is_atomic_map(schema: Schema | None) -> bool:
    return schema is not None and schema.get("x-kubernetes-map-type") == "atomic"


def _item_key(item: Any, keys: list[str]) -> str | None:
    if not isinstance(item, dict) or not keys or any(k not in item for k in keys):
        return None
    return "k:" + json.dumps({k: item[k] for k in keys}, separators=(",", ":"), sort_keys=True)


def _set_key(item: Any) -> str:
    return "v:" + json.dumps(item, separators=(",", ":"))


# field sets: path -> value at that path (items themselves: None)


def _walk(value: Any, schema: Schema | None, prefix: Path, out: dict[Path, Any]) -> None:
    schema = resolve(schema)
    if isinstance(value, dict) and value and not _is_atomic_map(schema):
        for key, child in value.items():
            _walk(child, _child(schema, key), (*prefix, f"f:{key}"), out)
        return
    if isinstance(value, list) and value:
        kind, keys = _list_kind(schema)
        items = resolve(schema.get("items")) if schema else None
        item_keys = [_item_key(i, keys) for i in value] if kind == "map" else []
        if kind == "map" and all(item_keys):
            for item, item_key in zip(value, item_keys, strict=True):
                here = (*prefix, str(item_key))
                out[(*here, ".")] = None
                for key, child in item.items():
                    _walk(child, _child(items, key), (*here, f"f:{key}"), out)
            return
        if kind == "set" and all(not isinstance(i, dict | list) for i in value):
            for item in value:
                out[(*prefix, _set_key(item))] = item
            return
    out[prefix] = value


def _root_schema(rt: ResourceType) -> Schema:
    """The kind's schema with ObjectMeta's (finalizers a set, ownerReferences by uid)."""
    schema = resolve(rt.value_schema()) or {}
    props = {**(schema.get("properties") or {}), "metadata": definition(_OBJECT_META) or {}}
    return {**schema, "properties": props}


def field_set(rt: ResourceType, obj: Obj, subresource: str = "") -> dict[Path, Any]:
    """The fields of `obj` a manager can own (server-set metadata and, where a status
    subresource exists, the other half of the object left out)."""
    out: dict[Path, Any] = {}
    schema = _root_schema(rt)
    for key, value in obj.items():
        if key in ("apiVersion", "kind"):
            continue
        if key == "metadata":
            meta_schema = _child(schema, "metadata")
            for field in _MANAGED_META:
                if isinstance(value, dict) and field in value:
                    here = ("f:metadata", f"f:{field}")
                    _walk(value[field], _child(meta_schema, field), here, out)
            continue
        if rt.status_subresource and (key == "status") != (subresource == "status"):
            continue
        _walk(value, _child(schema, key), (f"f:{key}",), out)
    return out


def to_fields_v1(paths: Any) -> Obj:
    tree: Obj = {}
    for path in sorted(paths):
        node = tree
        for part in path:
            node = node.setdefault(part, {})
    return tree


def from_fields_v1(tree: Any, prefix: Path = ()) -> set[Path]:
    paths: set[Path] = set()
    if not isinstance(tree, dict):
        return paths
    for key, child in tree.items():
        here = (*prefix, key)
        if key == "." or not child:
            paths.add(here)
        else:
            paths |= from_fields_v1(child, here)
    return paths


def render(path: Path) -> str:
    """A path as kube-apiserver prints it in conflicts: .spec.containers[name="c"].image"""
    out = ""
    for part in path:
        if part.startswith("f:"):
            out += "." + part[2:]
        elif part.startswith("k:"):
            keys = json.loads(part[2:])
            out += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in keys.items()) + "]"
        elif part.startswith("v:"):
            out += f"[={part[2:]}]"
    return out


# managedFields entries


def _entries(obj: Obj) -> list[Obj]:
    found = obj.get("metadata", {}).get("managedFields") or []
    return [e for e in found if isinstance(e, dict) and e.get("manager") is not None]


def _entry_paths(entry: Obj) -> set[Path]:
    return from_fields_v1(entry.get("fieldsV1"))


def _is_canonical(tree: Any) -> bool:
    """Whether `tree` is exactly what to_fields_v1 makes of the paths it names (keys in
    order at every level, every leaf `{}`): then to_fields_v1 of those paths is `tree`
    again, and a write that leaves an entry's fields as they were can keep its tree."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            return False
        keys = list(node)
        if keys != sorted(keys):
            return False
        for key, child in node.items():
            if key == "." and child != {}:
                return False
            if child:
                stack.append(child)
            elif child != {}:
                return False
    return True


def _tree_of(paths: set[Path], entry: Obj | None, named: set[Path] | None = None) -> Any:
    """to_fields_v1(paths), or `entry`'s own tree when it names the same paths already
    (`named`: the paths it names, if known)."""
    if entry is not None:
        tree = entry.get("fieldsV1")
        if named is None:
            named = from_fields_v1(tree)
        if named == paths and _is_canonical(tree):
            return tree
    return to_fields_v1(paths)


def _entry(
    manager: str, operation: str, api_version: str, paths: set[Path], sub: str,
    was: Obj | None = None, was_paths: set[Path] | None = None,
) -> Obj:
    """`was`: the manager's entry before this write (its tree is kept if the fields are),
    `was_paths` the paths it names, if known."""
    entry: Obj = {
        "manager": manager,
        "operation": operation,
        "apiVersion": api_version,
        "time": meta.timestamp(),
        "fieldsType": "FieldsV1",
        "fieldsV1": _tree_of(paths, was, was_paths),
    }
    if sub:
        entry["subresource"] = sub
    return entry


def apply_entry(rt: ResourceType, manager: str, paths: set[Path], subresource: str = "") -> Obj:
    """The managedFields entry of an apply that created the object."""
    return _entry(
        manager, "Apply", rt.api_version, paths, "status" if subresource == "status" else ""
    )


def _same_slot(entry: Obj, manager: str, operation: str, sub: str) -> bool:
    return (
        entry.get("manager") == manager
        and entry.get("operation") == operation
        and (entry.get("subresource") or "") == sub
    )


def _rebuild(
    entries: list[Obj], owned_by_others: dict[int, set[Path]], mine: Obj | None,
    named: list[set[Path]] | None = None,
) -> list[Obj]:
    """`named`: the paths each entry names, if known."""
    out = []
    for index, entry in enumerate(entries):
        paths = owned_by_others[index]
        if paths:
            tree = _tree_of(paths, entry, named[index] if named is not None else None)
            # the entry itself when its fields are unchanged: the same JSON, not rebuilt
            out.append(entry if tree is entry.get("fieldsV1") else {**entry, "fieldsV1": tree})
    if mine is not None and mine["fieldsV1"]:
        out.append(mine)
    return out


def updated(
    rt: ResourceType, old: Obj | None, new: Obj, manager: str, subresource: str = ""
) -> list[Obj]:
    """managedFields after a create or update (operation Update) by `manager`."""
    sub = "status" if subresource == "status" else ""
    before = field_set(rt, old, sub) if old is not None else {}
    after = field_set(rt, new, sub)
    if rt.status_subresource:
        # `after` is one half already: only the other is walked
        other = "" if sub == "status" else "status"
        halves = {sub: set(after), other: set(field_set(rt, new, other))}
    else:
        halves = {"": set(after), "status": set(after)}
    changed = {p for p, v in after.items() if p not in before or before[p] != v}
    entries = _entries(old) if old is not None else []
    mine_index = next(
        (i for i, e in enumerate(entries) if _same_slot(e, manager, "Update", sub)), None
    )
    kept: dict[int, set[Path]] = {}
    mine_paths: set[Path] = set(changed)
    named = [_entry_paths(entry) for entry in entries]
    for index, entry in enumerate(entries):
        # fields that are gone are owned by nobody
        paths = named[index] & halves["status" if entry.get("subresource") else ""]
        if index == mine_index:
            mine_paths |= paths
            kept[index] = set()
        else:
            kept[index] = paths - changed
    mine = None
    if mine_paths:
        was = entries[mine_index] if mine_index is not None else None
        was_paths = named[mine_index] if mine_index is not None else None
        mine = _entry(manager, "Update", rt.api_version, mine_paths, sub, was, was_paths)
    if mine_index is not None and not changed:
        mine = entries[mine_index] if mine_paths else None  # unchanged: keep its time
    return _rebuild(entries, kept, mine, named)


# applying


def _merge(live: Any, config: Any, schema: Schema | None) -> Any:
    schema = resolve(schema)
    if isinstance(config, dict) and isinstance(live, dict) and not _is_atomic_map(schema):
        out = dict(live)
        for key, value in config.items():
            out[key] = _merge(live.get(key), value, _child(schema, key))
        return out
    if isinstance(config, list) and isinstance(live, list):
        kind, keys = _list_kind(schema)
        items = resolve(schema.get("items")) if schema else None
        if kind == "map" and all(_item_key(i, keys) for i in [*live, *config]):
            out_list = list(live)
            for item in config:
                key = _item_key(item, keys)
                at = next((n for n, c in enumerate(out_list) if _item_key(c, keys) == key), None)
                if at is None:
                    out_list.append(copy.deepcopy(item))
                else:
                    out_list[at] = _merge(out_list[at], item, items)
            return out_list
        if kind == "set":
            return [*live, *(i for i in config if i not in live)]
    return copy.deepcopy(config)


def _remove(obj: Any, path: Path) -> None:
    """Remove the field or item at `path` (quietly, if it is already gone), and the
    maps and lists that only held it."""
    if path and path[-1] == ".":
        path = path[:-1]
    trail: list[tuple[Any, Any]] = []  # (container, key or index) down to the target
    node = obj
    for part in path:
        if part.startswith("f:") and isinstance(node, dict) and part[2:] in node:
            trail.append((node, part[2:]))
            node = node[part[2:]]
        elif part.startswith(("k:", "v:")) and isinstance(node, list):
            wanted = json.loads(part[2:])
            if part.startswith("k:"):
                found = [
                    i
                    for i, item in enumerate(node)
                    if isinstance(item, dict) and all(item.get(k) == v for k, v in wanted.items())
                ]
            else:
                found = [i for i, item in enumerate(node) if item == wanted]
            if not found:
                return
            trail.append((node, found[0]))
            node = node[found[0]]
        else:
            return
    for depth, (container, key) in enumerate(reversed(trail)):
        if depth and not (isinstance(container[key], dict | list) and not container[key]):
            return
        del container[key]


def _remove_all(obj: Obj, paths: set[Path]) -> None:
    """Remove whole items first; fields inside a removed item go with it."""
    items = {p[:-1] for p in paths if p and p[-1] == "."}
    for path in sorted(items, key=len):
        _remove(obj, path)
    for path in sorted(paths, key=len, reverse=True):
        if path[-1] != "." and not any(path[:i] in items for i in range(1, len(path))):
            _remove(obj, path)


def apply(
    rt: ResourceType,
    live: Obj,
    config: Obj,
    manager: str,
    *,
    force: bool,
    subresource: str = "",
) -> tuple[Obj, list[Obj]]:
    """The live object with `config` applied by `manager`, and its new managedFields."""
    sub = "status" if subresource == "status" else ""
    applied = field_set(rt, config, sub)
    current = field_set(rt, live, sub)
    entries = _entries(live)
    conflicts: list[tuple[str, str, str]] = []
    taken: set[Path] = set()
    for entry in entries:
        if _same_slot(entry, manager, "Apply", sub) or (entry.get("subresource") or "") != sub:
            continue
        for path in _entry_paths(entry) & set(applied):
            if path[-1] == "." or path not in current or current[path] == applied[path]:
                continue
            taken.add(path)
            conflicts.append(
                (render(path), str(entry.get("manager")), str(entry.get("apiVersion") or ""))
            )
    if conflicts and not force:
        raise Conflicts(sorted(set(conflicts)))
    mine_index = next(
        (i for i, e in enumerate(entries) if _same_slot(e, manager, "Apply", sub)), None
    )
    before = _entry_paths(entries[mine_index]) if mine_index is not None else set()
    others: set[Path] = set()
    for index, entry in enumerate(entries):
        if index != mine_index:
            others |= _entry_paths(entry) - taken
    body = {k: v for k, v in config.items() if k not in ("apiVersion", "kind")}
    merged = _merge(live, body, _root_schema(rt))
    _remove_all(merged, before - set(applied) - others)
    kept = {
        index: (set() if index == mine_index else _entry_paths(entry) - taken)
        for index, entry in enumerate(entries)
    }
    mine = _entry(manager, "Apply", rt.api_version, set(applied), sub)
    if mine_index is not None and before == set(applied) and not taken:
        mine = entries[mine_index]  # the same configuration again: keep its time
    return merged, _rebuild(entries, kept, mine)
