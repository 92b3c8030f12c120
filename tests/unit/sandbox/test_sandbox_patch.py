from __future__ import annotations

from typing import Any

import pytest

from mltrl_sandbox.patch import (
    PatchError,
    json_patch,
    merge_patch,
    strategic_merge,
)


def test_merge_patch_rfc7386() -> None:
    target = {"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]}
    patch = {"a": "z", "c": {"f": None, "h": 1}, "l": [3]}
    assert merge_patch(target, patch) == {"a": "z", "c": {"d": "e", "h": 1}, "l": [3]}
    assert merge_patch({"a": 1}, ["x"]) == ["x"]


def test_json_patch_operations() -> None:
    doc: Any = {"spec": {"items": ["a", "c"], "n": 1}, "metadata": {"labels": {"x/y": "1"}}}
    ops = [
        {"op": "add", "path": "/spec/items/1", "value": "b"},
        {"op": "add", "path": "/spec/items/-", "value": "d"},
        {"op": "replace", "path": "/spec/n", "value": 2},
        {"op": "remove", "path": "/metadata/labels/x~1y"},
        {"op": "copy", "from": "/spec/n", "path": "/spec/m"},
        {"op": "move", "from": "/spec/m", "path": "/spec/k"},
        {"op": "test", "path": "/spec/k", "value": 2},
    ]
    assert json_patch(doc, ops) == {
        "spec": {"items": ["a", "b", "c", "d"], "n": 2, "k": 2},
        "metadata": {"labels": {}},
    }


@pytest.mark.parametrize(
    ("ops", "code"),
    [
        ([{"op": "test", "path": "/a", "value": 2}], 422),
        ([{"op": "remove", "path": "/missing"}], 422),
        ([{"op": "replace", "path": "/missing", "value": 1}], 422),
        ([{"op": "add", "path": "/list/9", "value": 1}], 422),
        ([{"op": "frobnicate", "path": "/a"}], 400),
        ({"op": "add"}, 400),
        ([{"op": "add", "path": "a", "value": 1}], 400),
    ],
)
def test_json_patch_errors(ops: Any, code: int) -> None:
    with pytest.raises(PatchError) as caught:
        json_patch({"a": 1, "list": []}, ops)
    assert caught.value.code == code


def test_strategic_merge_merges_named_lists_and_finalizers() -> None:
    target = {
        "metadata": {"finalizers": ["a"], "ownerReferences": [{"uid": "1", "name": "x"}]},
        "spec": {
            "containers": [{"name": "app", "image": "v1", "env": [{"name": "A", "value": "1"}]}],
            "args": ["--x"],
        },
    }
    patch = {
        "metadata": {"finalizers": ["b", "a"], "ownerReferences": [{"uid": "2", "name": "y"}]},
        "spec": {
            "$setElementOrder/containers": [{"name": "app"}, {"name": "side"}],
            "containers": [
                {"name": "app", "image": "v2", "env": [{"name": "B", "value": "2"}]},
                {"name": "side", "image": "s"},
            ],
            "args": ["--y"],
        },
    }
    assert strategic_merge(target, patch) == {
        "metadata": {
            "finalizers": ["a", "b"],
            "ownerReferences": [{"uid": "1", "name": "x"}, {"uid": "2", "name": "y"}],
        },
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "v2",
                    "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                },
                {"name": "side", "image": "s"},
            ],
            "args": ["--y"],
        },
    }


def test_strategic_merge_directives() -> None:
    target = {
        "items": [{"name": "a", "v": 1}, {"name": "b", "v": 2}],
        "finalizers": ["x", "y"],
        "keep": {"a": 1, "b": 2},
        "gone": {"x": 1},
        "whole": {"a": 1},
    }
    patch = {
        "items": [{"name": "a", "$patch": "delete"}],
        "$deleteFromPrimitiveList/finalizers": ["x"],
        "keep": {"$retainKeys": ["a"], "a": 5},
        "gone": {"$patch": "delete"},
        "whole": {"$patch": "replace", "b": 2},
    }
    assert strategic_merge(target, patch) == {
        "items": [{"name": "b", "v": 2}],
        "finalizers": ["y"],
        "keep": {"a": 5},
        "whole": {"b": 2},
    }
