from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.harness import Operator, Sandbox, fresh_namespace, running


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, Operator]]:
    workdir: Path = tmp_path_factory.mktemp("cluster")
    with running(workdir) as both:
        yield both


@pytest.fixture
def sandbox(cluster: tuple[Sandbox, Operator]) -> Sandbox:
    return cluster[0]


@pytest.fixture
def operator(cluster: tuple[Sandbox, Operator]) -> Operator:
    return cluster[1]


@pytest.fixture
def namespace(sandbox: Sandbox, request: pytest.FixtureRequest) -> str:
    """A fresh namespace per test, labelled so a test's own policy selects only it."""
    return fresh_namespace(sandbox, request, "t")
