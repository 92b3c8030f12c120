"""The domain layer stays pure: no Kubernetes, network, metrics, clock or I/O."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import mltrl_operator.domain

DOMAIN = Path(mltrl_operator.domain.__file__).parent
MODULES = sorted(DOMAIN.glob("*.py"))
STANDARD = {
    "__future__",
    "collections",
    "copy",
    "dataclasses",
    "datetime",
    "difflib",
    "enum",
    "hashlib",  # approval content digests and the audit record's hash chain: no I/O
    "json",  # canonical JSON for those digests and hashes
    "re",
    "types",
    "typing",
}
OWN = ("mltrl_operator.api", "mltrl_operator.domain")
CLOCK_AND_IO_METHODS = {"now", "utcnow", "today", "time", "monotonic", "getenv", "environ"}
IO_BUILTINS = {"open", "print", "input"}


def imported(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_a_domain_module_imports_only_the_standard_library_and_the_api(path: Path) -> None:
    modules = imported(ast.parse(path.read_text()))
    foreign = {m for m in modules if m.split(".")[0] not in STANDARD and not m.startswith(OWN)}
    assert foreign == set()


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_a_domain_module_neither_reads_the_clock_nor_does_io(path: Path) -> None:
    tree = ast.parse(path.read_text())
    calls = [node.func for node in ast.walk(tree) if isinstance(node, ast.Call)]
    used = {f.attr for f in calls if isinstance(f, ast.Attribute)} & CLOCK_AND_IO_METHODS
    used |= {f.id for f in calls if isinstance(f, ast.Name)} & IO_BUILTINS
    used |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == "environ"}
    assert used == set()


def test_the_purity_checks_see_every_module() -> None:
    assert {p.stem for p in MODULES} >= {
        "alerts",
        "condition_types",
        "conditions",
        "errors",
        "gating",
        "levels",
        "policy",
        "requirements",
        "reviews",
        "serving",
        "technology",
        "transitions",
        "validation",
    }
