"""Whether the tests run under CI, and what a missing test dependency does there.

Locally a missing tool (Prometheus, Chromium, an optional package) skips the tests that
need it, with the install line; under CI (`CI=true`, as `.ci/run` sets) it fails them,
so nothing is silently skipped where the suite must prove everything.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(message: str) -> NoReturn:
    """A dependency the test needs is missing: fail under CI, skip elsewhere."""
    if in_ci():
        pytest.fail(message)
    pytest.skip(message, allow_module_level=True)
