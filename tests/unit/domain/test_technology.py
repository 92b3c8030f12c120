from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import mltrl_operator
from mltrl_operator.api.common import ConditionStatus
from mltrl_operator.api.review import ReviewPhase
from mltrl_operator.api.technology import (
    HISTORY_LIMIT,
    Incident,
    LevelTransition,
    MLTechnologySpec,
    MLTechnologyStatus,
    ServingState,
)
from mltrl_operator.domain.conditions import get_condition
from mltrl_operator.domain.errors import FieldError
from mltrl_operator.domain.levels import LEVEL_NAMES
from mltrl_operator.domain.policy import DEFAULT_POLICY, EffectivePolicy
from mltrl_operator.domain.reviews import ReviewEvaluation
from mltrl_operator.domain.technology import (
    ComponentFacts,
    InferenceServiceFacts,
    apply_demotion,
    apply_review_to_status,
    compute_status,
)

from .builders import LATER, LATER_TEXT, NOW, NOW_TEXT, review, tech_spec, with_policy

MODEL = {"version": "v7", "storageUri": "s3://m/v7", "format": "sklearn"}


def compute(
    spec: MLTechnologySpec,
    status: MLTechnologyStatus | None = None,
    *,
    level: int | None = None,
    components: Sequence[ComponentFacts] = (),
    isvc: InferenceServiceFacts | None = None,
    errors: Sequence[FieldError] = (),
    policy: EffectivePolicy = DEFAULT_POLICY,
    generation: int = 1,
    now: Any = NOW,
) -> MLTechnologyStatus:
    if level is not None:
        status = (status or MLTechnologyStatus()).model_copy(update={"level": level})
    return compute_status(
        name="fraud",
        namespace="ml",
        spec=spec,
        status=status,
        generation=generation,
        components=components,
        policy=policy,
        inference_service=isvc,
        validation_errors=errors,
        now=now,
    )


def condition(status: MLTechnologyStatus, type_: str) -> tuple[bool, str, str]:
    found = get_condition(status.conditions, type_)
    assert found is not None
    return found.status is ConditionStatus.TRUE, found.reason, found.message


def isvc(
    *, exists: bool = True, ready: bool = True, stopped: bool = False, version: str | None = "v7"
) -> InferenceServiceFacts:
    return InferenceServiceFacts(
        name="fraud",
        exists=exists,
        ready=ready,
        url="http://fraud.ml.example" if exists else None,
        stopped=stopped,
        model_version=version if exists else None,
        ready_at_generation=ready,
    )


def test_the_first_status_of_a_new_technology() -> None:
    status = compute(tech_spec(entryLevel=3, targetLevel=7), generation=4)
    assert status.to_wire() == {
        "level": 3,
        "levelName": "System Development",
        "phase": "Prototyping",
        "effectiveLevel": 3,
        "observedGeneration": 4,
        "conditions": [
            {
                "type": t,
                "status": s,
                "observedGeneration": 4,
                "lastTransitionTime": NOW_TEXT,
                "reason": r,
                "message": m,
            }
            for t, s, r, m in [
                (
                    "Ready",
                    "False",
                    "BelowTargetLevel",
                    "at level 3 (System Development); the target is level 7 (Integrations)",
                ),
                (
                    "ServingAllowed",
                    "False",
                    "LevelBelowServingRequirement",
                    "mltech fraud is at level 3 (System Development); "
                    "serving requires level 6 (built-in default)",
                ),
                ("Serving", "False", "NoModel", "spec.model is not set; nothing to serve"),
                ("Degraded", "False", "AsExpected", "nothing is served below the required level"),
                ("ComponentsReady", "True", "NoComponents", "the technology has no components"),
                (
                    "EntryApproved",
                    "True",
                    "EntryWithinPolicy",
                    "entry level 3 is within what the built-in default policy allows",
                ),
            ]
        ],
        "history": [
            {
                "to": 3,
                "kind": "entry",
                "reason": "entered at level 3 (System Development)",
                "by": ["mltrl-operator"],
                "at": NOW_TEXT,
            }
        ],
        "knownGoodModels": [],
        "nextLevel": {
            "level": 4,
            "name": "Proof of Concept (PoC) Development",
            "requirements": [
                "document 'requirements' with a link (research requirements with a V&V table "
                "and a risk figure per requirement)",
                "check 'unit-tests' has passed (unit tests pass)",
                "needs 1 approval",
                "the owner's approval does not count (separation of duties)",
            ],
        },
        "serving": {
            "state": "Disabled",
            "allowed": False,
            "requiredLevel": 6,
            "ready": False,
            "stopped": False,
        },
        "incidents": [],
        "entry": {"level": 3, "grantedLevel": 3, "approved": True},
        "owners": [{"name": "alice", "since": NOW_TEXT}],
        "approvedModels": [],
    }


