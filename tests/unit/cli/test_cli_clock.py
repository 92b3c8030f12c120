"""`mltrl run --clock-file`: the operator's time, moved by rewriting a file."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mltrl_operator.cli.clock import FileClock, operator_clock
from mltrl_operator.cli.options import parser
from mltrl_operator.controllers.context import utc_now

REAL = datetime(2030, 1, 1, tzinfo=UTC)


def test_the_clock_follows_the_file_and_falls_back_saying_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "now"
    clock = FileClock(path, fallback=lambda: REAL)
    with caplog.at_level(logging.WARNING):
        assert clock() == REAL
        assert clock() == REAL
    assert len([r for r in caplog.records if "cannot be read" in r.getMessage()]) == 1
    path.write_text("2026-06-15T00:00:00Z\n")
    assert clock() == datetime(2026, 6, 15, tzinfo=UTC)
    path.write_text("2026-06-16T00:00:00Z")
    assert clock() == datetime(2026, 6, 16, tzinfo=UTC)
    # Caught mid-rewrite (emptied first) or garbled: the clock stays where it was, says
    # so, and reads the file again at the next call.
    with caplog.at_level(logging.WARNING):
        path.write_text("")
        assert clock() == datetime(2026, 6, 16, tzinfo=UTC)
        path.write_text("not a time")
        assert clock() == datetime(2026, 6, 16, tzinfo=UTC)
    assert any("keeping 2026-06-16T00:00:00+00:00" in r.getMessage() for r in caplog.records)
    path.write_text("2026-06-17T00:00:00Z")
    assert clock() == datetime(2026, 6, 17, tzinfo=UTC)


def test_run_takes_the_option_and_defaults_to_the_system_clock(tmp_path: Path) -> None:
    args = parser().parse_args(["run", "--clock-file", str(tmp_path / "now")])
    assert isinstance(operator_clock(args.clock_file), FileClock)
    assert operator_clock(parser().parse_args(["run"]).clock_file) is utc_now
