"""The view parses and merges policies once for as long as the policy index is unchanged."""

from __future__ import annotations

from typing import Any

import pytest

from mltrl_operator.api.policy import MLTRLPolicySpec
from mltrl_operator.controllers import view as view_module
from mltrl_operator.controllers.view import NAMESPACES, POLICIES, ClusterView


def _policy(minimum: int, team: str = "ml") -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {"team": team}},
            "serving": {"minimumLevel": minimum}}


def _view(
    entries: list[tuple[str, dict[str, Any]]], labels: dict[str, dict[str, str]]
) -> ClusterView:
    return ClusterView({
        POLICIES: {None: entries},
        NAMESPACES: {name: [value] for name, value in labels.items()},
    })


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    monkeypatch.setattr(view_module, "_POLICY_MEMO", view_module._PolicyMemo())
    calls: list[int] = []
    original = MLTRLPolicySpec.model_validate.__func__  # type: ignore[attr-defined]

    def counting(cls: type[MLTRLPolicySpec], value: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(cls, value, *args, **kwargs)

    monkeypatch.setattr(MLTRLPolicySpec, "model_validate", classmethod(counting))
    return calls


def test_unchanged_entries_are_parsed_once(parses: list[int]) -> None:
    entries = [("strict", _policy(7)), ("loose", _policy(3, team="other"))]
    labels = {"a": {"team": "ml"}, "b": {"team": "other"}}
    first = _view(entries, labels)
    assert first.policy_for("a").minimum_serving_level == 7
    assert first.policy_for("b").minimum_serving_level == 3
    # A later event's view over the very same index entries.
    again = _view(list(entries), labels)
    assert again.policy_for("a").minimum_serving_level == 7
    assert [p.name for p in again.policies()] == ["loose", "strict"]
    assert len(parses) == 2


def test_a_replaced_or_removed_entry_is_seen_at_once(parses: list[int]) -> None:
    entries = [("strict", _policy(7))]
    labels = {"a": {"team": "ml"}}
    assert _view(entries, labels).policy_for("a").minimum_serving_level == 7
    changed = [("strict", _policy(8))]
    assert _view(changed, labels).policy_for("a").minimum_serving_level == 8
    assert _view([], labels).policy_for("a").sources == ()
    relabelled = {"a": {"team": "nobody"}}
    assert _view(changed, relabelled).policy_for("a").sources == ()
    assert _view(changed, labels).policy_for("a").minimum_serving_level == 8