SCENARIOS = {
    "a new technology": dict(spec=tech_spec()),
    "a composite with a missing component": dict(
        spec=tech_spec(components=[{"name": "features"}, {"name": "labels"}]),
        components=[ComponentFacts("features", "ml", 5)],
    ),
    "a served technology recording a known-good model": dict(
        spec=tech_spec(model=MODEL, targetLevel=7), level=7, isvc=isvc()
    ),
    "an invalid technology kept serving below the gate": dict(
        spec=tech_spec(model=MODEL),
        level=4,
        isvc=isvc(),
        errors=[FieldError("spec.x", "is wrong")],
    ),
}


@pytest.mark.parametrize("inputs", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_the_same_inputs_later_give_an_equal_status(inputs: dict[str, Any]) -> None:
    first = compute(**inputs)
    again = compute(**{**inputs, "level": None}, status=first, now=LATER)
    assert again == first
    assert LATER_TEXT not in again.model_dump_json()


def test_a_known_level_is_kept_and_no_entry_is_recorded_again() -> None:
    prior = compute(tech_spec(entryLevel=3))
    moved = prior.model_copy(update={"level": 5})
    status = compute(tech_spec(entryLevel=3), moved, now=LATER)
    assert (status.level, status.level_name, status.phase) == (
        5,
        'Machine Learning "Capability"',
        "Prototyping",
    )
    assert [t.kind for t in status.history] == ["entry"]


def test_a_condition_that_changes_moves_only_its_own_transition_time() -> None:
    spec = tech_spec(model=MODEL)
    first = compute(spec, level=7, isvc=isvc(ready=False))
    second = compute(spec, first, isvc=isvc(ready=True), now=LATER, generation=2)
    times = {c.type: c.last_transition_time for c in second.conditions}
    assert times == {
        "Ready": NOW_TEXT,
        "ServingAllowed": NOW_TEXT,
        "Serving": LATER_TEXT,
        "Degraded": NOW_TEXT,
        "ComponentsReady": NOW_TEXT,
        "EntryApproved": NOW_TEXT,
    }
    assert {c.observed_generation for c in second.conditions} == {2}
    assert second.observed_generation == 2


@pytest.mark.parametrize(
    ("refs", "facts", "level", "effective", "components_ready"),
    [
        ([], [], 6, 6, (True, "NoComponents", "the technology has no components")),
        (
            [{"name": "a"}, {"name": "b"}],
            [ComponentFacts("a", "ml", 6), ComponentFacts("b", "ml", 9)],
            6,
            6,
            (True, "ComponentsAtLevel", "all 2 components are at level 6 or above"),
        ),
        (
            [{"name": "a"}, {"name": "b", "namespace": "shared"}],
            [ComponentFacts("a", "ml", 5), ComponentFacts("b", "shared", 4)],
            6,
            4,
            (
                False,
                "ComponentBelowLevel",
                "below this technology's level 6: a (level 5), shared/b (level 4); "
                "the effective level is 4",
            ),
        ),
        (
            [{"name": "a"}, {"name": "b"}],
            [ComponentFacts("a", "ml", 7)],
            6,
            6,
            (False, "ComponentMissing", "missing or without a level yet: b"),
        ),
        (
            [{"name": "a"}],
            [ComponentFacts("a", "ml", None), ComponentFacts("a", "other", 9)],
            6,
            6,
            (False, "ComponentMissing", "missing or without a level yet: a"),
        ),
        (
            [{"name": "a"}, {"name": "b"}],
            [ComponentFacts("a", "ml", 3)],
            6,
            3,
            (False, "ComponentMissing", "missing or without a level yet: b"),
        ),
    ],
    ids=[
        "no components",
        "components at or above the level leave it alone",
        "the lowest component sets the effective level",
        "a missing component does not lower the effective level but is reported",
        "a component without a level is missing, a namesake elsewhere does not count",
        "a missing component is reported before a low one, which still lowers the level",
    ],
)
def test_components_and_the_effective_level(
    refs: list[dict[str, str]],
    facts: list[ComponentFacts],
    level: int,
    effective: int,
    components_ready: tuple[bool, str, str],
) -> None:
    status = compute(tech_spec(components=refs), level=level, components=facts)
    assert status.effective_level == effective
    assert condition(status, "ComponentsReady") == components_ready


@pytest.mark.parametrize(
    ("target", "level", "facts", "errors", "ready"),
    [
        (
            6,
            6,
            [ComponentFacts("a", "ml", 9)],
            [FieldError("spec.x", "bad"), FieldError("spec.y", "worse")],
            (False, "ValidationFailed", "spec.x: bad; spec.y: worse"),
        ),
        (
            7,
            6,
            [ComponentFacts("a", "ml", 9)],
            [],
            (
                False,
                "BelowTargetLevel",
                "at level 6 (Application Development); the target is level 7 (Integrations)",
            ),
        ),
        (6, 6, [], [], (False, "ComponentMissing", "missing or without a level yet: a")),
        (
            6,
            7,
            [ComponentFacts("a", "ml", 5)],
            [],
            (
                False,
                "ComponentBelowLevel",
                "components hold the effective level below the target 6: below this technology's "
                "level 7: a (level 5); the effective level is 5",
            ),
        ),
        (
            6,
            6,
            [ComponentFacts("a", "ml", 6)],
            [],
            (True, "AtTargetLevel", "the effective level 6 meets the target 6"),
        ),
        (
            6,
            8,
            [ComponentFacts("a", "ml", 7)],
            [],
            (True, "AtTargetLevel", "the effective level 7 meets the target 6"),
        ),
    ],
    ids=[
        "validation errors come first, all of them",
        "below the target",
        "at the target with a missing component",
        "at the target but held below it by a component",
        "at the target",
        "above the target with a component lower than the level but not than the target",
    ],
)
def test_ready(
    target: int,
    level: int,
    facts: list[ComponentFacts],
    errors: list[FieldError],
    ready: tuple[bool, str, str],
) -> None:
    spec = tech_spec(entryLevel=3, targetLevel=target, components=[{"name": "a"}])
    assert condition(compute(spec, level=level, components=facts, errors=errors), "Ready") == ready


BLOCKED = (
    "mltech fraud is at level 4 (Proof of Concept (PoC) Development); "
    "serving requires level 6 (built-in default)"
)


@pytest.mark.parametrize(
    ("fields", "level", "facts", "state", "serving", "degraded"),
    [
        (
            {},
            7,
            None,
            ServingState.DISABLED,
            (False, "NoModel", "spec.model is not set; nothing to serve"),
            False,
        ),
        (
            {"model": MODEL, "serving": {"enabled": False}},
            7,
            isvc(),
            ServingState.DISABLED,
            (False, "ServingDisabled", "spec.serving.enabled is false"),
            False,
        ),
        (
            {"model": MODEL},
            7,
            None,
            ServingState.PENDING,
            (False, "InferenceServiceNotReady", "InferenceService fraud not created yet"),
            False,
        ),
        (
            {"model": MODEL},
            7,
            isvc(exists=False),
            ServingState.PENDING,
            (False, "InferenceServiceNotReady", "InferenceService fraud not created yet"),
            False,
        ),
        (
            {"model": MODEL},
            4,
            None,
            ServingState.BLOCKED,
            (False, "LevelBelowServingRequirement", BLOCKED),
            False,
        ),
        (
            {"model": MODEL},
            4,
            isvc(stopped=True, ready=False),
            ServingState.STOPPED,
            (False, "InferenceServiceStopped", "InferenceService fraud is stopped"),
            False,
        ),
        (
            {"model": MODEL},
            4,
            isvc(),
            ServingState.DEGRADED,
            (
                True,
                "InferenceServiceReady",
                "InferenceService fraud is ready at http://fraud.ml.example (model v7)",
            ),
            True,
        ),
        (
            {"model": MODEL},
            7,
            isvc(),
            ServingState.SERVING,
            (
                True,
                "InferenceServiceReady",
                "InferenceService fraud is ready at http://fraud.ml.example (model v7)",
            ),
            False,
        ),
        (
            {"model": MODEL},
            7,
            isvc(ready=False),
            ServingState.PENDING,
            (False, "InferenceServiceNotReady", "InferenceService fraud is not ready yet"),
            False,
        ),
    ],
    ids=[
        "no model means nothing to serve",
        "serving switched off",
        "allowed and not created yet",
        "allowed and reported as not existing",
        "blocked below the gate",
        "stopped",
        "kept serving below the gate is degraded",
        "serving",
        "created but not ready",
    ],
)
def test_serving_state_and_conditions(
    fields: dict[str, Any],
    level: int,
    facts: InferenceServiceFacts | None,
    state: ServingState,
    serving: tuple[bool, str, str],
    degraded: bool,
) -> None:
    status = compute(tech_spec(**fields), level=level, isvc=facts)
    assert status.serving is not None
    assert status.serving.state is state
    assert condition(status, "Serving") == serving
    expected_degraded = (
        (
            True,
            "KeptBelowRequiredLevel",
            f"InferenceService fraud is kept serving although {BLOCKED}",
        )
        if degraded
        else (False, "AsExpected", "nothing is served below the required level")
    )
    assert condition(status, "Degraded") == expected_degraded
    assert condition(status, "ServingAllowed")[0] is (level >= 6)


def test_the_serving_status_reports_the_inference_service_and_the_gate() -> None:
    spec = tech_spec(model=MODEL, serving={"requiredLevel": 8})
    status = compute(spec, level=9, isvc=isvc())
    assert status.serving is not None
    assert status.serving.to_wire() == {
        "state": "Serving",
        "allowed": True,
        "requiredLevel": 8,
        "inferenceService": "fraud",
        "url": "http://fraud.ml.example",
        "ready": True,
        "modelVersion": "v7",
        "stopped": False,
    }
    assert condition(status, "ServingAllowed") == (
        True,
        "LevelMeetsServingRequirement",
        "mltech fraud is at level 9 (Deployment); serving requires level 8 "
        "(spec.serving.requiredLevel)",
    )


def test_the_serving_status_names_the_inference_service_to_be_created() -> None:
    spec = tech_spec(model=MODEL, serving={"inferenceServiceName": "fraud-v2"})
    status = compute(spec, level=4)
    assert status.serving is not None
    assert (status.serving.state, status.serving.inference_service) == (
        ServingState.BLOCKED,
        "fraud-v2",
    )


@pytest.mark.parametrize(
    ("level", "facts", "recorded"),
    [
        (7, isvc(), ["v7"]),
        (7, isvc(version="v6"), []),
        (7, isvc(version=None), []),
        (7, isvc(ready=False), []),
        (4, isvc(), []),
        (7, isvc(stopped=True), []),
    ],
    ids=[
        "the spec's model served ready at the required level is known good",
        "a rolled-back model being served is not recorded again",
        "an InferenceService without a model version is not recorded",
        "a model that is not ready is not recorded",
        "a model served below the gate is not recorded",
        "a stopped model is not recorded",
    ],
)
def test_known_good_models(level: int, facts: InferenceServiceFacts, recorded: list[str]) -> None:
    status = compute(tech_spec(model=MODEL), level=level, isvc=facts)
    assert [m.version for m in status.known_good_models] == recorded
    assert all(m.served_at == NOW_TEXT for m in status.known_good_models)


@pytest.mark.parametrize(
    ("level", "target", "policy", "next_level"),
    [
        (3, 9, DEFAULT_POLICY, (4, "Proof of Concept (PoC) Development")),
        (8, 9, DEFAULT_POLICY, (9, "Deployment")),
        (9, 9, DEFAULT_POLICY, None),
        (7, 7, DEFAULT_POLICY, None),
        (8, 7, DEFAULT_POLICY, None),
    ],
    ids=[
        "below the target the next level is one up",
        "the last level before deployment",
        "nothing after level 9",
        "nothing beyond the target",
        "nothing when already above the target",
    ],
)
def test_next_level(
    level: int, target: int, policy: EffectivePolicy, next_level: tuple[int, str] | None
) -> None:
    status = compute(tech_spec(targetLevel=target), level=level, policy=policy)
    found = (status.next_level.level, status.next_level.name) if status.next_level else None
    assert found == next_level


def test_next_level_lists_the_policys_requirements_in_words() -> None:
    policy = with_policy(separation_of_duties=False)
    status = compute(tech_spec(), level=8, policy=policy)
    assert status.next_level is not None
    assert status.next_level.requirements == [
        "document 'monitoring-plan' with a link (monitoring with owners and a feedback channel)",
        "check 'drift-checks' has passed (drift checks are in place and pass)",
        "needs 2 approvals from distinct reviewers",
        "needs an approval from a reviewer with role 'sre'",
    ]


def test_incidents_are_carried_over_untouched() -> None:
    incident = Incident(
        fingerprint="f",
        alert_name="ModelDrift",
        starts_at="t",
        action="demote",
        to_level=4,
        received_at=NOW_TEXT,
    )
    prior = compute(tech_spec()).model_copy(update={"incidents": [incident]})
    assert compute(tech_spec(), prior, now=LATER).incidents == [incident]


APPROVED = ReviewEvaluation(ReviewPhase.APPROVED, (), ("bob", "carol"), "ok", (), True)


def at_level(level: int, effective: int | None = None) -> MLTechnologyStatus:
    return compute(tech_spec(targetLevel=9), level=level).model_copy(
        update={"effective_level": level if effective is None else effective}
    )


@pytest.mark.parametrize(
    ("before", "spec", "level", "phase", "effective", "kind"),
    [
        (at_level(5), review(5, 6), 6, "Productization", 5, "promotion"),
        (at_level(6), review(6, 4, reason="leak"), 4, "Prototyping", 4, "switchback"),
        (at_level(6, effective=3), review(6, 5, reason="leak"), 5, "Prototyping", 3, "switchback"),
    ],
    ids=[
        "a promotion moves the level and leaves raising the effective level to compute_status",
        "a switchback lowers the effective level at once so that the gate closes",
        "a switchback never raises an effective level held down by components",
    ],
)
def test_apply_review_to_status(
    before: MLTechnologyStatus, spec: Any, level: int, phase: str, effective: int, kind: str
) -> None:
    snapshot = before.model_copy(deep=True)
    after = apply_review_to_status(before, "r1", spec, APPROVED, LATER)
    assert before == snapshot
    assert (after.level, after.phase, after.effective_level) == (level, phase, effective)
    assert after.level_name == LEVEL_NAMES[level]
    assert (after.history[-1].kind, after.history[-1].review, after.history[-1].at) == (
        kind,
        "r1",
        LATER_TEXT,
    )
    assert after.history[:-1] == before.history


def test_apply_review_keeps_the_history_within_its_limit() -> None:
    entries = [LevelTransition(to=5, kind="entry", at=f"t{n}") for n in range(HISTORY_LIMIT)]
    before = at_level(5).model_copy(update={"history": entries})
    after = apply_review_to_status(before, "r1", review(5, 6), APPROVED, LATER)
    assert len(after.history) == HISTORY_LIMIT
    assert (after.history[0].at, after.history[-1].review) == ("t1", "r1")


@pytest.mark.parametrize(
    ("status", "spec", "evaluation", "error"),
    [
        (
            MLTechnologyStatus(),
            review(5, 6),
            APPROVED,
            "status.level is not set; compute the status first",
        ),
        (
            at_level(4),
            review(5, 6),
            APPROVED,
            "review r1 starts at level 5, but the technology is at level 4",
        ),
        (
            at_level(5),
            review(5, 6),
            ReviewEvaluation(ReviewPhase.PENDING, ("x",), (), "", (), True),
            "review r1 is Pending, not Approved",
        ),
    ],
    ids=[
        "a status without a level",
        "a review from another level",
        "a review that is not approved",
    ],
)
def test_apply_review_refuses(
    status: MLTechnologyStatus, spec: Any, evaluation: ReviewEvaluation, error: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(error)):
        apply_review_to_status(status, "r1", spec, evaluation, LATER)


def test_apply_demotion_is_an_embedded_switchback() -> None:
    before = at_level(9)
    after = apply_demotion(before, 4, "ModelDrift", "fp1", LATER)
    assert (after.level, after.level_name, after.phase, after.effective_level) == (
        4,
        "Proof of Concept (PoC) Development",
        "Prototyping",
        4,
    )
    last = after.history[-1]
    assert (last.from_level, last.to, last.switchback_type, last.alert, last.at) == (
        9,
        4,
        "embedded",
        "ModelDrift/fp1",
        LATER_TEXT,
    )
    assert before.level == 9


@pytest.mark.parametrize("to_level", [4, 6], ids=["at the level", "above the level"])
def test_apply_demotion_to_a_level_not_below_changes_nothing(to_level: int) -> None:
    before = at_level(4)
    assert apply_demotion(before, to_level, "ModelDrift", "fp1", LATER) == before


def test_apply_demotion_needs_a_level() -> None:
    with pytest.raises(ValueError, match=re.escape("status.level is not set")):
        apply_demotion(MLTechnologyStatus(), 4, "ModelDrift", "fp1", LATER)


def test_results_leave_their_inputs_as_they_were() -> None:
    # Results share the parts they do not change with their inputs (issue 17: the deep
    # copies were two fifths of a plan's CPU); no code changes a status part in place
    # (test_no_model_is_changed_in_place), so computing never changes what it was given.
    spec = tech_spec(model=MODEL)
    prior = compute(spec, compute(spec), level=7, isvc=isvc())
    snapshot = prior.model_copy(deep=True)
    again = compute(spec, prior, isvc=isvc(), now=LATER)
    promoted = apply_review_to_status(prior, "r1", review(7, 8), APPROVED, LATER)
    demoted = apply_demotion(prior, 4, "ModelDrift", "fp1", LATER)
    assert prior == snapshot
    assert (promoted.level, demoted.level, again.level) == (8, 4, 7)
    assert len(promoted.history) == len(prior.history) + 1


_MUTATORS = {"append", "extend", "insert", "pop", "remove", "sort", "clear", "reverse",
             "update", "setdefault", "popitem", "add", "discard"}
# Objects of the operator's own making that are not models: kopf's settings, an SSL
# context, the operator context (its queue, its caches).
_NOT_MODELS = {"settings", "context", "ctx", "self", "cls", "_"}


def _changed_in_place(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            while isinstance(target, ast.Subscript):
                target = target.value
            if isinstance(target, ast.Attribute):
                base = target.value
                while isinstance(base, ast.Attribute):
                    base = base.value
                if not (isinstance(base, ast.Name) and base.id in _NOT_MODELS):
                    found.append(f"line {node.lineno}: {ast.unparse(target)} =")
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in _MUTATORS and isinstance(node.func.value, ast.Attribute)):
            base = node.func.value
            while isinstance(base, ast.Attribute):
                base = base.value
            if not (isinstance(base, ast.Name) and base.id in _NOT_MODELS):
                found.append(f"line {node.lineno}: {ast.unparse(node.func)}(...)")
    return found


def test_no_model_is_changed_in_place() -> None:
    """What lets plans share unchanged parts of a status instead of deep-copying it: the
    domain and the controllers replace parts (model_copy(update=...), new lists), never
    assign to a model's field or change one of its lists in place."""
    root = Path(mltrl_operator.__file__).parent
    found = {
        str(path.relative_to(root)): hits
        for layer in ("domain", "controllers", "alerts")
        for path in sorted((root / layer).glob("*.py"))
        if (hits := _changed_in_place(ast.parse(path.read_text())))
    }
    assert found == {}
