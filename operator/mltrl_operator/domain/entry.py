"""Entry is approved, not declared: a technology that asks to enter above the policy's
entry.maxLevel starts at maxLevel until an entry review takes it to its entryLevel.

- The entryLevel first seen is recorded in status.entry and wins over later spec edits
  (which the webhook refuses anyway).
- The entry counts as approved once the technology stands at or above its entryLevel,
  whether by an entry review or by ordinary promotions; then it may not switch back below
  entryLevel. Before that the floor is the level it was granted.
- A technology whose status already had a level before entry was recorded (an upgrade
  from an older operator) keeps what it has: its level was reached under the old rules.
- While an entry waits for its review and the technology still stands at the level it was
  granted, a policy that now allows the entry level (a policy admin raised maxLevel, or
  the policy arrived after the technology) approves it: policy admins are trusted, and
  the technology held nothing above the cap in the meantime. This also makes the outcome
  independent of whether the operator saw the policy or the technology first.
"""

from __future__ import annotations

from mltrl_operator.api.review import LevelReviewSpec, ReviewType
from mltrl_operator.api.technology import EntryStatus, MLTechnologySpec, MLTechnologyStatus
from mltrl_operator.domain import condition_types as ct
from mltrl_operator.domain.errors import FieldError
from mltrl_operator.domain.levels import describe_level
from mltrl_operator.domain.policy import EffectivePolicy

FORBIDDEN = "Forbidden"
INVALID = "Invalid"


def entry_status(
    prior: MLTechnologyStatus | None, spec: MLTechnologySpec, policy: EffectivePolicy
) -> EntryStatus:
    recorded = prior.entry if prior else None
    level = prior.level if prior else None
    if recorded is None:
        if level is not None:  # reached under an operator that did not record entry
            return EntryStatus(level=spec.entry_level, granted_level=spec.entry_level,
                               approved=True)
        granted = min(spec.entry_level, policy.entry_max_level)
        return EntryStatus(
            level=spec.entry_level, granted_level=granted, approved=spec.entry_level <= granted
        )
    if (
        not recorded.approved
        and level == recorded.granted_level
        and policy.entry_max_level >= recorded.level
    ):
        return recorded.model_copy(update={"granted_level": recorded.level, "approved": True})
    if not recorded.approved and level is not None and level >= recorded.level:
        review = next(
            (t.review for t in reversed(prior.history if prior else []) if t.review), None
        )
        return recorded.model_copy(update={"approved": True, "review": review})
    return recorded.model_copy()


def level_after_entry(prior: MLTechnologyStatus, entry: EntryStatus) -> tuple[int, bool]:
    """(level, entered): the granted level for a new technology, the entry level once a
    policy allows it (see above), or else the level as it was (entered False)."""
    if prior.level is None:
        return entry.granted_level, True
    if prior.entry is not None and prior.level == prior.entry.granted_level < entry.granted_level:
        return entry.granted_level, True
    return prior.level, False


def entry_floor(spec: MLTechnologySpec, status: MLTechnologyStatus | None) -> int:
    """The lowest level a switchback may reach."""
    entry = status.entry if status else None
    if entry is None:
        return spec.entry_level
    return entry.level if entry.approved else entry.granted_level


def requested_entry_level(spec: MLTechnologySpec, status: MLTechnologyStatus | None) -> int:
    entry = status.entry if status else None
    return entry.level if entry else spec.entry_level


def entry_condition(entry: EntryStatus, policy_text: str) -> tuple[bool, str, str]:
    """(status, reason, message) of the EntryApproved condition."""
    if entry.approved and entry.review and entry.level > entry.granted_level:
        return True, ct.ENTRY_REVIEWED, (
            f"entered at {describe_level(entry.granted_level)}; review {entry.review} took it "
            f"to its entry level {entry.level}"
        )
    if entry.approved:
        return True, ct.ENTRY_WITHIN_POLICY, (
            f"entry level {entry.level} is within what {policy_text} allows"
            if entry.level <= entry.granted_level
            else f"reached its entry level {entry.level}"
        )
    return False, ct.ENTRY_REVIEW_REQUIRED, (
        f"spec.entryLevel {entry.level} is above the entry.maxLevel {entry.granted_level} of "
        f"{policy_text}: the technology starts at level {entry.granted_level} until a "
        f"LevelReview with type entry, fromLevel {entry.granted_level} and toLevel "
        f"{entry.level} is Applied"
    )


def entry_review_problem(
    spec: LevelReviewSpec, requested: int, approved: bool
) -> FieldError | None:
    """An entry review goes to the technology's recorded entry level, once."""
    if spec.type is not ReviewType.ENTRY:
        return None
    if approved:
        return FieldError(
            "spec.type", f"the technology's entry (level {requested}) is already approved; "
            "use a promotion", INVALID
        )
    if spec.to_level != requested:
        return FieldError(
            "spec.toLevel", f"an entry review goes to the technology's entry level {requested}",
            INVALID,
        )
    return None


def entry_level_change(old: MLTechnologySpec, new: MLTechnologySpec) -> FieldError | None:
    if old.entry_level == new.entry_level:
        return None
    return FieldError(
        "spec.entryLevel",
        f"is immutable once created (was {old.entry_level}); a technology reaches a higher "
        "level through LevelReviews",
        FORBIDDEN,
    )
