"""`--faults` and `--latency`: what the sandbox injects, seeded, and what it spares."""

from __future__ import annotations

from collections import Counter

import aiohttp
import pytest

from mltrl_sandbox.faults import SPARE_HEADER, Faults, FaultSettings, parse_latency, parse_rate
from mltrl_sandbox.server import SandboxServer

HEADERS = {"Authorization": "Bearer admin-token", "Content-Type": "application/json"}


async def _run(seed: int, requests: int = 60) -> tuple[Counter[int], Counter[str], int]:
    faults = Faults(FaultSettings(rate=0.5, seed=seed))
    codes: Counter[int] = Counter()
    async with SandboxServer(faults=faults) as server, aiohttp.ClientSession() as http:
        for n in range(requests):
            body = {"metadata": {"name": f"cm-{n}"}, "data": {"n": str(n)}}
            try:
                async with http.post(f"{server.url}/api/v1/namespaces/default/configmaps",
                                     json=body, headers=HEADERS) as response:
                    codes[response.status] += 1
            except aiohttp.ClientError:
                codes[0] += 1  # the answer was lost
        async with http.get(f"{server.url}/api/v1/namespaces/default/configmaps",
                            headers={**HEADERS, SPARE_HEADER: "1"}) as response:
            stored = len((await response.json())["items"])
    return codes, faults.injected, stored


async def test_faults_are_seeded_and_lost_answers_were_applied() -> None:
    first, injected, stored = await _run(seed=7)
    again, injected_again, _ = await _run(seed=7)
    assert (first, injected) == (again, injected_again)
    assert first[201] and first[0] and {500, 503, 429} & set(first)
    # Every lost answer is a write that happened: stored = answered 201 + lost.
    assert stored == first[201] + first[0] == first[201] + injected["write-answer-lost"]


def test_options_are_checked() -> None:
    assert parse_latency("5,20") == (5, 20)
    assert parse_rate("0.2") == 0.2
    with pytest.raises(ValueError, match="READ_MS,WRITE_MS"):
        parse_latency("5")
    with pytest.raises(ValueError, match="between 0 and 1"):
        parse_rate("2")
