from __future__ import annotations

import pytest

from mltrl_sandbox.selectors import (
    SelectorError,
    fields_match,
    labels_match,
    parse_field_selector,
    parse_label_selector,
)

LABELS = {"app": "web", "tier": "gold", "n": "5"}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app=db", False),
        ("app!=db", True),
        ("missing!=x", True),
        ("app in (db, web)", True),
        ("app notin (db,web)", False),
        ("missing notin (x)", True),
        ("tier", True),
        ("!tier", False),
        ("!missing", True),
        ("app=web,tier=gold", True),
        ("app=web,tier=silver", False),
        ("n>3", True),
        ("n<3", False),
        ("app in (web),!missing,tier", True),
    ],
)
def test_label_selectors(selector: str, matches: bool) -> None:
    assert labels_match(parse_label_selector(selector), LABELS) is matches


def test_label_selector_without_labels() -> None:
    assert labels_match(parse_label_selector("!a"), None)
    assert not labels_match(parse_label_selector("a"), None)


@pytest.mark.parametrize("bad", ["a=b c", "=x", "a in (b", "a>b", "a,,b"])
def test_bad_label_selectors(bad: str) -> None:
    with pytest.raises(SelectorError):
        parse_label_selector(bad)


def test_field_selectors() -> None:
    obj = {"metadata": {"name": "x", "namespace": "ns"}, "spec": {"ok": True}}

    def get(o: object, field: str) -> object:
        assert isinstance(o, dict)
        section, key = field.split(".")
        return o[section].get(key)

    assert fields_match(parse_field_selector("metadata.name=x"), obj, get)
    assert fields_match(
        parse_field_selector("metadata.name==x,metadata.namespace!=other"), obj, get
    )
    assert not fields_match(parse_field_selector("metadata.name!=x"), obj, get)
    assert fields_match(parse_field_selector("spec.ok=true"), obj, get)
    with pytest.raises(SelectorError):
        parse_field_selector("metadata.name")
