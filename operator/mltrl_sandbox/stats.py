"""Request accounting, so efficiency tests can count what a client asked for."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


class Stats:
    """Counts requests by (verb, resource) and writes by (verb, resource, part).

    `resource` is the group-resource (e.g. "mltechnologies.mltrl.dev", "configmaps")
    with "/status" appended for the status subresource; non-resource requests are
    counted with verb "get" and their path as the resource, e.g. ("get", "/apis").
    `part` is "main" or "status".
    """

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str]] = Counter()
        self.writes: Counter[tuple[str, str, str]] = Counter()
        # tests read the counters from another thread than the server's (SandboxThread)
        self._lock = threading.Lock()

    def record(self, verb: str, resource: str, subresource: str = "") -> None:
        name = f"{resource}/{subresource}" if subresource else resource
        with self._lock:
            self.requests[(verb, name)] += 1
            if verb in WRITE_VERBS:
                self.writes[(verb, resource, subresource or "main")] += 1

    def count(self, verb: str | None = None, resource: str | None = None) -> int:
        with self._lock:
            items = list(self.requests.items())
        return sum(
            n
            for (v, r), n in items
            if (verb is None or v == verb) and (resource is None or r == resource)
        )

    def write_count(
        self, verb: str | None = None, resource: str | None = None, part: str | None = None
    ) -> int:
        with self._lock:
            items = list(self.writes.items())
        return sum(
            n
            for (v, r, p), n in items
            if (verb is None or v == verb)
            and (resource is None or r == resource)
            and (part is None or p == part)
        )

    def snapshot(self) -> dict[str, Any]:
        """A JSON-friendly copy: {"requests": {"list mltechnologies.mltrl.dev": 2, ...},
        "writes": {"patch mltechnologies.mltrl.dev status": 1, ...}, totals}."""
        with self._lock:
            requests = sorted(self.requests.items())
            writes = sorted(self.writes.items())
        return {
            "requests": {f"{v} {r}": n for (v, r), n in requests},
            "writes": {f"{v} {r} {p}": n for (v, r, p), n in writes},
            "total_requests": sum(n for _, n in requests),
            "total_writes": sum(n for _, n in writes),
        }

    def reset(self) -> dict[str, Any]:
        """Clear the counters; returns the snapshot taken just before."""
        snap = self.snapshot()
        with self._lock:
            self.requests.clear()
            self.writes.clear()
        return snap
