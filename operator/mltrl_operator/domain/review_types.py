"""Which reviews move the level and which keep it: the rules a LevelReview's own spec must
follow whatever its technology (domain.lifecycle.review_type_errors adds the ones that
need the technology: the current level, the pending model)."""

from __future__ import annotations

from dataclasses import dataclass

from mltrl_operator.api.review import LevelReviewSpec, ReviewType
from mltrl_operator.domain.errors import FieldError


@dataclass(frozen=True)
class ModelRef:
    version: str
    storage_uri: str | None = None

    def matches(self, other: ModelRef | None) -> bool:
        """Same version, and the same storage URI where both name one."""
        if other is None or self.version != other.version:
            return False
        return self.storage_uri is None or other.storage_uri is None or (
            self.storage_uri == other.storage_uri
        )

    def __str__(self) -> str:
        return self.version


LEVEL_KEEPING_TYPES = frozenset({ReviewType.CHANGE, ReviewType.RECERTIFY})


def keeps_level(review: LevelReviewSpec) -> bool:
    """A change or re-certification review: it approves something at the current level."""
    return review.type in LEVEL_KEEPING_TYPES


def what_it_is(review: LevelReviewSpec) -> str:
    return "a change review" if review.type is ReviewType.CHANGE else "a re-certification"


def review_level_errors(review: LevelReviewSpec) -> list[FieldError]:
    """What the review's own spec must say, whatever the technology: a change or a
    re-certification keeps the level (fromLevel == toLevel); a promotion, an entry and a
    switchback must move it. The admission webhook and validate_review_spec call this."""
    if keeps_level(review):
        if review.from_level != review.to_level:
            return [FieldError("spec.toLevel", f"Invalid: {what_it_is(review)} keeps the level: "
                               f"fromLevel and toLevel must be equal ({review.from_level} != "
                               f"{review.to_level})")]
        if review.type is ReviewType.RECERTIFY and review.model is not None:
            return [FieldError("spec.model", "Invalid: only a change review names a model")]
        return []
    errors = []
    if review.from_level == review.to_level:
        errors.append(FieldError(
            "spec.toLevel", f"must differ from spec.fromLevel ({review.from_level}); a review "
            "that keeps the level has spec.type change or recertify"))
    if review.model is not None:
        errors.append(FieldError("spec.model", "Invalid: only a change review names a model"))
    return errors


def review_type_errors(
    review: LevelReviewSpec, *, level: int | None, pending: ModelRef | None
) -> list[FieldError]:
    """The review against its technology: a change or re-certification review is of the
    current level; a change review approves the pending model and no other (Invalid with
    the reason). Evaluation (reconciler, webhook, CLI) calls this once the technology is
    known; the spec-only rules are review_level_errors."""
    errors = review_level_errors(review)
    if errors or not keeps_level(review):
        return errors
    what = what_it_is(review)
    if level is not None and review.from_level != level:
        errors.append(FieldError("spec.fromLevel", f"Invalid: {what} is of the current level "
                                 f"{level}, not {review.from_level}"))
    if review.type is ReviewType.CHANGE:
        named = ModelRef(review.model.version, review.model.storage_uri) if review.model else None
        if pending is None:
            errors.append(FieldError("spec.type", f"Invalid: {review.technology} has no model "
                                     "waiting for a change review"))
        elif named is None:
            errors.append(FieldError("spec.model", f"Required: a change review names the model "
                                     f"it approves (pending: {pending})"))
        elif not named.matches(pending):
            errors.append(FieldError("spec.model", f"Invalid: {named} is not the pending model "
                                     f"({pending})"))
    return errors
