from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.harness import Sandbox, running
from tests.integration.monitoring.stack import TOKEN, MonitoredOperator


@pytest.fixture
def operated(tmp_path: Path) -> Iterator[tuple[Sandbox, MonitoredOperator]]:
    """The sandbox and `mltrl run` with its alert receiver and metrics, for one test."""
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    with running(
        tmp_path, operator=lambda s: MonitoredOperator(s, tmp_path / "operator.log", token_file)
    ) as both:
        yield both  # type: ignore[misc]  # a MonitoredOperator, built just above
