"""An API server that sheds load: between `mltrl run` and the sandbox, a proxy answers
every third request 429 (Retry-After: 1) or 503. The operator still converges: reviews
are applied, levels reached, nothing written twice."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import yaml
from aiohttp import web

from tests.integration.harness import MLTRL, Operator, Process, Sandbox, free_port
from tests.integration.operator.scenarios import policy, review, technology
from tests.integration.operator.test_reviews import status_of, wait_for_level, wait_for_phase

pytestmark = pytest.mark.integration

HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}


class FaultyProxy:
    """Forwards to the sandbox; every `every`-th request that is not a watch is refused
    with 429 or 503 instead (watches are streamed through)."""

    def __init__(self, upstream: str, every: int = 3) -> None:
        self.upstream = upstream
        self.every = every
        self.port = free_port()
        self.seen = 0
        self.refused: dict[int, int] = {429: 0, 503: 0}
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        watch = request.query.get("watch") in {"true", "1"}
        if not watch and not request.path.startswith("/sandbox/"):
            self.seen += 1
            if self.seen % self.every == 0:
                code = 429 if (self.seen // self.every) % 2 else 503
                self.refused[code] += 1
                headers = {"Retry-After": "1"} if code == 429 else {}
                return web.json_response(
                    {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
                     "reason": "TooManyRequests" if code == 429 else "ServiceUnavailable",
                     "message": "the proxy sheds this request"},
                    status=code, headers=headers,
                )
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        async with self._session.request(
            request.method, self.upstream + request.path_qs, headers=headers,
            data=await request.read(), timeout=aiohttp.ClientTimeout(total=None),
        ) as upstream:
            response = web.StreamResponse(status=upstream.status, headers={
                k: v for k, v in upstream.headers.items() if k.lower() not in HOP_HEADERS
            })
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        self._session = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, shutdown_timeout=0.1)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()
        await self._session.close()

    def _run(self) -> None:
        self._loop.run_until_complete(self._serve())
        # Watches still streaming when the test ends: end them before closing the loop.
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.close()

    def __enter__(self) -> FaultyProxy:
        self._session: aiohttp.ClientSession | None = None
        self._thread.start()
        assert self._ready.wait(10), "the proxy did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    (tmp_path / "sandbox").mkdir()
    started = Sandbox(tmp_path / "sandbox", kserve=False)
    try:  # stopped even if it never answers
        yield started.start()
    finally:
        started.stop()


def test_the_operator_converges_through_429_and_503(sandbox: Sandbox, tmp_path: Path) -> None:
    namespace = sandbox.namespace("faults", {"mltrl-test": "faults"})
    sandbox.apply(policy("faults-policy", namespace))
    with FaultyProxy(sandbox.url) as proxy:
        config = yaml.safe_load(sandbox.kubeconfig.read_text())
        config["clusters"][0]["cluster"]["server"] = proxy.url
        kubeconfig = tmp_path / "through-the-proxy"
        kubeconfig.write_text(yaml.safe_dump(config))
        operator = Operator(sandbox, tmp_path / "operator.log")
        operator.process = Process(
            [str(MLTRL), "run", "--kubeconfig", str(kubeconfig),
             "--liveness", f"http://127.0.0.1:{operator.health_port}/healthz"],
            tmp_path / "operator.log",
        )
        operator.start()
        try:
            for name in ("ranker", "scorer", "tagger"):
                sandbox.apply(technology(name, namespace))
            for name in ("ranker", "scorer", "tagger"):
                wait_for_level(sandbox, name, namespace, 3)
                sandbox.apply(review(f"{name}-to-4", namespace, name, 3, 4))
            for name in ("ranker", "scorer", "tagger"):
                wait_for_phase(sandbox, f"{name}-to-4", namespace, "Applied")
                status = wait_for_level(sandbox, name, namespace, 4)
                assert [h.get("review") for h in status["history"]
                        if h.get("review")] == [f"{name}-to-4"]
            assert status_of(sandbox, "mltech", "ranker", namespace)["level"] == 4
        finally:
            operator.stop()
        output = operator.process.output()
    assert proxy.refused[429] >= 2 and proxy.refused[503] >= 2, proxy.refused
    assert "Traceback" not in output, output
