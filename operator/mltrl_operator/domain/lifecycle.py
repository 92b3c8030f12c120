"""Levels that stay true over time: material model changes and re-certification.

Pure functions of the policy, the technology's facts and `now`:
- `lifecycle_policy` merges what the matching policies say (strictest wins);
- `plan_model_change` decides what a new spec.model does to a level: nothing (it is the
  approved model, or one approved before, such as a rollback target), adopt it (policy
  `allow`), hold it until a change review (`review`: the last approved model keeps
  serving), or switch the technology back (`demote`);
- `review_type_errors` checks a change or re-certification review against the
  technology (a change review for a model that is not the pending one is Invalid);
- `certification` says whether the current level still holds at `now`, what to do if it
  lapsed, and `wake_at`, the next instant the answer changes: the operator sets a timer
  for it rather than waiting for a resync;
- `decide_lifecycle` is the one call a reconciler's plan makes: all of the above plus the
  waivers that apply now, and the earliest instant anything changes by itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from mltrl_operator.api.lifecycle import ModelChangeAction, ModelChangeRule, OnExpiry
from mltrl_operator.api.policy import MLTRLPolicySpec
from mltrl_operator.api.technology import LevelTransition, ModelSpec
from mltrl_operator.api.waiver import MLTRLWaiverSpec
from mltrl_operator.domain import condition_types as ct
from mltrl_operator.domain.durations import parse_duration, parse_instant
from mltrl_operator.domain.errors import FieldError
from mltrl_operator.domain.policy import NamedPolicy
from mltrl_operator.domain.review_types import ModelRef
from mltrl_operator.domain.timefmt import rfc3339
from mltrl_operator.domain.transitions import certifies
from mltrl_operator.domain.waivers import (
    EffectiveWaiverPolicy,
    WaiverFacts,
    waived_serving_minimum,
    waiver_applies,
)

DEFAULT_WARN_BEFORE = timedelta(days=14)

# The condition and reasons this module decides live with the others.
CERTIFIED = ct.CERTIFIED
REASON_CURRENT = ct.CURRENT
REASON_NO_EXPIRY = ct.NO_EXPIRY
REASON_EXPIRING_SOON = ct.EXPIRING_SOON
REASON_EXPIRED = ct.EXPIRED
REASON_PENDING_CHANGE_REVIEW = ct.PENDING_CHANGE_REVIEW

_ACTION_RANK = {ModelChangeAction.ALLOW: 0, ModelChangeAction.REVIEW: 1,
                ModelChangeAction.DEMOTE: 2}
_EXPIRY_RANK = {OnExpiry.WARN: 0, OnExpiry.STOP: 1, OnExpiry.DEMOTE: 2}


# --- the merged policy ------------------------------------------------------------------------


@dataclass(frozen=True)
class Recertification:
    """How long one level holds after its last review, merged across policies."""

    valid_for: timedelta | None
    warn_before: timedelta
    on_expiry: OnExpiry
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class LifecyclePolicy:
    model_change_rules: tuple[tuple[str, ModelChangeRule], ...] = ()
    """(policy name, rule) for every rule of every matching policy."""
    recertification: Mapping[int, Recertification] = field(default_factory=dict)
    """Per level, only levels some policy gives a validFor."""


def lifecycle_policy(policies: Sequence[NamedPolicy]) -> LifecyclePolicy:
    """The matching policies' modelChange rules and validFor settings; per level the
    shortest validFor, the longest warnBefore and the strictest onExpiry win."""
    rules = tuple((p.name, rule) for p in policies for rule in p.spec.model_change)
    per_level: dict[int, list[tuple[str, timedelta, timedelta | None, OnExpiry | None]]] = {}
    for policy in policies:
        for requirement in policy.spec.requirements:
            if requirement.valid_for is None:
                continue
            warn = parse_duration(requirement.warn_before) if requirement.warn_before else None
            per_level.setdefault(requirement.level, []).append(
                (policy.name, parse_duration(requirement.valid_for), warn, requirement.on_expiry)
            )
    recertification = {}
    for level, settings in per_level.items():
        warns = [warn for _, _, warn, _ in settings if warn is not None]
        expiries = [expiry for _, _, _, expiry in settings if expiry is not None]
        recertification[level] = Recertification(
            valid_for=min(valid for _, valid, _, _ in settings),
            warn_before=max(warns) if warns else DEFAULT_WARN_BEFORE,
            on_expiry=max(expiries, key=_EXPIRY_RANK.__getitem__) if expiries else OnExpiry.WARN,
            sources=tuple(dict.fromkeys(name for name, _, _, _ in settings)),
        )
    return LifecyclePolicy(rules, recertification)


def lifecycle_spec_errors(spec: MLTRLPolicySpec) -> list[FieldError]:
    """Everything the policy webhook should refuse in issue 15's policy fields."""
    errors = lifecycle_policy_errors(
        spec.model_change,
        [(i, r.valid_for, r.warn_before) for i, r in enumerate(spec.requirements)],
    )
    if spec.waivers is not None and spec.waivers.max_duration is not None:
        try:
            if parse_duration(spec.waivers.max_duration) <= timedelta(0):
                raise ValueError(f"{spec.waivers.max_duration!r} is not longer than zero")
        except ValueError as error:
            errors.append(FieldError("spec.waivers.maxDuration", f"Invalid: {error}"))
    return errors


