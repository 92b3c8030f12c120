"""Condition reasons come only from the documented constants (domain/condition_types.py):
a literal reason in a controller or a domain module is a reason nobody documented."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import mltrl_operator

ROOT = Path(mltrl_operator.__file__).parent
SOURCES = sorted([*ROOT.glob("controllers/*.py"), *ROOT.glob("domain/*.py")])
# Whatever builds a condition takes its reason here (by keyword or third position).
CONDITION_BUILDERS = {"set_condition": None, "_ConditionValue": 1, "GateDecision": None}


def literal_reasons(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if name not in CONDITION_BUILDERS:
            continue
        candidates = [k.value for k in node.keywords if k.arg == "reason"]
        position = CONDITION_BUILDERS[name]
        if position is not None and len(node.args) > position:
            candidates.append(node.args[position])
        for value in candidates:
            for part in ast.walk(value):
                if isinstance(part, ast.Constant) and isinstance(part.value, str):
                    found.append((node.lineno, part.value))
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_condition_reason_is_a_literal(path: Path) -> None:
    assert literal_reasons(ast.parse(path.read_text())) == []


def test_the_check_catches_a_literal() -> None:
    source = 'set_condition(c, type="Applied", reason="NotApplied")\n_ConditionValue(True, "X", "")'
    assert literal_reasons(ast.parse(source)) == [(1, "NotApplied"), (2, "X")]
