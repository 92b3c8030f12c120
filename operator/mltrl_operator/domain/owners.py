"""Who owned a technology, and when: separation of duties covers every one of them who
owned it since its current level was reached, so renaming the owner frees nobody."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from mltrl_operator.api.technology import (
    OWNER_LIMIT,
    MLTechnologySpec,
    MLTechnologyStatus,
    OwnerRecord,
)
from mltrl_operator.domain import condition_types as ct
from mltrl_operator.domain.timefmt import rfc3339

OWNER_SET_BY_ANNOTATION = "mltrl.dev/owner-set-by"
"""Written by the mutating webhook whenever spec.owner is set: who set it. Clients cannot
choose its value: the webhook overwrites it on every create and update."""


def record_owner(
    owners: Sequence[OwnerRecord], owner: str, changed_by: str | None, now: datetime
) -> list[OwnerRecord]:
    """The owner list with `owner` as the current owner, the previous one closed."""
    records = [o.model_copy() for o in owners]
    if records and records[-1].name == owner and records[-1].until is None:
        return records
    at = rfc3339(now)
    if records and records[-1].until is None:
        records[-1] = records[-1].model_copy(update={"until": at})
    records.append(OwnerRecord(name=owner, since=at, changed_by=changed_by))
    # Keep the newest; an owner dropped here ended long before anything still pending.
    return records[-OWNER_LIMIT:]


def level_reached_at(status: MLTechnologyStatus | None) -> str | None:
    history = status.history if status else []
    return history[-1].at if history else None


def owners_since_level(spec: MLTechnologySpec, status: MLTechnologyStatus | None) -> frozenset[str]:
    """spec.owner, and everyone recorded as owner at any time since the current level was
    reached (RFC 3339 times in one format compare as text)."""
    reached = level_reached_at(status)
    names = {spec.owner}
    for record in status.owners if status else []:
        if reached is None or record.until is None or record.until >= reached:
            names.add(record.name)
    return frozenset(names)


def stored_owners(technology: Mapping[str, Any] | None) -> frozenset[str]:
    """owners_since_level of a technology as stored: who may not approve for it (its
    reviews and its waivers alike). An unreadable status still names spec.owner."""
    if technology is None:
        return frozenset()
    try:
        spec = MLTechnologySpec.model_validate(technology.get("spec") or {})
    except ValueError:  # pydantic's ValidationError
        owner = (technology.get("spec") or {}).get("owner")
        return frozenset({owner}) if isinstance(owner, str) else frozenset()
    try:
        status: MLTechnologyStatus | None = MLTechnologyStatus.model_validate(
            technology.get("status") or {}
        )
    except ValueError:
        status = None
    return owners_since_level(spec, status)


def owner_changed(old: MLTechnologyStatus, new: MLTechnologyStatus) -> OwnerRecord | None:
    """The new owner record when the status moves from one recorded owner to another."""
    if old.owners and new.owners and old.owners[-1].name != new.owners[-1].name:
        return new.owners[-1]
    return None


def integrity_events(
    old: MLTechnologyStatus, new: MLTechnologyStatus
) -> list[tuple[str, str, str]]:
    """(type, reason, message) of the events a status change calls for: an owner change,
    and an entry held at the policy's maxLevel."""
    events: list[tuple[str, str, str]] = []
    changed = owner_changed(old, new)
    if changed is not None:
        who = f" by {changed.changed_by}" if changed.changed_by else ""
        events.append((
            "Normal", ct.OWNER_CHANGED,
            f"owner changed from {old.owners[-1].name} to {changed.name}{who}; "
            f"{old.owners[-1].name} still may not approve promotions from this level",
        ))
    if old.entry is None and new.entry is not None and not new.entry.approved:
        events.append((
            "Warning", ct.ENTRY_REVIEW_REQUIRED,
            f"spec.entryLevel {new.entry.level} needs an entry review; the technology starts "
            f"at level {new.entry.granted_level}",
        ))
    return events