def lifecycle_policy_errors(rules: Sequence[ModelChangeRule], requirements: Iterable[
        tuple[int, str | None, str | None]]) -> list[FieldError]:
    """What the policy webhook should refuse in these fields (rules, then (index,
    validFor, warnBefore) of each requirement), with field paths."""
    errors = []
    for index, rule in enumerate(rules):
        path = f"spec.modelChange[{index}]"
        if (rule.level is None) == (rule.from_level is None):
            errors.append(FieldError(path, "Invalid: give exactly one of level and fromLevel"))
        if rule.action is ModelChangeAction.DEMOTE and rule.to_level is None:
            errors.append(FieldError(f"{path}.toLevel", "Required: a demote rule names the "
                                     "level to switch back to"))
        if rule.action is not ModelChangeAction.DEMOTE and rule.to_level is not None:
            errors.append(FieldError(f"{path}.toLevel", "Invalid: only a demote rule has one"))
        lowest = rule.level if rule.level is not None else rule.from_level
        if rule.to_level is not None and lowest is not None and rule.to_level >= lowest:
            errors.append(FieldError(f"{path}.toLevel", f"Invalid: {rule.to_level} is not below "
                                     f"the level the rule is for ({lowest})"))
    for index, valid_for, warn_before in requirements:
        for name, text in (("validFor", valid_for), ("warnBefore", warn_before)):
            if text is None:
                continue
            try:
                if parse_duration(text) <= timedelta(0):
                    raise ValueError(f"{text!r} is not longer than zero")
            except ValueError as error:
                errors.append(FieldError(f"spec.requirements[{index}].{name}", f"Invalid: {error}"))
    return errors


# --- material model changes -----------------------------------------------------------------


def model_ref(model: ModelSpec | None) -> ModelRef | None:
    return ModelRef(model.version, model.storage_uri) if model is not None else None


@dataclass(frozen=True)
class ModelChangeRuling:
    action: ModelChangeAction
    to_level: int | None
    why: str


def model_change_action(
    policy: LifecyclePolicy, level: int, serving_minimum: int
) -> ModelChangeRuling:
    """What a new model needs at `level`: the strictest matching rule, or the built-in
    default (review at and above the serving level, allow below it)."""
    matching = [
        (name, rule) for name, rule in policy.model_change_rules
        if rule.level == level or (rule.from_level is not None and level >= rule.from_level)
    ]
    if not matching:
        if level >= serving_minimum:
            return ModelChangeRuling(
                ModelChangeAction.REVIEW, None,
                f"the built-in default: a new model at or above the serving level "
                f"({serving_minimum}) needs a change review",
            )
        return ModelChangeRuling(
            ModelChangeAction.ALLOW, None,
            f"the built-in default: below the serving level ({serving_minimum}) a new model "
            "inherits the level",
        )

    def strictness(item: tuple[str, ModelChangeRule]) -> tuple[int, int]:
        _, rule = item
        to_level = _demote_target(rule, level)
        return (_ACTION_RANK[rule.action], -to_level if to_level is not None else 0)

    name, rule = max(matching, key=strictness)
    return ModelChangeRuling(rule.action, _demote_target(rule, level), f"policy {name}")


def _demote_target(rule: ModelChangeRule, level: int) -> int | None:
    if rule.action is not ModelChangeAction.DEMOTE:
        return None
    target = rule.to_level if rule.to_level is not None else level - 1
    return max(0, min(target, level - 1))


