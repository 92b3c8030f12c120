"""Rules a resource must follow, shared by the admission webhook (which refuses the
object) and the reconcilers (which report objects that got in anyway, e.g. while the
webhook was down). Every validator returns all errors at once, each pointing at a field.

Choices where the paper is silent:
- serving may be configured before a model exists: many technologies declare serving
  long before level 6, so a missing spec.model is reported by the Serving condition
  (NoModel), not refused;
- a monitoring rule's toLevel only means something for demote, so any other action that
  sets it is refused rather than silently ignored;
- a policy that sets minApprovals below its number of requiredRoles is refused: a
  reviewer decides once with one role, so the number written would never be the
  number needed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from mltrl_operator.api.common import LabelSelector, SelectorOperator
from mltrl_operator.api.policy import EvidenceRequirement, MLTRLPolicySpec
from mltrl_operator.api.review import EvidenceKind, LevelReviewSpec, ReviewType
from mltrl_operator.api.technology import AlertAction, ComponentRef, MLTechnologySpec
from mltrl_operator.domain.errors import FieldError
from mltrl_operator.domain.levels import DEFAULT_DEMOTE_LEVEL
from mltrl_operator.domain.predictor import predictor_errors
from mltrl_operator.domain.requirements import number
from mltrl_operator.domain.review_types import review_level_errors

Key = tuple[str, str]
"""A technology's (namespace, name)."""


def component_key(ref: ComponentRef, namespace: str) -> Key:
    return (ref.namespace or namespace, ref.name)


