"""kopf's settings as the operator runs it."""

from __future__ import annotations

import kopf

from mltrl_operator.controllers.settings import BOOKKEEPING_PREFIX, configure
from mltrl_operator.k8s.client import PAGE_SIZE


def test_kopf_lists_a_page_at_a_time_and_lets_idle_workers_go() -> None:
    """kopf's defaults list each kind in one response and keep an idle object's worker
    (and its last raw event) five seconds: at start-up, every object as sent alive at once
    next to the cache (issue 17, docs/benchmarks.md)."""
    settings = configure(kopf.OperatorSettings())
    assert settings.watching.chunk_size == PAGE_SIZE
    assert 0 < settings.queueing.idle_timeout < kopf.OperatorSettings().queueing.idle_timeout
    assert settings.persistence.finalizer.startswith(BOOKKEEPING_PREFIX)
    assert settings.posting.enabled is False
