"""In-memory object storage with a global resourceVersion, bounded history and watchers.

Objects are never modified after they are stored (writers store new dicts), so stored
objects, history entries and queued watch events can share them safely.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace or "", name)
Ref = tuple[str, str, str]  # (storage, namespace or "", name)


@dataclass(frozen=True)
class Event:
    type: str  # ADDED, MODIFIED, DELETED
    object: Obj
    old: Obj | None
    rv: int
    at: float = 0.0  # when it happened (the store's clock), for compaction


class TooOld(Exception):
    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested = requested
        self.oldest = oldest


class Watcher:
    """One watch stream's filter and queue; `None` in the queue ends the stream."""

    def __init__(self, matches: Callable[[Obj], bool]) -> None:
        self.matches = matches
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue()

    def offer(self, event: Event) -> None:
        now_matches = self.matches(event.object)
        if event.type == "MODIFIED" and event.old is not None:
            before = self.matches(event.old)
            # A change that moves an object into/out of the selection is seen by the
            # watcher as an appearance/disappearance, as on a real server.
            if now_matches and not before:
                event = Event("ADDED", event.object, event.old, event.rv)
            elif before and not now_matches:
                # The watcher never saw the new state: it is told of the last one it
                # matched, at the new resourceVersion (as kube-apiserver's watch cache does).
                old = event.old
                assert old is not None
                last = {**old, "metadata": {**old["metadata"], "resourceVersion": str(event.rv)}}
                self.queue.put_nowait(Event("DELETED", last, event.old, event.rv))
                return
        if now_matches:
            self.queue.put_nowait(event)

    def close(self) -> None:
        self.queue.put_nowait(None)


class Bucket:
    """All objects of one storage (group-resource)."""

    def __init__(self, history_limit: int) -> None:
        self.objects: dict[Key, Obj] = {}
        self.by_namespace: dict[str, dict[str, Obj]] = {}
        self.history: deque[Event] = deque(maxlen=history_limit)
        # every event of this storage with rv <= this is no longer in history
        self.evicted_rv = 0
        self.watchers: set[Watcher] = set()


def object_key(obj: Obj) -> Key:
    """(namespace or "", name): the order etcd lists objects in."""
    meta = obj["metadata"]
    return (meta.get("namespace") or "", meta["name"])


# etcd compacts history every 5 minutes (kube-apiserver's --etcd-compaction-interval)
COMPACTION_SECONDS = 300.0