def validate_technology(spec: MLTechnologySpec, *, name: str, namespace: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if spec.target_level < spec.entry_level:
        errors.append(
            FieldError("spec.targetLevel", f"must be at least spec.entryLevel ({spec.entry_level})")
        )
    errors += _component_errors(spec.components, name=name, namespace=namespace)
    errors += _serving_errors(spec)
    errors += _monitoring_errors(spec)
    return errors


def _component_errors(
    components: Sequence[ComponentRef], *, name: str, namespace: str
) -> list[FieldError]:
    errors: list[FieldError] = []
    seen: dict[Key, int] = {}
    for index, ref in enumerate(components):
        key = component_key(ref, namespace)
        path = f"spec.components[{index}]"
        if key == (namespace, name):
            errors.append(FieldError(path, "refers to the technology itself"))
        elif key in seen:
            errors.append(
                FieldError(path, f"duplicates spec.components[{seen[key]}] ({key[0]}/{key[1]})")
            )
        seen.setdefault(key, index)
    return errors


def _serving_errors(spec: MLTechnologySpec) -> list[FieldError]:
    serving = spec.serving
    if serving is None:
        return []
    errors: list[FieldError] = []
    if serving.required_level is not None and serving.required_level > spec.target_level:
        errors.append(
            FieldError(
                "spec.serving.requiredLevel",
                f"must not exceed spec.targetLevel ({spec.target_level}); "
                "the technology would never be served",
            )
        )
    errors += predictor_errors(serving.predictor)  # KServe's contract: domain/predictor.py
    if not isinstance(serving.predictor.get("model", {}), dict):
        errors.append(
            FieldError(
                "spec.serving.predictor.model",
                "must be an object; the operator fills in its modelFormat and storageUri",
            )
        )
    return errors


def _monitoring_errors(spec: MLTechnologySpec) -> list[FieldError]:
    if spec.monitoring is None:
        return []
    errors: list[FieldError] = []
    for index, rule in enumerate(spec.monitoring.rules):
        path = f"spec.monitoring.rules[{index}]"
        if rule.action is AlertAction.DEMOTE:
            errors += _demote_errors(path, rule.to_level, spec.entry_level)
        elif rule.to_level is not None:
            errors.append(FieldError(f"{path}.toLevel", "only a demote rule may set toLevel"))
        if rule.action is AlertAction.RETRAIN and not (
            spec.retraining and spec.retraining.job_template
        ):
            errors.append(FieldError(f"{path}.action", "retrain needs spec.retraining.jobTemplate"))
        if rule.action is AlertAction.ROLLBACK and spec.model is None:
            errors.append(
                FieldError(
                    f"{path}.action", "rollback needs spec.model: there is nothing to roll back"
                )
            )
    return errors


def _demote_errors(path: str, to_level: int | None, entry_level: int) -> list[FieldError]:
    if to_level is None and entry_level > DEFAULT_DEMOTE_LEVEL:
        return [
            FieldError(
                f"{path}.toLevel",
                f"defaults to {DEFAULT_DEMOTE_LEVEL}, below spec.entryLevel ({entry_level}); "
                f"set a level of at least {entry_level}",
            )
        ]
    if to_level is not None and to_level < entry_level:
        return [
            FieldError(
                f"{path}.toLevel",
                f"must be at least spec.entryLevel ({entry_level}); "
                "a technology may not switch back below its entry level",
            )
        ]
    return []


def _shortest_path(start: Key, goal: Key, edges: Mapping[Key, Sequence[Key]]) -> list[Key] | None:
    """Breadth first, so the cycle reported is the shortest and the message stays short."""
    parents: dict[Key, Key | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for successor in edges.get(node, ()):
            if successor == goal:
                path = [goal, node]
                while (parent := parents[path[-1]]) is not None:
                    path.append(parent)
                return path[::-1]
            if successor not in parents:
                parents[successor] = node
                queue.append(successor)
    return None


def find_component_cycle(root: Key, edges: Mapping[Key, Sequence[Key]]) -> list[Key] | None:
    """The shortest cycle through `root`, as [root, ..., root]; None when there is none.

    Cycles elsewhere in the graph are left to the technologies on them, which can fix them.
    """
    path = _shortest_path(root, root, edges)
    return None if path is None else [root, *path[1:]]


def display_key(key: Key, namespace: str) -> str:
    """A technology as a user would name it from `namespace`."""
    return key[1] if key[0] == namespace else f"{key[0]}/{key[1]}"


def validate_components(
    spec: MLTechnologySpec,
    *,
    name: str,
    namespace: str,
    edges: Mapping[Key, Sequence[Key]],
) -> list[FieldError]:
    """Cycles through this technology; `edges` holds the other technologies' components.

    This technology's own entry in `edges` is replaced by its spec, which may be newer.
    """
    root = (namespace, name)
    graph = {**edges, root: [component_key(ref, namespace) for ref in spec.components]}
    errors: list[FieldError] = []
    for index, ref in enumerate(spec.components):
        key = component_key(ref, namespace)
        if key == root:
            continue
        path = _shortest_path(key, root, graph)
        if path is not None:
            cycle = " -> ".join(display_key(node, namespace) for node in [root, *path])
            errors.append(FieldError(f"spec.components[{index}]", f"forms a cycle {cycle}"))
    return errors


def validate_review_spec(spec: LevelReviewSpec) -> list[FieldError]:
    # A change or re-certification keeps the level; every other review moves it
    # (domain.lifecycle decides both, for the webhook, the reconciler and the CLI).
    errors: list[FieldError] = review_level_errors(spec)
    if spec.to_level < spec.from_level and not (spec.reason and spec.reason.strip()):
        errors.append(
            FieldError("spec.reason", "is required when the review moves the technology down")
        )
    if spec.to_level > spec.from_level and spec.switchback_type is not None:
        errors.append(
            FieldError(
                "spec.switchbackType", "only a review that moves the technology down may set it"
            )
        )
    errors += _type_errors(spec)
    errors += _evidence_errors(spec)
    errors += _approval_errors(spec)
    return errors


def _type_errors(spec: LevelReviewSpec) -> list[FieldError]:
    if spec.to_level == spec.from_level:
        return []  # review_level_errors said what there is to say
    upward = spec.to_level > spec.from_level
    if spec.type in (ReviewType.PROMOTION, ReviewType.ENTRY) and not upward:
        return [FieldError("spec.type", f"a review of type {spec.type} moves the technology "
                           "up: spec.toLevel must be above spec.fromLevel", "Invalid")]
    if spec.type is ReviewType.SWITCHBACK and upward:
        return [FieldError("spec.type", "a switchback moves the technology down: spec.toLevel "
                           "must be below spec.fromLevel", "Invalid")]
    return []


_EVIDENCE_FIELD = {
    EvidenceKind.CHECK: ("passed", "is required for a check"),
    EvidenceKind.METRIC: ("value", "is required for a metric"),
    EvidenceKind.DOCUMENT: ("uri", "is required for a document"),
}


def _evidence_errors(spec: LevelReviewSpec) -> list[FieldError]:
    errors: list[FieldError] = []
    seen: dict[str, int] = {}
    for index, evidence in enumerate(spec.evidence):
        path = f"spec.evidence[{index}]"
        if evidence.name in seen:
            errors.append(
                FieldError(
                    f"{path}.name",
                    f"duplicates spec.evidence[{seen[evidence.name]}] ('{evidence.name}')",
                )
            )
        seen.setdefault(evidence.name, index)
        field, message = _EVIDENCE_FIELD[evidence.kind]
        if getattr(evidence, field) is None:
            errors.append(FieldError(f"{path}.{field}", message))
    return errors


def _approval_errors(spec: LevelReviewSpec) -> list[FieldError]:
    errors: list[FieldError] = []
    seen: dict[str, int] = {}
    for index, approval in enumerate(spec.approvals):
        first = seen.get(approval.reviewer)
        if first is not None:
            errors.append(
                FieldError(
                    f"spec.approvals[{index}].reviewer",
                    f"'{approval.reviewer}' already decided in spec.approvals[{first}]; "
                    "each reviewer decides once",
                )
            )
        seen.setdefault(approval.reviewer, index)
    return errors


def validate_policy(spec: MLTRLPolicySpec) -> list[FieldError]:
    errors = _selector_errors(spec.namespace_selector, "spec.namespaceSelector")
    seen: dict[int, int] = {}
    for index, requirements in enumerate(spec.requirements):
        path = f"spec.requirements[{index}]"
        if requirements.level == 0:
            errors.append(
                FieldError(
                    f"{path}.level", "no promotion leads to level 0; requirements start at 1"
                )
            )
        elif requirements.level in seen:
            errors.append(
                FieldError(
                    f"{path}.level",
                    f"duplicates spec.requirements[{seen[requirements.level]}] "
                    f"(level {requirements.level})",
                )
            )
        seen.setdefault(requirements.level, index)
        errors += _requirement_errors(path, requirements.evidence)
        errors += _role_errors(path, requirements.required_roles, requirements.min_approvals)
    for index, rule in enumerate(spec.alerts.default_actions):
        if rule.to_level is not None and rule.action is not AlertAction.DEMOTE:
            errors.append(
                FieldError(
                    f"spec.alerts.defaultActions[{index}].toLevel",
                    "only a demote rule may set toLevel",
                )
            )
    return errors


def _requirement_errors(path: str, evidence: Sequence[EvidenceRequirement]) -> list[FieldError]:
    errors: list[FieldError] = []
    seen: dict[str, int] = {}
    for index, requirement in enumerate(evidence):
        at = f"{path}.evidence[{index}]"
        if requirement.name in seen:
            errors.append(
                FieldError(
                    f"{at}.name",
                    f"duplicates {path}.evidence[{seen[requirement.name]}] ('{requirement.name}')",
                )
            )
        seen.setdefault(requirement.name, index)
        if requirement.kind is not EvidenceKind.METRIC:
            for bound in ("minimum", "maximum"):
                if getattr(requirement, bound) is not None:
                    errors.append(FieldError(f"{at}.{bound}", f"only a metric may have a {bound}"))
        elif (
            requirement.minimum is not None
            and requirement.maximum is not None
            and requirement.minimum > requirement.maximum
        ):
            errors.append(
                FieldError(
                    f"{at}.minimum",
                    f"must not exceed the maximum ({number(requirement.maximum)})",
                )
            )
    return errors


def _role_errors(path: str, roles: Sequence[str], min_approvals: int | None) -> list[FieldError]:
    errors: list[FieldError] = []
    seen: dict[str, int] = {}
    for index, role in enumerate(roles):
        if role in seen:
            errors.append(
                FieldError(
                    f"{path}.requiredRoles[{index}]",
                    f"duplicates {path}.requiredRoles[{seen[role]}] ('{role}')",
                )
            )
        seen.setdefault(role, index)
    if min_approvals is not None and min_approvals < len(seen):
        errors.append(
            FieldError(
                f"{path}.minApprovals",
                f"must be at least the number of requiredRoles ({len(seen)}); "
                "each role needs its own reviewer",
            )
        )
    return errors


def _selector_errors(selector: LabelSelector, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    for index, expression in enumerate(selector.match_expressions):
        at = f"{path}.matchExpressions[{index}].values"
        needs_values = expression.operator in (SelectorOperator.IN, SelectorOperator.NOT_IN)
        if needs_values and not expression.values:
            errors.append(FieldError(at, f"must not be empty for {expression.operator}"))
        elif not needs_values and expression.values:
            errors.append(FieldError(at, f"must be empty for {expression.operator}"))
    return errors


_OPERATOR_ONLY = {
    "level": "may only be changed by the operator through level reviews",
    "history": "may only be changed by the operator, which records every level change",
    "knownGoodModels": "may only be changed by the operator, which records models that served",
    "approvedModel": "may only be changed by the operator: a change review approves a model",
    "approvedModels": "may only be changed by the operator, which records approved models",
    "pendingModel": "may only be changed by the operator: it holds a new model until its "
    "change review is applied",
}


def _normalised(status: Mapping[str, Any] | None, field: str) -> Any:
    # An absent field, null and an empty list all mean "nothing recorded".
    value = None if status is None else status.get(field)
    return None if value == [] else value


def validate_status_edit(
    old_status: Mapping[str, Any] | None, new_status: Mapping[str, Any] | None
) -> list[FieldError]:
    """Status fields users may not touch, however they send the change (wire form)."""
    return [
        FieldError(f"status.{field}", message)
        for field, message in _OPERATOR_ONLY.items()
        if _normalised(old_status, field) != _normalised(new_status, field)
    ]