class ModelChangeOutcome(StrEnum):
    UNCHANGED = "unchanged"
    """spec.model is the approved model (or there is none)."""
    ADOPT = "adopt"
    """The new model takes over at the current level: allowed, or approved before."""
    HOLD = "hold"
    """The new model waits for a change review; the approved model keeps serving."""
    DEMOTE = "demote"
    """The change switches the technology back to `to_level`."""


@dataclass(frozen=True)
class ModelChangePlan:
    outcome: ModelChangeOutcome
    serve: ModelRef | None
    """The model the technology may serve now (None: none)."""
    pending: ModelRef | None = None
    """For hold: the model waiting for its change review (status.pendingModel)."""
    to_level: int | None = None
    """For demote: the level switched back to."""
    reason: str = ""


def plan_model_change(
    *,
    level: int,
    model: ModelSpec | None,
    approved: ModelRef | None,
    approved_before: Sequence[ModelRef],
    policy: LifecyclePolicy,
    serving_minimum: int,
) -> ModelChangePlan:
    """What spec.model does at `level`, given the model last approved at this level
    (`approved`) and models approved earlier (known-good ones a rollback may return to:
    rolling back is not a change)."""
    new = model_ref(model)
    if new is None or new.matches(approved):
        return ModelChangePlan(ModelChangeOutcome.UNCHANGED, approved)
    if any(new.matches(known) for known in approved_before):
        return ModelChangePlan(
            ModelChangeOutcome.ADOPT, new,
            reason=f"{new} was approved before: returning to it is not a change",
        )
    ruling = model_change_action(policy, level, serving_minimum)
    was = f" (was {approved})" if approved else ""
    if ruling.action is ModelChangeAction.ALLOW:
        return ModelChangePlan(
            ModelChangeOutcome.ADOPT, new,
            reason=f"model {new}{was} inherits level {level}: {ruling.why}",
        )
    if ruling.action is ModelChangeAction.DEMOTE:
        return ModelChangePlan(
            ModelChangeOutcome.DEMOTE, new, to_level=ruling.to_level,
            reason=f"model {new}{was} is a material change: switched back from level {level} "
            f"to {ruling.to_level} ({ruling.why})",
        )
    return ModelChangePlan(
        ModelChangeOutcome.HOLD, approved, pending=new,
        reason=f"model {new} waits for a change review of level {level} ({ruling.why}); "
        + (f"{approved} keeps serving" if approved else "nothing is served meanwhile"),
    )


# --- re-certification -------------------------------------------------------------------------

def certified_at(history: Sequence[LevelTransition], level: int) -> datetime | None:
    """When `level` was last reviewed: the latest transition that certifies it
    (domain.transitions.certifies)."""
    chosen = [t for t in history if certifies(t, level)]
    instants = []
    for transition in chosen:
        try:
            instants.append(parse_instant(transition.at))
        except ValueError:
            continue
    return max(instants, default=None)


class CertificationState(StrEnum):
    UNLIMITED = "Unlimited"
    CURRENT = "Current"
    EXPIRING = "Expiring"
    EXPIRED = "Expired"


@dataclass(frozen=True)
class Certification:
    state: CertificationState
    certified: bool
    """The Certified condition's status."""
    reason: str
    message: str
    expires_at: datetime | None = None
    warn_at: datetime | None = None
    on_expiry: OnExpiry | None = None
    """For an expired level: what the policy has the operator do."""
    demote_to: int | None = None
    """For onExpiry demote: the level below."""
    wake_at: datetime | None = None
    """The next instant this answer changes; None: it never does by itself."""