class Store:
    def __init__(
        self,
        history_limit: int = 2000,
        compaction_seconds: float = COMPACTION_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.history_limit = history_limit
        self.compaction_seconds = compaction_seconds
        self.clock = clock
        self.rv = 1
        self.buckets: dict[str, Bucket] = {}
        self.uids: dict[str, Ref] = {}
        self.dependents: dict[str, set[Ref]] = {}
        self.namespace_counts: Counter[str] = Counter()

    def bucket(self, storage: str) -> Bucket:
        found = self.buckets.get(storage)
        if found is None:
            found = self.buckets[storage] = Bucket(self.history_limit)
        return found

    def next_rv(self) -> int:
        self.rv += 1
        return self.rv

    # reading

    def get(self, storage: str, namespace: str | None, name: str) -> Obj | None:
        bucket = self.buckets.get(storage)
        return bucket.objects.get((namespace or "", name)) if bucket else None

    def by_uid(self, uid: str) -> Obj | None:
        ref = self.uids.get(uid)
        return self.get(*ref) if ref else None

    def snapshot(self, storage: str, namespace: str | None, rv: int) -> list[Obj]:
        """The objects as they were at `rv` (for continued lists), in key order.

        Rebuilt from the current objects by undoing the history after `rv`; raises
        TooOld when that history has been evicted (etcd's compaction, on a real server).
        """
        bucket = self.buckets.get(storage)
        if bucket is None:
            return []
        self.require_history(storage, rv)
        objects = dict(bucket.objects)
        for event in reversed(bucket.history):
            if event.rv <= rv:
                break
            key = object_key(event.object)
            if event.type == "ADDED":
                objects.pop(key, None)
            elif event.old is not None:
                objects[key] = event.old
        keys = sorted(k for k in objects if namespace is None or k[0] == namespace)
        return [objects[k] for k in keys]

    def require_history(self, storage: str, rv: int) -> None:
        """Raise TooOld when the changes after `rv` are no longer kept (compacted), so that
        a listing at `rv` can no longer be continued, as etcd refuses a compacted rv."""
        bucket = self.buckets.get(storage)
        if bucket is None:
            return
        self._compact(bucket)
        if bucket.evicted_rv > rv:
            raise TooOld(rv, bucket.evicted_rv)

    def list(self, storage: str, namespace: str | None = None) -> list[Obj]:
        """Objects in key order (namespace, name), as etcd would return them."""
        bucket = self.buckets.get(storage)
        if bucket is None:
            return []
        if namespace is not None:
            names = bucket.by_namespace.get(namespace, {})
            return [names[n] for n in sorted(names)]
        return [bucket.objects[k] for k in sorted(bucket.objects)]

    def count_in_namespace(self, namespace: str) -> int:
        return self.namespace_counts[namespace]

    # writing (callers have stamped everything except resourceVersion)

    def _index(self, storage: str, obj: Obj, *, add: bool) -> None:
        meta = obj["metadata"]
        ref: Ref = (storage, meta.get("namespace") or "", meta["name"])
        uid = meta.get("uid")
        refs = meta.get("ownerReferences") or []
        owners: list[str] = [o["uid"] for o in refs if isinstance(o, dict) and o.get("uid")]
        if add:
            if uid:
                self.uids[uid] = ref
            for owner in owners:
                self.dependents.setdefault(owner, set()).add(ref)
        else:
            if uid and self.uids.get(uid) == ref:
                del self.uids[uid]
            for owner in owners:
                deps = self.dependents.get(owner)
                if deps is not None:
                    deps.discard(ref)
                    if not deps:
                        del self.dependents[owner]

    def _record(self, bucket: Bucket, event: Event) -> None:
        event = Event(event.type, event.object, event.old, event.rv, self._compact(bucket))
        history = bucket.history
        if len(history) == history.maxlen:
            bucket.evicted_rv = history[0].rv
        history.append(event)
        for watcher in list(bucket.watchers):
            watcher.offer(event)

    def _compact(self, bucket: Bucket) -> float:
        """Forget events older than the compaction window, as etcd's compaction does;
        returns the clock's time."""
        now = self.clock()
        history = bucket.history
        while history and history[0].at < now - self.compaction_seconds:
            bucket.evicted_rv = history.popleft().rv
        return now

    def put(self, storage: str, obj: Obj, old: Obj | None) -> Obj:
        """Store a created (old=None) or updated object; assigns its resourceVersion."""
        rv = self.next_rv()
        obj["metadata"]["resourceVersion"] = str(rv)
        bucket = self.bucket(storage)
        key = object_key(obj)
        if old is not None:
            self._index(storage, old, add=False)
        else:
            self.namespace_counts[key[0]] += 1
        bucket.objects[key] = obj
        bucket.by_namespace.setdefault(key[0], {})[key[1]] = obj
        self._index(storage, obj, add=True)
        self._record(bucket, Event("MODIFIED" if old is not None else "ADDED", obj, old, rv))
        return obj

    def remove(self, storage: str, obj: Obj, last: Obj | None = None) -> Obj:
        """Remove an object; the DELETED event carries a new resourceVersion.

        `last` is the state to report as deleted (default: the stored one).
        """
        bucket = self.bucket(storage)
        key = object_key(obj)
        current = bucket.objects.pop(key)
        names = bucket.by_namespace.get(key[0], {})
        names.pop(key[1], None)
        if not names:
            bucket.by_namespace.pop(key[0], None)
        self.namespace_counts[key[0]] -= 1
        if self.namespace_counts[key[0]] <= 0:
            del self.namespace_counts[key[0]]
        self._index(storage, current, add=False)
        rv = self.next_rv()
        shown = last if last is not None else current
        final = {**shown, "metadata": {**shown["metadata"], "resourceVersion": str(rv)}}
        self._record(bucket, Event("DELETED", final, current, rv))
        return final

    def drop_storage(self, storage: str) -> None:
        """Forget a whole storage (its CRD went away): DELETED for each, end watches."""
        bucket = self.buckets.get(storage)
        if bucket is None:
            return
        for obj in list(bucket.objects.values()):
            self.remove(storage, obj)
        for watcher in list(bucket.watchers):
            watcher.close()
        del self.buckets[storage]

    # watching

    def subscribe(self, storage: str, watcher: Watcher, since: int | None) -> None:
        """Register a watcher; with `since`, first replay the history after it."""
        bucket = self.bucket(storage)
        if since is not None:
            self._compact(bucket)
            if since < bucket.evicted_rv:
                oldest = bucket.history[0].rv if bucket.history else self.rv
                raise TooOld(since, oldest)
            for event in bucket.history:
                if event.rv > since:
                    watcher.offer(event)
        bucket.watchers.add(watcher)

    def unsubscribe(self, storage: str, watcher: Watcher) -> None:
        bucket = self.buckets.get(storage)
        if bucket is not None:
            bucket.watchers.discard(watcher)

    def close_all_watchers(self) -> None:
        for bucket in self.buckets.values():
            for watcher in list(bucket.watchers):
                watcher.close()

    def storages(self) -> Iterable[str]:
        return list(self.buckets)
