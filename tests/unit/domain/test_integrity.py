"""The integrity rules as pure functions: which approvals count, entry, owners and claims."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from mltrl_operator.api.review import ReviewPhase, ReviewType
from mltrl_operator.api.technology import (
    EntryStatus,
    KnownGoodModel,
    LevelTransition,
    MLTechnologyStatus,
    OwnerRecord,
    TransitionKind,
)
from mltrl_operator.domain.approvals import (
    holds_role,
    judge_approvals,
    review_content,
    what_changed,
)
from mltrl_operator.domain.claims import claim_action, served_storage_uri, technologys_own
from mltrl_operator.domain.entry import (
    entry_floor,
    entry_level_change,
    entry_status,
    level_after_entry,
)
from mltrl_operator.domain.gating import GateAction, serving_gate
from mltrl_operator.domain.owners import integrity_events, owners_since_level, record_owner
from mltrl_operator.domain.policy import DEFAULT_POLICY, effective_policy
from mltrl_operator.domain.reviews import evaluate_review, technology_facts

from .builders import (
    BOUND_DEFAULT,
    DEFAULT_EVIDENCE,
    NOW_TEXT,
    approve,
    check,
    model,
    named_policy,
    review,
    stamped,
    tech_spec,
)

LATER = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _at_level(level: int, **fields: object) -> MLTechnologyStatus:
    return MLTechnologyStatus.model_validate({
        "level": level,
        "history": [{"to": level, "kind": "entry", "by": ["mltrl-operator"], "at": NOW_TEXT}],
        **fields,
    })


# --- approvals -------------------------------------------------------------------------


def test_an_unstamped_approval_counts_for_nothing_and_is_named() -> None:
    spec = review(4, 5, DEFAULT_EVIDENCE[5], [approve("bob", "qa")], stamp=False)
    judgement = judge_approvals(spec, owners=frozenset({"alice"}), model=None,
                                policy=BOUND_DEFAULT)
    assert judgement.counting == ()
    assert [d.reviewer for d in judgement.dismissed] == ["bob"]
    assert "not stamped by the admission webhook" in judgement.dismissed[0].reason


def test_changed_evidence_dismisses_earlier_approvals_and_says_what_changed() -> None:
    spec = review(4, 5, [check("ci")], [approve("bob", "qa")])
    changed = spec.model_copy(update={"evidence": [check("ci", passed=False)]})
    judgement = judge_approvals(changed, owners=frozenset({"alice"}), model=None,
                                policy=BOUND_DEFAULT)
    assert judgement.counting == ()
    assert judgement.dismissed[0].reason == "evidence ci changed after bob approved"
    # A re-approval (stamped on the new content) counts.
    again = stamped(changed.model_copy(update={
        "approvals": [a.model_copy(update={"approved_by": None}) for a in changed.approvals]
    }))
    assert len(judge_approvals(again, owners=frozenset(), model=None,
                               policy=BOUND_DEFAULT).counting) == 1


def test_a_new_model_dismisses_approvals_unless_the_policy_keeps_stale_ones() -> None:
    spec = review(4, 5, [check("ci")], [approve("bob")], model=model("v1"))
    judgement = judge_approvals(spec, owners=frozenset(), model=model("v2"), policy=BOUND_DEFAULT)
    assert judgement.dismissed[0].reason == (
        "the technology's spec.model changed after bob approved"
    )
    lenient = replace(BOUND_DEFAULT, dismiss_stale_approvals=False)
    assert len(judge_approvals(spec, owners=frozenset(), model=model("v2"),
                               policy=lenient).counting) == 1


def test_what_changed_names_added_and_removed_evidence() -> None:
    before = review_content(review(4, 5, [check("ci")]), None)
    after = review_content(review(4, 5, [check("lint")]), None)
    assert what_changed(before, after) == ["evidence ci removed", "evidence lint added"]


def test_a_role_is_held_only_where_every_binding_policy_grants_it() -> None:
    policy = effective_policy([
        named_policy("a", reviewers=[{"role": "qa", "users": ["bob"]}]),
        named_policy("b", reviewers=[{"role": "qa", "groups": ["qa-team"]}]),
    ], {})
    assert not holds_role(policy, "qa", "bob", [])
    assert holds_role(policy, "qa", "bob", ["qa-team"])
    assert not holds_role(policy, "sre", "bob", ["qa-team"])  # bound by no policy


def test_a_role_named_by_oneself_does_not_count_and_unmet_says_why() -> None:
    policy = replace(
        effective_policy([named_policy("production",
                                       reviewers=[{"role": "qa", "users": ["bob"]}])], {}),
    )
    spec = review(6, 7, DEFAULT_EVIDENCE[7], [approve("mallory", "qa"), approve("dave", "x")])
    facts = technology_facts("fraud", tech_spec(entryLevel=6), _at_level(6))
    result = evaluate_review("r", spec, facts, policy)
    assert result.phase is ReviewPhase.PENDING
    assert "role qa: mallory approved as qa but policy production does not bind them to it" in (
        result.unmet
    )
    assert "role product-owner: no reviewers bound by policy production" in result.unmet


def test_a_former_owner_since_the_current_level_cannot_approve() -> None:
    status = _at_level(4, owners=[
        {"name": "alice", "since": NOW_TEXT, "until": "2026-11-22T13:00:00Z"},
        {"name": "dave", "since": "2026-11-22T13:00:00Z"},
    ])
    spec = tech_spec(owner="dave", entryLevel=4)
    assert owners_since_level(spec, status) == {"alice", "dave"}
    facts = technology_facts("fraud", spec, status)
    result = evaluate_review("r", review(4, 5, DEFAULT_EVIDENCE[5], [approve("alice")]), facts,
                             BOUND_DEFAULT)
    assert result.phase is ReviewPhase.PENDING
    assert "alice owned the technology and may not approve its review (separation of duties)" in (
        result.unmet
    )


def test_owners_before_the_current_level_was_reached_may_approve_again() -> None:
    status = _at_level(4, owners=[
        {"name": "alice", "since": "2026-01-01T00:00:00Z", "until": "2026-02-01T00:00:00Z"},
        {"name": "dave", "since": "2026-02-01T00:00:00Z"},
    ])
    assert owners_since_level(tech_spec(owner="dave"), status) == {"dave"}


# --- owners ----------------------------------------------------------------------------


def test_an_owner_change_is_recorded_with_who_made_it_and_announced() -> None:
    first = record_owner([], "alice", "alice", datetime(2026, 11, 22, 12, tzinfo=UTC))
    second = record_owner(first, "dave", "platform", LATER)
    assert [(o.name, o.until, o.changed_by) for o in second] == [
        ("alice", "2026-11-23T09:00:00Z", "alice"), ("dave", None, "platform"),
    ]
    assert record_owner(second, "dave", "someone", LATER) == second
    events = integrity_events(MLTechnologyStatus(owners=first), MLTechnologyStatus(owners=second))
    assert events[0][1] == "OwnerChanged" and "by platform" in events[0][2]


# --- entry -----------------------------------------------------------------------------


def test_an_entry_above_the_cap_starts_at_the_cap_until_reviewed() -> None:
    spec = tech_spec(entryLevel=9)
    entry = entry_status(MLTechnologyStatus(), spec, DEFAULT_POLICY)
    assert entry == EntryStatus(level=9, granted_level=4, approved=False)
    assert level_after_entry(MLTechnologyStatus(), entry) == (4, True)
    at_cap = MLTechnologyStatus(level=4, entry=entry)
    assert entry_floor(spec, at_cap) == 4
    # the recorded entry level wins over a later spec
    assert entry_status(at_cap, tech_spec(entryLevel=2), DEFAULT_POLICY).level == 9
    reviewed = MLTechnologyStatus(level=9, entry=entry, history=[LevelTransition(
        from_level=4, to=9, kind=TransitionKind.ENTRY, review="entry-9", at=NOW_TEXT)])
    approved = entry_status(reviewed, spec, DEFAULT_POLICY)
    assert approved.approved and approved.review == "entry-9"
    assert entry_floor(spec, reviewed.model_copy(update={"entry": approved})) == 9


def test_a_policy_that_later_allows_the_entry_level_approves_it() -> None:
    spec = tech_spec(entryLevel=6)
    held = MLTechnologyStatus(level=4, entry=EntryStatus(level=6, granted_level=4,
                                                         approved=False))
    raised = replace(DEFAULT_POLICY, entry_max_level=6)
    entry = entry_status(held, spec, raised)
    assert entry.approved and entry.granted_level == 6
    assert level_after_entry(held, entry) == (6, True)


def test_entry_level_is_immutable() -> None:
    error = entry_level_change(tech_spec(entryLevel=3), tech_spec(entryLevel=9))
    assert error is not None
    assert str(error).startswith("spec.entryLevel: Forbidden: is immutable once created")


def test_an_entry_review_needs_every_level_it_passes() -> None:
    spec = tech_spec(entryLevel=6)
    status = MLTechnologyStatus(level=4, entry=EntryStatus(level=6, granted_level=4,
                                                           approved=False))
    facts = technology_facts("fraud", spec, status)
    entry = review(4, 6, DEFAULT_EVIDENCE[6], [approve("bob", "product-owner"),
                                                approve("carol", "qa")], type=ReviewType.ENTRY)
    result = evaluate_review("e", entry, facts, BOUND_DEFAULT)
    assert result.phase is ReviewPhase.PENDING
    assert any("unit-tests" in line for line in result.unmet)  # level 5's evidence
    wrong = review(4, 5, DEFAULT_EVIDENCE[5], [approve("bob")], type=ReviewType.ENTRY)
    assert evaluate_review("e", wrong, facts, BOUND_DEFAULT).phase is ReviewPhase.INVALID


# --- claims ----------------------------------------------------------------------------


def test_a_claimer_must_serve_the_current_or_a_known_good_model() -> None:
    gate = serving_gate(7, None, DEFAULT_POLICY, "fraud")
    known = [KnownGoodModel(version="v0", storage_uri="s3://models/fraud/v0", format="sklearn",
                            served_at=NOW_TEXT)]
    current = model("v1")

    def action(uri: str, policy=DEFAULT_POLICY) -> GateAction:  # type: ignore[no-untyped-def]
        return claim_action("fraud", gate, policy, served_uri=uri, model=current,
                            known_good=known)[0]

    assert action("s3://models/fraud/v1") is GateAction.ALLOW
    assert action("s3://models/fraud/v0") is GateAction.ALLOW
    assert action("s3://models/other") is GateAction.STOP
    assert action("s3://models/other", replace(DEFAULT_POLICY,
                                               enforcement=DEFAULT_POLICY.enforcement.AUDIT)
                  ) is GateAction.WARN


@pytest.mark.parametrize("predictor, uri", [
    ({"model": {"storageUri": "s3://a"}}, "s3://a"),
    ({"sklearn": {"storageUri": "s3://b"}}, "s3://b"),
    ({"containers": []}, None),
])
def test_served_storage_uri(predictor: dict[str, object], uri: str | None) -> None:
    assert served_storage_uri({"spec": {"predictor": predictor}}) == uri


def test_a_role_binding_owner_record_is_plain_data() -> None:
    assert OwnerRecord(name="a", since=NOW_TEXT).to_wire() == {"name": "a", "since": NOW_TEXT}


def test_only_an_owner_reference_to_the_technologys_uid_makes_it_its_own() -> None:
    technology = {"metadata": {"name": "fraud", "uid": "u-1"}}

    def isvc(uid: str, kind: str = "MLTechnology") -> dict[str, object]:
        return {"metadata": {"ownerReferences": [{"kind": kind, "name": "fraud", "uid": uid}]}}

    assert technologys_own(isvc("u-1"), technology)
    assert not technologys_own(isvc("forged"), technology)
    assert not technologys_own(isvc("u-1", kind="Deployment"), technology)
    assert not technologys_own(isvc("u-1"), None)
