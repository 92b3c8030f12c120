"""The plugin's writes touch one entry and are guarded so a concurrent writer is never
overwritten; applied with the `jsonpatch` library, as a server would."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import pytest

from mltrl_operator.cli.kubectl_mltrl.reviewing import upsert_ops

MINE = {"reviewer": "bob", "role": "qa", "decision": "approve"}
CAROL = {"reviewer": "carol", "role": "product-owner", "decision": "approve", "time": "t"}


def stored(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "r", "resourceVersion": "7"},
            "spec": {"technology": "fraud", "fromLevel": 6, "toLevel": 7, **spec}}


def apply(body: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = jsonpatch.apply_patch(copy.deepcopy(body), ops)
    return result


def test_a_missing_list_is_created_with_the_entry() -> None:
    body = stored()
    after = apply(body, upsert_ops(body, "approvals", "reviewer", "bob", MINE))
    assert after["spec"]["approvals"] == [MINE]


def test_an_empty_list_gets_the_entry_appended() -> None:
    body = stored(approvals=[])
    after = apply(body, upsert_ops(body, "approvals", "reviewer", "bob", MINE))
    assert after["spec"]["approvals"] == [MINE]


def test_a_missing_list_is_not_created_over_a_concurrent_writer() -> None:
    body = stored()
    ops = upsert_ops(body, "approvals", "reviewer", "bob", MINE)
    meanwhile = stored(approvals=[CAROL])
    meanwhile["metadata"]["resourceVersion"] = "8"
    with pytest.raises(jsonpatch.JsonPatchTestFailed):
        apply(meanwhile, ops)


def test_a_new_entry_is_appended_and_leaves_the_others_alone() -> None:
    body = stored(approvals=[CAROL])
    after = apply(body, upsert_ops(body, "approvals", "reviewer", "bob", MINE))
    assert after["spec"]["approvals"] == [CAROL, MINE]


def test_an_append_survives_other_appends_and_fails_when_the_list_shrank() -> None:
    body = stored(approvals=[CAROL])
    ops = upsert_ops(body, "approvals", "reviewer", "bob", MINE)
    meanwhile = stored(approvals=[CAROL, {"reviewer": "dave", "role": "sre",
                                          "decision": "approve"}])
    # the guard tests the last entry seen; a list that grew keeps it, so the append is safe
    after = apply(meanwhile, ops)
    assert after["spec"]["approvals"][-1] == MINE and len(after["spec"]["approvals"]) == 3
    removed = stored(approvals=[])
    with pytest.raises(jsonpatch.JsonPatchException):
        apply(removed, ops)


def test_ones_own_entry_is_replaced_in_place_and_only_if_still_ones_own() -> None:
    mine_before = {**MINE, "comment": "first look", "time": "t0"}
    body = stored(approvals=[CAROL, mine_before])
    changed = {**MINE, "comment": "second look"}
    ops = upsert_ops(body, "approvals", "reviewer", "bob", changed)
    after = apply(body, ops)
    assert after["spec"]["approvals"] == [CAROL, changed]
    shifted = stored(approvals=[mine_before, CAROL])
    with pytest.raises(jsonpatch.JsonPatchTestFailed):
        apply(shifted, ops)


def test_evidence_is_keyed_by_name() -> None:
    body = stored(evidence=[{"name": "auc", "kind": "metric", "value": 0.8}])
    entry = {"name": "auc", "kind": "metric", "value": 0.94}
    after = apply(body, upsert_ops(body, "evidence", "name", "auc", entry))
    assert after["spec"]["evidence"] == [entry]
