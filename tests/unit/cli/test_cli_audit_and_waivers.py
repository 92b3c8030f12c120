"""The pure parts of `mltrl audit` and `mltrl waivers`: names, reports, decisions."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest

from mltrl_operator.cli.audit import target
from mltrl_operator.cli.waivers import decisions, show
from mltrl_operator.domain.waivers import EffectiveWaiverPolicy

NOW = datetime(2026, 3, 2, tzinfo=UTC)


def test_a_target_is_namespace_slash_name_or_a_name_in_the_default_namespace() -> None:
    assert target("payments/fraud", "default") == ("payments", "fraud")
    assert target("fraud", "team") == ("team", "fraud")
    for bad in ("a/b/c", "payments/", ""):
        with pytest.raises(ValueError, match="expected \\[NAMESPACE/\\]TECHNOLOGY"):
            target(bad, "default")


def test_waivers_of_other_technologies_are_left_out_and_broken_ones_said_so() -> None:
    def body(name: str, **spec: object) -> dict[str, object]:
        return {"metadata": {"name": name, "creationTimestamp": "2026-03-01T00:00:00Z"},
                "spec": {"technology": "fraud", "reason": "r", "waives": {"servingMinimum": 4},
                         "expiresAt": "2026-03-05T00:00:00Z", **spec}}

    rows = decisions(
        [body("mine"), body("theirs", technology="other"), body("broken", waives="all")],
        {"spec": {"owner": "alice"}}, "fraud", EffectiveWaiverPolicy(), NOW,
    )
    assert [name for name, _ in rows] == ["mine", "broken"]
    assert rows[0][1].reason.startswith("not approved by anyone")
    assert rows[1][1].reason.startswith("unreadable:")
    gone = decisions([body("mine")], None, "fraud", EffectiveWaiverPolicy(), NOW)
    assert gone[0][1].reason == "no MLTechnology fraud"
    out = io.StringIO()
    show(rows, out)
    assert out.getvalue().splitlines()[0] == "NAME    COUNTS  WHY"
