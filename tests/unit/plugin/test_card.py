"""TRL cards: one version per level reached, the paper's fields, gaps said out loud."""

from __future__ import annotations

import pytest

from mltrl_operator.api.technology import Debrief
from mltrl_operator.cli.kubectl_mltrl import render
from mltrl_operator.domain.card import NOT_RECORDED, CardError, build_card

from .builders import approve, check, metric, review, status, tech, transition

CARD = {
    "intendedUse": "Flag transactions for manual review.",
    "unacceptableUses": ["Automatic account closure"],
    "datasets": [{"name": "transactions", "version": "2026-10"}],
    "code": "https://git.example.com/fraud",
}
PROMOTION = transition(7, "promotion", **{"from": 6, "review": "fraud-to-7",
                                          "by": ["bob", "carol"]})
REVIEW = review(6, 7, evidence=[check("integration-tests", uri="https://ci/812"),
                                metric("auc", 0.94)],
                approvals=[approve("bob", "qa"), approve("carol", "product-owner")])


def card(level: int | None = None, **spec: object):  # type: ignore[no-untyped-def]
    return build_card(
        name="fraud", namespace="payments", uid="u-1", spec=tech(card=CARD, **spec),
        status=status(7, transition(6), PROMOTION), reviews={"fraud-to-7": REVIEW}, level=level,
    )


def field(value, label):  # type: ignore[no-untyped-def]
    return next(i for s in value.sections for i in s.items if i.label == label)


def test_the_current_card_carries_the_review_that_reached_it() -> None:
    current = card()
    assert current.level == 7 and current.levels_reached == (6, 7)
    testing = field(current, "Testing status (evidence at this level's review)")
    assert testing.entries == ("check integration-tests: passed (https://ci/812)",
                               "metric auc: = 0.94")
    assert field(current, "Reviewers who decided this level").entries == (
        "bob (qa)", "carol (product-owner)")
    assert field(current, "Cards of earlier levels").entries == ("6",)


def test_an_earlier_level_has_its_own_version_without_later_evidence() -> None:
    earlier = card(6)
    assert earlier.level == 6 and earlier.current_level == 7
    assert field(earlier, "Testing status (evidence at this level's review)").empty
    assert field(earlier, "Cards of earlier levels").entries == ()


def test_a_level_never_reached_has_no_card_and_says_which_do() -> None:
    with pytest.raises(CardError, match="never reached level 3; it has cards for levels 6, 7"):
        card(3)


def test_gaps_list_every_empty_field() -> None:
    gaps = card().gaps
    assert "Testing and data: Caveats and known edge cases" in gaps
    assert "Documents and code: Requirements" in gaps
    assert "Use: Intended use" not in gaps
    assert "Technology: Cards of earlier levels" not in gaps


def test_the_debrief_comes_from_the_transition_record() -> None:
    debriefed = PROMOTION.model_copy(update={"debrief": Debrief(learned="drift is seasonal")})
    value = build_card(name="fraud", namespace="payments", uid="", spec=tech(),
                       status=status(7, transition(6), debriefed), reviews={})
    assert field(value, "Learned").text == "drift is seasonal"
    assert "Stage debrief: Learned" not in value.gaps


def test_markdown_and_html_show_gaps_and_link_earlier_levels() -> None:
    markdown = render.card_markdown(card())
    assert markdown.startswith("# TRL card: fraud at level 7 (Integrations)")
    assert "[level 6](fraud-level-6.md)" in markdown
    assert f"**Caveats and known edge cases:** _{NOT_RECORDED}_" in markdown
    html = render.card_html(card(), lambda lvl: f"/cards/{lvl}")
    assert '<a href="/cards/6">level 6</a>' in html
    assert f'<dd class="gap">{NOT_RECORDED}</dd>' in html


def test_html_escapes_what_users_wrote() -> None:
    html = render.card_html(card(description="<script>alert(1)</script>"))
    assert "<script>alert(1)" not in html and "&lt;script&gt;" in html
