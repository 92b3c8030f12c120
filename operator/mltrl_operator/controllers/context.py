"""What every handler needs, built once at start-up and handed over through kopf's memo."""

from __future__ import annotations

import asyncio
import contextlib
import json
import weakref
from collections.abc import AsyncIterator, Callable, Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mltrl_operator.controllers.cache import ClusterCache, packed, slim
from mltrl_operator.controllers.relist import Relister
from mltrl_operator.controllers.retries import Retries
from mltrl_operator.controllers.wakeups import Wakeups
from mltrl_operator.controllers.workqueue import WorkQueue
from mltrl_operator.k8s.audit_store import RecentRecords
from mltrl_operator.k8s.client import KubeClient
from mltrl_operator.k8s.events import EventRecorder
from mltrl_operator.k8s.resource_versions import compare_resource_versions


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class KeyedLocks:
    """One lock per technology, so its own reconcile, its reviews and its components'
    fan-out never interleave inside this process."""

    def __init__(self) -> None:
        self._locks: dict[Hashable, asyncio.Lock] = {}
        self._users: dict[Hashable, int] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key]
                del self._locks[key]


Ref = tuple[str, str, str]  # (kind, namespace, name)


def _version(body: dict[str, Any] | None) -> str:
    version = ((body or {}).get("metadata") or {}).get("resourceVersion")
    return str(version) if version else ""  # "" stands for "did not exist"


class _Handed(dict[str, Any]):
    """A body handed out of a _Packed: a dict that can be referenced weakly."""

    __slots__ = ("__weakref__",)


class _Packed:
    """One stored object held as compact JSON (a third of its size as dicts: at start-up
    thousands are held at once, issue 17). The body it hands out stays the same object as
    long as any caller holds it, so one handed back is known for what it is."""

    __slots__ = ("_handed", "_json", "version")

    def __init__(self, stored: dict[str, Any]) -> None:
        self._json = packed(slim(stored))
        self.version = _version(stored)
        self._handed: weakref.ref[_Handed] | None = None

    def body(self) -> dict[str, Any]:
        handed = self._handed() if self._handed is not None else None
        if handed is None:
            handed = _Handed(json.loads(self._json))
            self._handed = weakref.ref(handed)
        return handed

    def handed_out(self, body: dict[str, Any] | None) -> bool:
        return body is not None and self._handed is not None and body is self._handed()


class ReadYourWrites:
    """Remembers what we wrote until the watch shows it, so a snapshot older than our own
    writes (a cache entry or a queued event) is replaced by what the server returned.

    Every version one of our writes was based on is stale until the watch delivers the
    version we stored or a later one. Later is decided by comparing resourceVersions
    (k8s.resource_versions, KEP-5504): a write someone else made just before ours (KServe
    updating an InferenceService's status) often reaches the watch after our write
    returned, and taking it for the watch having caught up would plan on an object without
    our write (a stop we made looks undone, so it is not made again while the model
    serves). Where versions are not comparable, any version we did not write counts as
    later, as before.
    """

    def __init__(self) -> None:
        self._written: dict[Ref, tuple[set[str], _Packed | None]] = {}

    def remember(
        self, ref: Ref, based_on: dict[str, Any] | None, stored: dict[str, Any] | None
    ) -> None:
        """`based_on` None: we created it; `stored` None: we deleted it."""
        stale, _ = self._written.get(ref, (set(), None))
        # Held until the watch catches up, which at start-up is after thousands of other
        # events: without managedFields, and packed as the cache holds it (issue 17).
        self._written[ref] = ({*stale, _version(based_on)}, _Packed(stored) if stored else None)

    def fresh(self, ref: Ref, body: dict[str, Any] | None) -> dict[str, Any] | None:
        entry = self._written.get(ref)
        if entry is None:
            return body
        stale, stored = entry
        if (stored is not None and stored.handed_out(body)) or _version(body) in stale \
                or self._older(body, stale, stored):
            # `handed_out`: a caller handing back what this returned earlier; only a
            # snapshot from the watch can show that the watch has caught up.
            return stored.body() if stored is not None else None
        del self._written[ref]  # the watch has caught up with (or gone past) our writes
        return body

    @staticmethod
    def _older(body: dict[str, Any] | None, stale: set[str], stored: _Packed | None) -> bool:
        """Whether `body` is a version from before our last write: older than what we
        stored, or (we deleted it) no newer than what our writes were based on."""
        version = _version(body)
        if not version:
            return False  # gone: for a deletion we did not make, the watch says so
        if stored is not None:
            return compare_resource_versions(version, stored.version) == -1
        return any(compare_resource_versions(version, seen) in (-1, 0) for seen in stale)


@dataclass
class OperatorContext:
    client: KubeClient
    clock: Callable[[], datetime] = utc_now
    locks: KeyedLocks = field(default_factory=KeyedLocks)
    writes: ReadYourWrites = field(default_factory=ReadYourWrites)
    retries: Retries = field(default_factory=Retries)
    cache: ClusterCache = field(default_factory=ClusterCache)
    relister: Relister = field(default_factory=Relister)  # the cache after a watch 410
    wakeups: Wakeups = field(default_factory=Wakeups)
    """Timers for instants decisions change by themselves (issue 15: expiries, lapses)."""
    audit_records: RecentRecords = field(default_factory=RecentRecords)
    """The audit records we wrote last, so the next append needs no read (issue 17)."""
    queue: WorkQueue = field(default_factory=WorkQueue)
    """Keys of technologies and reviews to reconcile, taken by our own workers (issue 17)."""

    def __post_init__(self) -> None:
        self.events = EventRecorder(self.client)
