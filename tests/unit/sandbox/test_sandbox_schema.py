"""Pruning, defaulting and validation against structural schemas, with the real texts."""

from __future__ import annotations

import copy
from typing import Any

from mltrl_sandbox import schema

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["owner"],
            "properties": {
                "owner": {"type": "string", "minLength": 1, "maxLength": 8},
                "level": {"type": "integer", "minimum": 0, "maximum": 9, "default": 0},
                "ratio": {"type": "number", "exclusiveMaximum": True, "maximum": 1},
                "mode": {"type": "string", "enum": ["a", "b"], "default": "a"},
                "tag": {"type": "string", "pattern": "^[a-z]+$"},
                "when": {"type": "string", "format": "date-time"},
                "port": {"x-kubernetes-int-or-string": True},
                "note": {"type": "string", "nullable": True},
                "flags": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 2,
                    "items": {"type": "boolean"},
                },
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "empty": {"type": "object"},
                "nested": {
                    "type": "object",
                    "default": {},
                    "properties": {
                        "depth": {"type": "integer", "default": 2},
                        "items": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "name": {"type": "string"},
                                    "weight": {"type": "integer", "default": 1},
                                },
                            },
                        },
                    },
                },
                "set": {
                    "type": "array",
                    "x-kubernetes-list-type": "set",
                    "items": {"type": "string"},
                },
            },
        },
        "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
    },
}


def obj(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "x/v1",
        "kind": "X",
        "metadata": {"name": "n"},
        "spec": {"owner": "o", **spec},
    }


def messages(value: dict[str, Any]) -> list[str]:
    return [str(e) for e in schema.validate(value, SCHEMA)]


def test_valid_object_has_no_errors() -> None:
    assert (
        messages(obj(level=3, ratio=0.5, tag="abc", when="2026-11-22T10:00:00Z", port="http")) == []
    )
    assert (
        messages(obj(port=8080, note=None, labels={"a": "b"}, free={"x": [1, {"y": None}]})) == []
    )


def test_required_and_bounds_use_the_api_servers_wording() -> None:
    assert messages({"spec": {"level": 12}}) == [
        "spec.owner: Required value",
        "spec.level: Invalid value: 12: spec.level in body should be less than or equal to 9",
    ]
    assert messages(obj(level=-1)) == [
        "spec.level: Invalid value: -1: spec.level in body should be greater than or equal to 0"
    ]
    assert messages(obj(ratio=1)) == [
        "spec.ratio: Invalid value: 1: spec.ratio in body should be less than 1"
    ]


def test_types_enums_strings_and_arrays() -> None:
    assert messages(obj(level="3")) == [
        'spec.level: Invalid value: "string": spec.level in body must be of type integer: "string"'
    ]
    assert messages(obj(mode="c")) == [
        'spec.mode: Unsupported value: "c": supported values: "a", "b"'
    ]
    assert messages(obj(owner="")) == [
        'spec.owner: Invalid value: "": spec.owner in body should be at least 1 chars long'
    ]
    assert messages(obj(owner="much-too-long")) == [
        "spec.owner: Too long: may not be more than 8 bytes"
    ]
    assert messages(obj(tag="ABC")) == [
        "spec.tag: Invalid value: \"ABC\": spec.tag in body should match '^[a-z]+$'"
    ]
    assert messages(obj(when="yesterday")) == [
        'spec.when: Invalid value: "yesterday": '
        'spec.when in body must be of type date-time: "yesterday"'
    ]
    assert messages(obj(flags=[])) == [
        "spec.flags: Invalid value: []: spec.flags in body should have at least 1 items"
    ]
    assert messages(obj(flags=[True, False, True])) == [
        "spec.flags: Too many: 3: must have at most 2 items"
    ]
    assert messages(obj(flags=["yes"])) == [
        'spec.flags[0]: Invalid value: "string": '
        'spec.flags[0] in body must be of type boolean: "string"'
    ]
    assert messages(obj(labels={"a": 1})) == [
        'spec.labels.a: Invalid value: "integer": '
        'spec.labels.a in body must be of type string: "integer"'
    ]
    assert messages(obj(port=1.5)) == [
        'spec.port: Invalid value: "number": '
        'spec.port in body must be of type integer-or-string: "number"'
    ]
    assert messages(obj(owner=None)) == [
        'spec.owner: Invalid value: "null": spec.owner in body must be of type string: "null"'
    ]
    assert messages(obj(set=["a", "a"])) == ['spec.set[1]: Duplicate value: "a"']


def test_validation_can_be_limited_to_status() -> None:
    bad = {"spec": {"level": 99}, "status": {"phase": 1}}
    assert [str(e) for e in schema.validate(bad, SCHEMA, only="status")] == [
        'status.phase: Invalid value: "integer": '
        'status.phase in body must be of type string: "integer"'
    ]


def test_pruning_reports_unknown_fields_and_keeps_declared_ones() -> None:
    value = obj(
        bogus=1,
        labels={"k": "v"},
        free={"anything": {"goes": True}},
        empty={"dropped": 1},
        nested={"items": [{"name": "x", "junk": 2}]},
    )
    value["metadata"]["surprise"] = "!"
    value["toplevel"] = True
    unknown = schema.prune(value, SCHEMA)
    assert sorted(unknown) == sorted(
        [
            "metadata.surprise",
            "toplevel",
            "spec.bogus",
            "spec.empty.dropped",
            "spec.nested.items[0].junk",
        ]
    )
    assert value["spec"]["labels"] == {"k": "v"}
    assert value["spec"]["free"] == {"anything": {"goes": True}}
    assert value["spec"]["empty"] == {}
    assert value["spec"]["nested"] == {"items": [{"name": "x"}]}
    assert "toplevel" not in value and "surprise" not in value["metadata"]


def test_pruning_turns_whole_floats_into_integers() -> None:
    value = obj(level=4.0)
    schema.prune(value, SCHEMA)
    assert value["spec"]["level"] == 4 and isinstance(value["spec"]["level"], int)


def test_defaults_apply_recursively() -> None:
    value = obj(nested={"items": [{"name": "a"}, {"name": "b", "weight": 5}]})
    schema.apply_defaults(value, SCHEMA)
    assert value["spec"]["level"] == 0 and value["spec"]["mode"] == "a"
    assert value["spec"]["nested"] == {
        "depth": 2,
        "items": [{"name": "a", "weight": 1}, {"name": "b", "weight": 5}],
    }
    bare = obj()
    schema.apply_defaults(bare, SCHEMA)
    assert bare["spec"]["nested"] == {"depth": 2}  # a defaulted object gets its own defaults
    untouched = {"metadata": {"name": "n"}}
    schema.apply_defaults(untouched, SCHEMA)
    assert untouched == {"metadata": {"name": "n"}}  # no spec, nothing to default into


def test_defaults_do_not_share_state_between_objects() -> None:
    first, second = obj(), obj()
    schema.apply_defaults(first, SCHEMA)
    schema.apply_defaults(second, SCHEMA)
    first["spec"]["nested"]["depth"] = 99
    assert second["spec"]["nested"]["depth"] == 2
    assert SCHEMA["properties"]["spec"]["properties"]["nested"]["default"] == {}


def test_null_for_a_defaulted_non_nullable_field_gets_the_default() -> None:
    value = obj(mode=None)
    schema.apply_defaults(value, SCHEMA)
    assert value["spec"]["mode"] == "a"


def test_validate_does_not_modify_its_input() -> None:
    value = obj(level=3)
    before = copy.deepcopy(value)
    schema.validate(value, SCHEMA)
    assert value == before
