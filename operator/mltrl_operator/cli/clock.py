"""The operator's clock: the system's, or, for tests that must move time by days (a level
lapsing, a waiver expiring), the instant written in a file (`mltrl run --clock-file`).

The file holds one RFC 3339 time (`2026-06-15T00:00:00Z`); the clock reads it again
whenever the file changes, so a test moves time by rewriting it. Everything in the
operator that needs the time (reconcilers, webhooks, the alert receiver, timers) asks this
one clock.

A file that cannot be read once a time was read from it (caught while being rewritten:
`echo` and Python's write_text empty it first) leaves the clock where it was, and it is
read again at the next call: falling back to the system clock there made time jump by
however far the file's time is from today, for one decision (a waiver judged expired a
day early closed a serving gate in tests/integration/operator/test_waiver_expiry.py).
Only before any time was read does the clock use the system's, saying so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from mltrl_operator.controllers.context import utc_now
from mltrl_operator.domain.durations import parse_instant

logger = logging.getLogger(__name__)


class FileClock:
    def __init__(self, path: Path, fallback: Callable[[], datetime] = utc_now) -> None:
        self.path = path
        self._fallback = fallback
        self._stamp: tuple[int, int] | None = None
        self._value: datetime | None = None
        self._warned = False

    def __call__(self) -> datetime:
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp != self._stamp:
                self._value = parse_instant(self.path.read_text().strip())
                self._stamp = stamp
                self._warned = False
        except (OSError, ValueError) as error:
            if not self._warned:
                kept = f"keeping {self._value.isoformat()}" if self._value is not None \
                    else "using the system clock"
                logger.warning("--clock-file %s cannot be read (%s): %s", self.path, error,
                               kept)
                self._warned = True
            self._stamp = None  # read again at the next call
        return self._value if self._value is not None else self._fallback()


def operator_clock(path: str | None) -> Callable[[], datetime]:
    return FileClock(Path(path)) if path else utc_now
