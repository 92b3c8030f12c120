"""After a watch 410, kopf replays the kind as type-None events but never says what was
deleted in the gap: the cache lists again and forgets what is gone."""

from __future__ import annotations

import asyncio
from typing import Any

from mltrl_operator.controllers.cache import ClusterCache
from mltrl_operator.controllers.relist import Relister
from mltrl_operator.k8s.resources import REVIEWS, TECHNOLOGIES, ResourceRef


def tech(name: str, namespace: str = "ml") -> dict[str, Any]:
    return {"apiVersion": "mltrl.dev/v1alpha1", "kind": "MLTechnology",
            "metadata": {"name": name, "namespace": namespace}, "spec": {}}


class FakeClient:
    def __init__(self, listing: list[dict[str, Any]], during: Any = None) -> None:
        self.listing = listing
        self.during = during
        self.lists: list[str] = []

    async def list(self, resource: ResourceRef) -> list[dict[str, Any]]:
        self.lists.append(resource.plural)
        if self.during is not None:
            self.during()  # an event that arrives while the list is on its way
        return self.listing


async def test_objects_deleted_while_the_watch_was_away_are_forgotten() -> None:
    cache, relister = ClusterCache(), Relister(settle=0)
    for name in ("kept", "deleted-in-the-gap"):
        cache.apply(TECHNOLOGIES, None, tech(name))
    client = FakeClient([tech("kept")])
    forgotten: list[Any] = []

    async def on_forgotten(resource: ResourceRef, gone: list[tuple[str, str]]) -> None:
        forgotten.append((resource.plural, gone))

    def event(kind: str | None, name: str) -> None:
        cache.apply(TECHNOLOGIES, kind, tech(name))
        relister.notice(client, cache, TECHNOLOGIES, kind, tech(name), on_forgotten)  # type: ignore[arg-type]

    event(None, "kept")  # kopf's initial listing: nothing to do
    await relister.wait()
    assert client.lists == []
    event("MODIFIED", "kept")  # the watch runs
    event(None, "kept")  # ... and is replayed after a 410
    event(None, "kept")  # one re-list for the whole replay
    await relister.wait()
    assert client.lists == ["mltechnologies"]
    assert cache.keys(TECHNOLOGIES) == [("ml", "kept")]
    assert forgotten == [("mltechnologies", [("ml", "deleted-in-the-gap")])]


async def test_an_object_that_arrives_during_the_list_is_not_forgotten() -> None:
    cache, relister = ClusterCache(), Relister(settle=0)
    client = FakeClient([])

    async def on_forgotten(resource: ResourceRef, gone: list[tuple[str, str]]) -> None:
        pass

    def event(kind: str | None, name: str) -> None:
        cache.apply(TECHNOLOGIES, kind, tech(name))
        relister.notice(client, cache, TECHNOLOGIES, kind, tech(name), on_forgotten)  # type: ignore[arg-type]

    client.during = lambda: event("ADDED", "new")
    event("ADDED", "first")
    event(None, "first")
    await relister.wait()
    assert ("ml", "new") in cache.keys(TECHNOLOGIES)
    assert ("ml", "first") not in cache.keys(TECHNOLOGIES)  # not listed, not touched since
    assert cache.keys(REVIEWS) == []
    await asyncio.sleep(0)
