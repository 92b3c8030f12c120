"""Injected faults and latency for the sandbox API server: `--faults RATE`, `--latency
READ_MS,WRITE_MS`, `--fault-seed N`.

With probability RATE a request to the Kubernetes API (/api, /apis) meets one of the
faults a real control plane shows under load or during an upgrade:

- reads: 500, 503, or 429 with Retry-After;
- conditional writes (a resourceVersion in the body): also a spurious 409 Conflict, as if
  someone else had written first;
- writes: 500, 503, 429 before the write, or the answer lost after the write was applied
  (the connection is dropped: the client cannot tell whether it happened);
- watches: refused (503), or cut after a random short time.

The choice is drawn from a `random.Random(seed)`, so a run is reproducible for a given
order of requests. Requests carrying `X-Sandbox-No-Faults: 1` are spared: test drivers and
observers use it so that only the code under test meets the faults. The counts of what was
injected are kept in `Faults.injected` and served at /sandbox/faults.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SPARE_HEADER = "X-Sandbox-No-Faults"
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass
class FaultSettings:
    rate: float = 0.0
    read_ms: int = 0
    write_ms: int = 0
    seed: int = 0


def parse_rate(text: str) -> float:
    rate = float(text)
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"the fault rate must be between 0 and 1, not {text}")
    return rate


def parse_latency(text: str) -> tuple[int, int]:
    """`READ_MS,WRITE_MS`, e.g. `5,20`."""
    read, sep, write = text.partition(",")
    if not sep:
        raise ValueError(f"--latency takes READ_MS,WRITE_MS, not {text!r}")
    values = int(read), int(write)
    if min(values) < 0:
        raise ValueError(f"latencies must not be negative: {text!r}")
    return values


def _status(code: int, reason: str, message: str) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": f"injected fault: {message}", "reason": reason, "code": code}
    headers = {"Retry-After": "1"} if code == 429 else None
    return web.json_response(body, status=code, headers=headers)


ERRORS = (
    (500, "InternalError", "internal error"),
    (503, "ServiceUnavailable", "the server is currently unable to handle the request"),
    (429, "TooManyRequests", "too many requests"),
)


class Faults:
    def __init__(self, settings: FaultSettings) -> None:
        self.settings = settings
        self.random = random.Random(settings.seed)
        self.injected: Counter[str] = Counter()

    @property
    def active(self) -> bool:
        s = self.settings
        return s.rate > 0 or s.read_ms > 0 or s.write_ms > 0

    def _error(self, kind: str) -> web.Response:
        code, reason, message = self.random.choice(ERRORS)
        self.injected[f"{kind}-{code}"] += 1
        return _status(code, reason, message)

    async def _conditional(self, request: web.Request) -> bool:
        if request.method not in ("PUT", "PATCH") or not request.can_read_body:
            return False
        try:
            body = json.loads(await request.read())
        except ValueError:
            return False
        metadata = body.get("metadata") if isinstance(body, dict) else None
        return isinstance(metadata, dict) and bool(metadata.get("resourceVersion"))

    @staticmethod
    def _drop(request: web.Request) -> None:
        if request.transport is not None:
            request.transport.abort()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if (
            not self.active
            or request.headers.get(SPARE_HEADER) == "1"
            or not (path.startswith("/api/") or path.startswith("/apis/"))
        ):
            return await handler(request)
        s = self.settings
        write = request.method in WRITES
        watch = request.method == "GET" and request.query.get("watch") in ("true", "1")
        delay = (s.write_ms if write else 0 if watch else s.read_ms) / 1000
        if delay:
            await asyncio.sleep(delay * (0.5 + self.random.random()))
        if s.rate <= 0 or self.random.random() >= s.rate:
            return await handler(request)
        if watch:
            if self.random.random() < 0.5:
                return self._error("watch-refused")
            self.injected["watch-cut"] += 1
            try:
                return await asyncio.wait_for(handler(request), self.random.uniform(0.2, 3.0))
            finally:
                self._drop(request)
        if not write:
            return self._error("read")
        roll = self.random.random()
        if roll < 0.25 and await self._conditional(request):
            self.injected["conflict-409"] += 1
            return _status(409, "Conflict", "the object has been modified; please apply your "
                           "changes to the latest version and try again")
        if roll < 0.6:
            return self._error("write")
        response = await handler(request)
        if response.status < 300:
            self.injected["write-answer-lost"] += 1
            self._drop(request)
        return response

    async def report(self, _: web.Request) -> web.Response:
        return web.json_response({"settings": vars(self.settings), "injected": self.injected})

    async def configure(self, request: web.Request) -> web.Response:
        """POST /sandbox/faults {"rate": 0.0}: a test turns faults down to let things settle."""
        changes = await request.json()
        for key in ("rate", "read_ms", "write_ms"):
            if key in changes:
                setattr(self.settings, key, type(getattr(self.settings, key))(changes[key]))
        return await self.report(request)

    def install(self, app: web.Application) -> None:
        app.router.add_get("/sandbox/faults", self.report)
        app.router.add_post("/sandbox/faults", self.configure)


def from_options(
    rate: str | float | None, latency: str | None, seed: int | None
) -> Faults | None:
    """Faults from the command line's --faults, --latency and --fault-seed; None if neither
    faults nor latency were asked for."""
    if not rate and not latency:
        return None
    read_ms, write_ms = parse_latency(latency) if latency else (0, 0)
    return Faults(FaultSettings(
        rate=parse_rate(str(rate)) if rate else 0.0, read_ms=read_ms, write_ms=write_ms,
        seed=seed or 0,
    ))
