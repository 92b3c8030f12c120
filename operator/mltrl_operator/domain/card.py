"""The TRL card: MLTRL's living, versioned document per technology and level.

A card is rebuilt, never stored: from the technology's spec.card and spec, its status, the
level history and the reviews that moved it. There is one version per level the technology
reached; each version takes its testing status, reviewers and debrief from the review that
reached that level. Where a field is empty the card says so and lists it under `gaps`: a
card shows what is missing as plainly as what is there.

Kubernetes keeps only the current spec, so the descriptive fields (intended use, datasets,
caveats...) of an earlier version are today's; the level-specific parts (the transition, its
review, evidence, reviewers and debrief) are that level's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from mltrl_operator.api.review import Decision, EvidenceKind, LevelReviewSpec
from mltrl_operator.api.technology import (
    LevelTransition,
    MLTechnologySpec,
    MLTechnologyStatus,
)
from mltrl_operator.domain.levels import describe_level, level_name, phase_of
from mltrl_operator.domain.requirements import number

NOT_RECORDED = "not recorded"


@dataclass(frozen=True)
class Item:
    """One field: a text, a list of texts, or nothing (a gap). `link` makes it clickable."""

    label: str
    text: str | None = None
    entries: tuple[str, ...] = ()
    link: str | None = None
    is_list: bool = False

    @property
    def empty(self) -> bool:
        return not (self.text or self.entries or self.link)


@dataclass(frozen=True)
class Section:
    title: str
    items: tuple[Item, ...]


@dataclass(frozen=True)
class Card:
    technology: str
    namespace: str
    uid: str
    level: int
    current_level: int
    levels_reached: tuple[int, ...]
    sections: tuple[Section, ...]
    gaps: tuple[str, ...] = field(default=())

    @property
    def title(self) -> str:
        return f"TRL card: {self.technology} at {describe_level(self.level)}"


class CardError(ValueError):
    pass


def levels_reached(spec: MLTechnologySpec, status: MLTechnologyStatus | None) -> tuple[int, ...]:
    history = status.history if status else []
    reached = {t.to for t in history}
    if status and status.level is not None:
        reached.add(status.level)
    if not reached:
        reached.add(spec.entry_level)
    return tuple(sorted(reached))


def _reaching(history: list[LevelTransition], level: int) -> LevelTransition | None:
    """The latest transition that brought the technology to `level`."""
    found = [t for t in history if t.to == level]
    return found[-1] if found else None


def _text(label: str, value: str | None) -> Item:
    return Item(label, text=value or None)


def _link(label: str, value: str | None) -> Item:
    return Item(label, link=value or None)


def _entries(label: str, values: list[str] | tuple[str, ...]) -> Item:
    return Item(label, entries=tuple(values), is_list=True)


def _evidence_line(spec: LevelReviewSpec) -> tuple[str, ...]:
    lines = []
    for e in spec.evidence:
        match e.kind:
            case EvidenceKind.CHECK:
                result = "passed" if e.passed else "failed"
            case EvidenceKind.METRIC:
                result = "no value" if e.value is None else f"= {number(e.value)}"
            case EvidenceKind.DOCUMENT:
                result = "document"
        where = f" ({e.uri})" if e.uri else ""
        lines.append(f"{e.kind} {e.name}: {result}{where}")
    return tuple(lines)


def build_card(
    *,
    name: str,
    namespace: str,
    uid: str,
    spec: MLTechnologySpec,
    status: MLTechnologyStatus | None,
    reviews: Mapping[str, LevelReviewSpec],
    level: int | None = None,
) -> Card:
    reached = levels_reached(spec, status)
    current = spec.entry_level if status is None or status.level is None else status.level
    wanted = current if level is None else level
    if wanted not in reached:
        raise CardError(
            f"{name} never reached level {wanted}; it has cards for levels "
            + ", ".join(str(lvl) for lvl in reached)
        )
    history = list(status.history) if status else []
    transition = _reaching(history, wanted)
    review = reviews.get(transition.review) if transition and transition.review else None
    card = spec.card
    earlier = tuple(lvl for lvl in reached if lvl < wanted)

    identity = Section("Technology", (
        _text("Name", name),
        _text("ID", f"{namespace}/{name}" + (f" (uid {uid})" if uid else "")),
        _text("Description", spec.description),
        _text("This card's level", f"{describe_level(wanted)}, {phase_of(wanted)} phase"),
        _text("Current level", describe_level(current)),
        _entries("Cards of earlier levels", [str(lvl) for lvl in earlier]),
        _text("Target level", describe_level(spec.target_level)),
    ))
    approvers = []
    if review:
        approvers = [
            f"{a.reviewer} ({a.role}){'' if a.decision is Decision.APPROVE else ', rejected'}"
            for a in review.approvals
        ]
    people = Section("People", (
        _text("Owner", spec.owner),
        _text("Team", spec.team),
        _entries("Reviewers (R&D and product)", card.reviewers if card else []),
        _entries("Reviewers who decided this level", approvers or (
            [f"{who}" for who in transition.by] if transition else []
        )),
    ))
    links = Section("Documents and code", (
        _link("Requirements", card.requirements if card else None),
        _link("Verification and validation (V&V)", card.verification_and_validation
              if card else None),
        _link("Code", card.code if card else None),
        _text("Ethics checklist status", _ethics_status(card.ethics_checklist if card else None,
                                                         review)),
    ))
    components = [
        f"{c.namespace}/{c.name}" if c.namespace else c.name for c in spec.components
    ]
    top = []
    if review:
        top = [f"{e.name}: {e.description}" if e.description else e.name for e in review.evidence]
    if status and status.next_level and wanted == current:
        top += [f"next ({status.next_level.level}): {r}" for r in status.next_level.requirements]
    model = spec.model
    model_line = (
        f"{model.format} model {model.version} at {model.storage_uri}"
        + (f", runtime {model.runtime}" if model.runtime else "")
        if model else None
    )
    system = Section("System", (
        _entries("Coupled components", components),
        _entries("Top-level requirements", top),
        _text("Model and algorithm details", model_line),
    ))
    use = Section("Use", (
        _text("Intended use", card.intended_use if card else None),
        _entries("Unacceptable uses", card.unacceptable_uses if card else []),
    ))
    testing = Section("Testing and data", (
        _entries("Testing status (evidence at this level's review)",
                 _evidence_line(review) if review else ()),
        _entries("Datasets with versions", [
            f"{d.name} {d.version}" + (f" ({d.uri})" if d.uri else "")
            for d in (card.datasets if card else [])
        ]),
        _entries("Caveats and known edge cases", card.caveats if card else []),
        _entries("Key assumptions", card.assumptions if card else []),
    ))
    debrief = (transition.debrief if transition else None) or (review.debrief if review else None)
    how = None
    if transition:
        how = f"{transition.kind}"
        if transition.from_level is not None:
            how += f" from level {transition.from_level}"
        how += f" at {transition.at}"
        if transition.review:
            how += f" by review {transition.review}"
        if transition.alert:
            how += f" after alert {transition.alert}"
        if transition.reason:
            how += f": {transition.reason}"
    stage = Section("Stage debrief", (
        _text("How the level was reached", how),
        _text("Accomplished, and by whom", debrief.accomplished if debrief else None),
        _text("Punted or de-scoped", debrief.punted if debrief else None),
        _text("Learned", debrief.learned if debrief else None),
        _text("Technical debt gained or mitigated", debrief.technical_debt if debrief else None),
    ))
    sections = (identity, people, links, system, use, testing, stage)
    gaps = tuple(
        f"{section.title}: {item.label}"
        for section in sections for item in section.items
        if item.empty and item.label not in _OPTIONAL
    )
    return Card(name, namespace, uid, wanted, current, reached, sections, gaps)


# Empty because nothing came before or around it, not because someone left it out.
_OPTIONAL = frozenset({"Cards of earlier levels", "Coupled components"})


def _ethics_status(link: str | None, review: LevelReviewSpec | None) -> str | None:
    presented = [e for e in (review.evidence if review else []) if "ethic" in e.name.lower()]
    parts = []
    if link:
        parts.append(f"checklist at {link}")
    for e in presented:
        if e.kind is EvidenceKind.CHECK:
            parts.append(f"{e.name} {'passed' if e.passed else 'not passed'} at this review")
        else:
            parts.append(f"{e.name} presented at this review")
    if link and not presented:
        parts.append("not presented as evidence at this level's review")
    return "; ".join(parts) or None


def describe_phase(level: int) -> str:
    return f"{level_name(level)} ({phase_of(level)})"
