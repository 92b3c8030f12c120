"""Review requirements in the plain words reviewers read in status.nextLevel and
status.unmet; one wording for both so that what is asked and what is missing match."""

from __future__ import annotations

from mltrl_operator.api.policy import EvidenceRequirement
from mltrl_operator.api.review import EvidenceKind
from mltrl_operator.domain.policy import LevelRule


def number(value: float) -> str:
    """0.85 stays 0.85 and 200.0 becomes 200: metrics are read by people."""
    return f"{value:g}"


def _with_description(text: str, requirement: EvidenceRequirement) -> str:
    return f"{text} ({requirement.description})" if requirement.description else text


def describe_requirement(requirement: EvidenceRequirement) -> str:
    name = f"'{requirement.name}'"
    match requirement.kind:
        case EvidenceKind.CHECK:
            text = f"check {name} has passed"
        case EvidenceKind.DOCUMENT:
            text = f"document {name} with a link"
        case EvidenceKind.METRIC:
            low, high = requirement.minimum, requirement.maximum
            if low is not None and high is not None:
                text = f"metric {name} between {number(low)} and {number(high)}"
            elif low is not None:
                text = f"metric {name} of at least {number(low)}"
            elif high is not None:
                text = f"metric {name} of at most {number(high)}"
            else:
                text = f"metric {name} reported"
    return _with_description(text, requirement)


def missing_evidence(requirement: EvidenceRequirement) -> str:
    return _with_description(f"missing {requirement.kind} '{requirement.name}'", requirement)


def approvals_needed(needed: int, has: int | None = None) -> str:
    wanted = "1 approval" if needed == 1 else f"{needed} approvals from distinct reviewers"
    return f"needs {wanted}" if has is None else f"needs {wanted}, has {has}"


def role_needed(role: str) -> str:
    return f"needs an approval from a reviewer with role '{role}'"


def describe_rule(rule: LevelRule, separation_of_duties: bool) -> list[str]:
    lines = [describe_requirement(requirement) for requirement in rule.evidence]
    if rule.min_approvals:
        lines.append(approvals_needed(rule.min_approvals))
    lines.extend(role_needed(role) for role in sorted(rule.required_roles))
    if separation_of_duties:
        lines.append("the owner's approval does not count (separation of duties)")
    return lines
