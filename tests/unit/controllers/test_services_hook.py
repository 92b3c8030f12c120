"""What `mltrl run` hands the alert receiver: the technology it just stored is the one the
operator reconciles, queued at once (issue 17), not when the watch brings it back."""

from __future__ import annotations

from typing import Any, cast

from mltrl_operator.controllers.context import OperatorContext
from mltrl_operator.controllers.technology import TechnologiesForServices
from mltrl_operator.k8s.client import KubeClient
from mltrl_operator.k8s.resources import TECHNOLOGIES


def _technology(version: str, incidents: int) -> dict[str, Any]:
    return {"apiVersion": "mltrl.dev/v1alpha1", "kind": "MLTechnology",
            "metadata": {"namespace": "pay", "name": "fraud", "resourceVersion": version},
            "spec": {"owner": "alice"},
            "status": {"level": 5, "incidents": [{"fingerprint": "f"}] * incidents}}


def test_a_stored_incident_is_queued_and_read_as_stored_until_the_watch_shows_it() -> None:
    ctx = OperatorContext(client=cast(KubeClient, object()))
    cached = _technology("10", 0)
    ctx.cache.apply(TECHNOLOGIES, None, cached)
    technologies = TechnologiesForServices(ctx)
    assert technologies("pay", "fraud") == cached

    stored = _technology("11", 1)
    technologies.stored(cached, stored)

    assert ctx.queue.waiting() == 1
    # The cache still holds version 10 (the watch is behind): our write is what is read.
    assert technologies("pay", "fraud") == stored
    # The watch catches up: the event is queued again (one key, not two) and read as sent.
    ctx.cache.apply(TECHNOLOGIES, "MODIFIED", stored)
    ctx.queue.add((TECHNOLOGIES.kind, "pay", "fraud"))
    assert ctx.queue.waiting() == 1
    assert technologies("pay", "fraud") == stored
