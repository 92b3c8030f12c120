"""The sandbox's limit on requests in flight: kube-apiserver's --max-requests-inflight and
--max-mutating-requests-inflight, answered as kube-apiserver answers (429, Retry-After: 1),
and a client that honours Retry-After (the operator's own) gets everything done."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from mltrl_operator.k8s.client import Etiquette, KubeClient
from mltrl_operator.k8s.connection import load_connection
from mltrl_operator.k8s.resources import ResourceRef
from mltrl_sandbox.faults import Faults, FaultSettings
from mltrl_sandbox.inflight import InflightLimits
from mltrl_sandbox.server import SandboxServer

HEADERS = {"Authorization": "Bearer admin-token", "Content-Type": "application/json"}
CONFIGMAPS = ResourceRef("", "v1", "configmaps", "ConfigMap")
SLOW = FaultSettings(read_ms=100, write_ms=100)


async def test_beyond_the_limit_writes_are_turned_away_with_retry_after() -> None:
    limits = InflightLimits(read_only=400, mutating=2)
    async with SandboxServer(faults=Faults(SLOW), inflight=limits) as server, \
            aiohttp.ClientSession() as http:
        async def create(n: int) -> tuple[int, str | None, dict[str, object]]:
            body = {"metadata": {"name": f"cm-{n}"}}
            async with http.post(f"{server.url}/api/v1/namespaces/default/configmaps",
                                 json=body, headers=HEADERS) as response:
                return response.status, response.headers.get("Retry-After"), \
                    await response.json()

        answers = await asyncio.gather(*(create(n) for n in range(6)))
        # Reads have a limit of their own: a read goes through while writes are full.
        async with http.get(f"{server.url}/api/v1/namespaces/default/configmaps",
                            headers=HEADERS) as response:
            listed = (await response.json())["items"]
        async with http.get(f"{server.url}/sandbox/inflight") as response:
            report = await response.json()
    codes = sorted(status for status, _, _ in answers)
    assert codes == [201, 201, 429, 429, 429, 429]
    refused = [(after, body) for status, after, body in answers if status == 429]
    assert all(after == "1" for after, _ in refused)
    assert all(body["reason"] == "TooManyRequests" for _, body in refused)
    assert len(listed) == 2  # a refused write did nothing
    assert report["rejected"] == {"mutating": 4}
    assert report["peak"]["mutating"] == 2
    assert report["limits"] == {"read_only": 400, "mutating": 2}


async def test_the_operators_client_waits_and_gets_everything_done(tmp_path: Path) -> None:
    limits = InflightLimits(read_only=1, mutating=1)
    async with SandboxServer(faults=Faults(SLOW), inflight=limits) as server:
        kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
        async with KubeClient(load_connection(str(kubeconfig))) as client:
            await asyncio.gather(*(
                client.create(CONFIGMAPS, "default", {"metadata": {"name": f"cm-{n}"}})
                for n in range(4)
            ))
            listed = await client.list(CONFIGMAPS, "default")
    assert sorted(item["metadata"]["name"] for item in listed) == [f"cm-{n}" for n in range(4)]
    assert server.inflight.rejected["mutating"] >= 3


async def test_watches_do_not_count_and_zero_means_no_limit() -> None:
    limits = InflightLimits(read_only=0, mutating=0)
    async with SandboxServer(faults=Faults(SLOW), inflight=limits) as server, \
            aiohttp.ClientSession() as http:
        async def create(n: int) -> int:
            async with http.post(f"{server.url}/api/v1/namespaces/default/configmaps",
                                 json={"metadata": {"name": f"cm-{n}"}},
                                 headers=HEADERS) as response:
                return response.status

        assert await asyncio.gather(*(create(n) for n in range(20))) == [201] * 20
    limited = SandboxServer(inflight=InflightLimits(read_only=1, mutating=1))
    async with limited as server, aiohttp.ClientSession() as http:
        watch = await http.get(f"{server.url}/api/v1/namespaces/default/configmaps",
                               params={"watch": "true"}, headers=HEADERS)
        try:
            async with http.get(f"{server.url}/api/v1/namespaces/default/configmaps",
                                headers=HEADERS) as response:
                assert response.status == 200  # the open watch holds no seat
        finally:
            watch.close()


async def test_waiting_for_a_turn_does_not_count_against_the_request_timeout(
    tmp_path: Path,
) -> None:
    """At 10,000 technologies kopf asks for thousands of requests at once; the client sends
    `in_flight` of them and the rest wait. A request's timeout is the API server's time to
    answer it, so waiting for a turn must not time it out (nor start a retry storm)."""
    async with SandboxServer(faults=Faults(FaultSettings(write_ms=200))) as server:
        kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
        etiquette = Etiquette(timeout=1.0, in_flight=2, attempts=1)
        async with KubeClient(load_connection(str(kubeconfig)), etiquette=etiquette) as client:
            await asyncio.gather(*(
                client.create(CONFIGMAPS, "default", {"metadata": {"name": f"cm-{n}"}})
                for n in range(16)  # 8 turns of about 200 ms each: longer than the timeout
            ))
            assert len(await client.list(CONFIGMAPS, "default")) == 16
        assert server.inflight.peak["mutating"] == 2
