"""The Dockerfile cannot be built here (no registry access for base images); these checks
keep it to what the chart and the runtime contract expect."""

from __future__ import annotations

import fnmatch
import json
import re

from tests.delivery.support import REPO

DOCKERFILE = (REPO / "Dockerfile").read_text()


def _instructions() -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", DOCKERFILE)
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def test_base_image_is_python_3_11_slim_pinned_by_tag() -> None:
    bases = [rest for keyword, rest in _instructions() if keyword == "FROM"]
    assert len(bases) == 1
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?", bases[0])


def test_runs_mltrl_as_non_root_65532() -> None:
    instructions = _instructions()
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users and users[-1].split(":")[0] == "65532"
    entrypoint = [rest for keyword, rest in instructions if keyword == "ENTRYPOINT"]
    command = [rest for keyword, rest in instructions if keyword == "CMD"]
    assert [json.loads(e) for e in entrypoint] == [["mltrl"]]
    assert [json.loads(c) for c in command] == [["run"]]
    assert [k for k, _ in instructions].index("USER") > [k for k, _ in instructions].index("RUN")


def test_installs_the_package_without_a_pip_cache() -> None:
    runs = " ".join(rest for keyword, rest in _instructions() if keyword == "RUN")
    assert "pip install --no-cache-dir ." in runs


def _ignored(path: str, patterns: list[str]) -> bool:
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path, pattern + "/*") or (
            pattern.startswith("**/") and fnmatch.fnmatch(path.split("/")[-1], pattern[3:])
        ):
            ignored = not negate
    return ignored


def test_dockerignore_lets_through_exactly_what_is_copied() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = [
        source
        for keyword, rest in _instructions()
        if keyword == "COPY"
        for source in rest.split()[:-1]
    ]
    assert copied
    for source in copied:
        assert (REPO / source).exists(), source
        assert not _ignored(source.rstrip("/"), patterns), source
    for path in ("operator/mltrl_operator/cli/__init__.py", "pyproject.toml", "README.md"):
        assert not _ignored(path, patterns), path
    for path in (".venv", ".git", "tests", "docs", "operator/mltrl_operator.egg-info",
                 "operator/mltrl_operator/__pycache__", "operator/mltrl_sandbox",
                 "operator/mltrl_sandbox/server.py"):
        assert _ignored(path, patterns), path


def test_the_mltrl_console_script_is_declared() -> None:
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["mltrl"] == "mltrl_operator.cli:main"
    assert project["requires-python"] == ">=3.11"