def certification(
    level: int, reviewed_at: datetime | None, rule: Recertification | None, now: datetime
) -> Certification:
    if rule is None or rule.valid_for is None:
        return Certification(CertificationState.UNLIMITED, True, REASON_NO_EXPIRY,
                             f"level {level} does not lapse")
    sources = f" (policy {', '.join(rule.sources)})" if rule.sources else ""
    if reviewed_at is None:
        return Certification(
            CertificationState.EXPIRED, False, REASON_EXPIRED,
            f"level {level} has no review on record and must be reviewed every "
            f"{_days(rule.valid_for)}{sources}: a recertify review renews it",
            on_expiry=rule.on_expiry, demote_to=_below(level, rule),
        )
    expires_at = reviewed_at + rule.valid_for
    warn_at = max(reviewed_at, expires_at - rule.warn_before)
    if now >= expires_at:
        return Certification(
            CertificationState.EXPIRED, False, REASON_EXPIRED,
            f"level {level} lapsed at {rfc3339(expires_at)}: last reviewed "
            f"{rfc3339(reviewed_at)}, valid for {_days(rule.valid_for)}{sources}; "
            f"a recertify review renews it",
            expires_at, warn_at, rule.on_expiry, _below(level, rule),
        )
    if now >= warn_at:
        return Certification(
            CertificationState.EXPIRING, True, REASON_EXPIRING_SOON,
            f"level {level} lapses at {rfc3339(expires_at)} unless a recertify review is "
            f"applied first{sources}",
            expires_at, warn_at, wake_at=expires_at,
        )
    return Certification(
        CertificationState.CURRENT, True, REASON_CURRENT,
        f"level {level} holds until {rfc3339(expires_at)}{sources}",
        expires_at, warn_at, wake_at=warn_at,
    )


def _below(level: int, rule: Recertification) -> int | None:
    return max(0, level - 1) if rule.on_expiry is OnExpiry.DEMOTE else None


def _days(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    text = f"{hours:g}h"
    return f"{text} ({hours / 24:g} days)" if hours >= 48 else text


def next_wakeup(instants: Iterable[datetime | None], now: datetime) -> datetime | None:
    """The earliest instant after `now`: when the operator must look again (a certification
    warning or lapse, a waiver's expiry)."""
    return min((i for i in instants if i is not None and i > now), default=None)


# --- one call for the reconciler's plan -------------------------------------------------------


@dataclass(frozen=True)
class LifecycleDecision:
    """Everything issue 15 changes in a technology's plan, from one call."""

    model: ModelChangePlan
    """What spec.model does: unchanged, adopt, hold (status.pendingModel) or demote."""
    certification: Certification
    """The `Certified` condition, and onExpiry's action once the level lapsed."""
    serving_minimum: int
    """The serving minimum after the waivers that apply now."""
    serving_closed_by_lapse: bool
    """onExpiry stop or demote: the level lapsed, so nothing serves until renewed."""
    applying_waivers: tuple[tuple[str, MLTRLWaiverSpec], ...]
    """(name, spec) of the waivers that count now, for reviews and the record."""
    serving_waiver: str | None
    """The waiver that lowered the serving minimum, if one did (a use to record)."""
    wake_at: datetime | None
    """The next instant any of this changes by itself: set a timer for it."""


def decide_lifecycle(
    *,
    technology: str,
    level: int,
    history: Sequence[LevelTransition],
    model: ModelSpec | None,
    approved_model: ModelRef | None,
    approved_before: Sequence[ModelRef],
    serving_minimum: int,
    policy: LifecyclePolicy,
    waivers: Sequence[WaiverFacts],
    waiver_policy: EffectiveWaiverPolicy,
    owners: frozenset[str],
    now: datetime,
) -> LifecycleDecision:
    """Model change, certification and waivers for one technology at `now`. The plan
    maps the result onto status (pendingModel, Certified), the serving gate (the minimum,
    a lapse closing it) and timers (`wake_at`)."""
    decisions = [
        (facts, waiver_applies(facts.spec, technology=technology, created_at=facts.created_at,
                               policy=waiver_policy, owners=owners, now=now))
        for facts in waivers
    ]
    applying = tuple((f.name, f.spec) for f, d in decisions if d.applies)
    minimum, serving_waiver = waived_serving_minimum(serving_minimum, applying)
    certificate = certification(level, certified_at(history, level),
                                policy.recertification.get(level), now)
    closed = not certificate.certified and certificate.on_expiry in (OnExpiry.STOP,
                                                                     OnExpiry.DEMOTE)
    return LifecycleDecision(
        # The built-in default reviews a new model wherever the technology may serve: a
        # waiver that lowers the serving minimum lowers it for that default too, or a model
        # nobody reviewed would be served by the waiver.
        model=plan_model_change(
            level=level, model=model, approved=approved_model, approved_before=approved_before,
            policy=policy, serving_minimum=minimum,
        ),
        certification=certificate,
        serving_minimum=minimum,
        serving_closed_by_lapse=closed,
        applying_waivers=applying,
        serving_waiver=serving_waiver,
        wake_at=next_wakeup([certificate.wake_at, *(d.wake_at for _, d in decisions)], now),
    )
