"""Our cache after a watch's 410 Gone.

kopf answers a 410 (the watch's resourceVersion is too old: events were missed) by listing
the kind again and replaying every object as an event of type None; it never says which
objects vanished in the gap. The cache, fed from those events, would keep them, and a
deleted LevelReview would go on counting. So when type-None events arrive for a kind whose
watch had already delivered real events, the kind is listed again here, and whatever the
cache holds that neither the list nor any event since has seen is forgotten, then the
technologies around it are reconciled.

Type-None events before the first real event of a kind are kopf's initial listing, which
follows our own priming list: nothing to do then.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from mltrl_operator.controllers.cache import ClusterCache, Key
from mltrl_operator.k8s.client import KubeClient
from mltrl_operator.k8s.resources import ResourceRef

SETTLE_SECONDS = 1.0
"""Lets kopf's own replay arrive before our list, so the list is the newer of the two."""

logger = logging.getLogger(__name__)

Forgotten = Callable[[ResourceRef, list[Key]], Awaitable[None]]


def _key(body: dict[str, Any]) -> Key:
    metadata = body.get("metadata") or {}
    return str(metadata.get("namespace") or ""), str(metadata.get("name") or "")


class Relister:
    def __init__(self, settle: float = SETTLE_SECONDS) -> None:
        self.settle = settle
        self._watching: set[str] = set()
        self._touched: dict[str, set[Key]] = {}
        self._running: dict[str, asyncio.Task[None]] = {}

    def notice(
        self,
        client: KubeClient,
        cache: ClusterCache,
        resource: ResourceRef,
        event_type: str | None,
        body: dict[str, Any],
        forgotten: Forgotten,
    ) -> None:
        """Called with every watch event, after the cache has taken it."""
        plural = resource.plural
        if plural in self._touched:
            self._touched[plural].add(_key(body))
        if event_type is not None:
            self._watching.add(plural)
            return
        if plural not in self._watching or plural in self._running:
            return
        self._watching.discard(plural)
        self._running[plural] = asyncio.create_task(
            self._relist(client, cache, resource, forgotten), name=f"relist {plural}"
        )

    async def wait(self) -> None:
        """For tests: until every re-list under way is done."""
        await asyncio.gather(*self._running.values(), return_exceptions=True)

    async def _relist(
        self, client: KubeClient, cache: ClusterCache, resource: ResourceRef,
        forgotten: Forgotten,
    ) -> None:
        plural = resource.plural
        try:
            await asyncio.sleep(self.settle)
            self._touched[plural] = set()
            listed = {_key(item) for item in await client.list(resource)}
            seen = listed | self._touched[plural]
            gone = [key for key in cache.keys(resource) if key not in seen]
            for namespace, name in gone:
                cache.apply(resource, "DELETED", {"metadata": {"namespace": namespace,
                                                               "name": name}})
            if gone:
                logger.info("%s deleted while the watch was away: %s", plural, gone)
                await forgotten(resource, gone)
        except Exception:  # the next 410 tries again; a handler must not die of it
            logger.exception("re-listing %s after a watch restart failed", plural)
        finally:
            self._touched.pop(plural, None)
            self._running.pop(plural, None)
