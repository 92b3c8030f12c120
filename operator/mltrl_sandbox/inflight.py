"""A limit on requests in flight, as kube-apiserver's `--max-requests-inflight` and
`--max-mutating-requests-inflight` set it (its defaults: 400 and 200).

kube-apiserver counts the requests it is serving, read-only and mutating apart; a request
that would exceed its kind's limit is answered at once with 429 Too Many Requests and
`Retry-After: 1`, and well-behaved clients (client-go, `mltrl_operator.k8s.client`) wait and
try again. Long-running requests (watches) do not count. The sandbox models that filter
(not API Priority and Fairness, which replaced it by default in 1.20 with finer queues but
the same total of 600 seats): with `--latency` a request holds its seat for its delay, so
the limit bounds throughput as a real server's does. `--max-requests-inflight 0` turns the
limit off. Counts of what was turned away are served at /sandbox/inflight.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_REQUESTS_INFLIGHT = 400
MAX_MUTATING_REQUESTS_INFLIGHT = 200


@dataclass(frozen=True)
class InflightLimits:
    read_only: int = MAX_REQUESTS_INFLIGHT
    mutating: int = MAX_MUTATING_REQUESTS_INFLIGHT


def add_inflight_options(parser: Any) -> None:
    """`--max-requests-inflight` and `--max-mutating-requests-inflight`, as kube-apiserver's."""
    parser.add_argument(
        "--max-requests-inflight", type=int, default=MAX_REQUESTS_INFLIGHT, metavar="N",
        help="read-only API requests served at once before 429 + Retry-After, as "
        "kube-apiserver's flag (default %(default)s; 0: no limit)",
    )
    parser.add_argument(
        "--max-mutating-requests-inflight", type=int, default=MAX_MUTATING_REQUESTS_INFLIGHT,
        metavar="N", help="the same for writes (default %(default)s; 0: no limit)",
    )


def limits_from_options(options: Any) -> InflightLimits:
    return InflightLimits(
        read_only=options.max_requests_inflight, mutating=options.max_mutating_requests_inflight
    )


def _status_429() -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "Too many requests, please try again later.",
            "reason": "TooManyRequests", "code": 429,
            "details": {"retryAfterSeconds": 1}}
    return web.json_response(body, status=429, headers={"Retry-After": "1"})


class Inflight:
    def __init__(self, limits: InflightLimits) -> None:
        self.limits = limits
        self.serving = {"read_only": 0, "mutating": 0}
        self.peak = {"read_only": 0, "mutating": 0}
        self.rejected: Counter[str] = Counter()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        watch = request.method == "GET" and request.query.get("watch") in ("true", "1")
        if watch or not (path.startswith("/api/") or path.startswith("/apis/")):
            return await handler(request)
        kind = "mutating" if request.method in MUTATING else "read_only"
        limit = self.limits.mutating if kind == "mutating" else self.limits.read_only
        if limit > 0 and self.serving[kind] >= limit:
            self.rejected[kind] += 1
            return _status_429()
        self.serving[kind] += 1
        self.peak[kind] = max(self.peak[kind], self.serving[kind])
        try:
            return await handler(request)
        finally:
            self.serving[kind] -= 1

    async def report(self, _: web.Request) -> web.Response:
        return web.json_response({
            "limits": {"read_only": self.limits.read_only, "mutating": self.limits.mutating},
            "serving": self.serving, "peak": self.peak, "rejected": self.rejected,
        })

    async def reset(self, request: web.Request) -> web.Response:
        self.rejected.clear()
        self.peak = dict(self.serving)
        return await self.report(request)

    def install(self, app: web.Application) -> None:
        app.router.add_get("/sandbox/inflight", self.report)
        app.router.add_post("/sandbox/inflight/reset", self.reset)
