"""An operator that crashes and comes back applies nothing twice and loses nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.harness import running
from tests.integration.operator.scenarios import policy, review, technology
from tests.integration.operator.test_reviews import status_of, wait_for_level, wait_for_phase

pytestmark = pytest.mark.integration


def test_restarts_neither_repeat_nor_lose_work(tmp_path: Path) -> None:
    with running(tmp_path) as (sandbox, operator):
        namespace = sandbox.namespace("restarts", {"mltrl-test": "restarts"})
        sandbox.apply(policy("restarts-policy", namespace))
        sandbox.apply(technology("ranker", namespace))
        wait_for_level(sandbox, "ranker", namespace, 3)

        sandbox.apply(review("ranker-to-4", namespace, "ranker", 3, 4))
        wait_for_phase(sandbox, "ranker-to-4", namespace, "Applied")
        operator.restart(crash=True)

        # Work that arrives while the operator is down is picked up when it is back.
        operator.process.kill()
        sandbox.apply(review("ranker-to-5", namespace, "ranker", 4, 5))
        operator.start()
        wait_for_phase(sandbox, "ranker-to-5", namespace, "Applied")
        status = wait_for_level(sandbox, "ranker", namespace, 5)

        operator.restart(crash=True)
        sandbox.apply(technology("probe", namespace))  # proves the new process is working
        wait_for_level(sandbox, "probe", namespace, 3)
        status = status_of(sandbox, "mltech", "ranker", namespace)
        assert status["level"] == 5
        assert [(h["kind"], h.get("review")) for h in status["history"]] == [
            ("entry", None), ("promotion", "ranker-to-4"), ("promotion", "ranker-to-5"),
        ]
        assert status_of(sandbox, "lvlreview", "ranker-to-4", namespace)["phase"] == "Applied"


