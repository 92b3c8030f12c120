"""Kubernetes Events on our objects, so `kubectl describe` tells what the operator did.

One event per transition (issue 17). A named event posted again is either the same
occurrence redone (a retried reconcile, a restarted operator: 409, nothing more) or, when
the caller says which occurrence it is, the same event happening again: then the stored
event becomes a series (`count` + 1, `lastTimestamp`, as client-go's recorder aggregates
repeats), never a second object.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from typing import Any

import aiohttp

from mltrl_operator.k8s.client import KubeClient
from mltrl_operator.k8s.errors import ApiError, Conflict
from mltrl_operator.k8s.resources import EVENTS

COMPONENT = "mltrl-operator"
OCCURRENCE_ANNOTATION = "mltrl.dev/occurrence"
"""Which occurrence of a repeating event the stored series last counted."""
NORMAL = "Normal"
WARNING = "Warning"

logger = logging.getLogger(__name__)


def event_name(involved: dict[str, Any], reason: str, key: str) -> str:
    """A name fixed by what the event is about, so posting it twice (a retried reconcile,
    a restarted operator) answers 409 instead of a second event."""
    metadata = involved.get("metadata", {})
    digest = hashlib.sha256(
        f"{metadata.get('uid', '')}/{reason}/{key}".encode()
    ).hexdigest()[:16]
    return f"{str(metadata.get('name', 'object'))[:200]}.{digest}"


def event_body(
    involved: dict[str, Any],
    *,
    type: str,
    reason: str,
    message: str,
    now: datetime,
    key: str | None = None,
    occurrence: str | None = None,
) -> dict[str, Any]:
    metadata = involved.get("metadata", {})
    stamp = _stamp(now)
    naming: dict[str, Any] = (
        {"name": event_name(involved, reason, key)}
        if key is not None
        else {"generateName": f"{metadata.get('name', 'object')}."}
    )
    if occurrence is not None:
        naming["annotations"] = {OCCURRENCE_ANNOTATION: occurrence}
    return {
        "metadata": {
            **naming,
            "namespace": metadata.get("namespace") or "default",
        },
        "involvedObject": {
            "apiVersion": involved.get("apiVersion"),
            "kind": involved.get("kind"),
            "name": metadata.get("name"),
            "namespace": metadata.get("namespace"),
            "uid": metadata.get("uid"),
        },
        "type": type,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": COMPONENT,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


def _stamp(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


class EventRecorder:
    def __init__(self, client: KubeClient) -> None:
        self._client = client

    async def record(
        self,
        involved: dict[str, Any],
        *,
        type: str,
        reason: str,
        message: str,
        now: datetime,
        key: str | None = None,
        occurrence: str | None = None,
    ) -> None:
        """Post an event; with `key`, one object per (object, reason, key). With
        `occurrence` too, a different occurrence of that event counts into its series."""
        # An event is a courtesy to the reader; failing to post one must never fail a reconcile.
        body = event_body(involved, type=type, reason=reason, message=message, now=now,
                          key=key, occurrence=occurrence)
        try:
            await self._client.post_event(body)
        except Conflict:
            # Posted before: by an earlier attempt of the same decision, or, for another
            # occurrence, the same event again.
            if occurrence is not None:
                await self._repeat(body, occurrence, now)
        except (ApiError, OSError, aiohttp.ClientError, TimeoutError) as error:
            transient = not isinstance(error, ApiError) or error.status >= 500 or (
                error.status == 429
            )
            if key is not None and transient:
                # A named event is part of a decision being carried out: the caller's
                # retry posts it again (409 if this attempt did land after all).
                raise
            logger.warning("could not post event %s on %s: %s", reason, involved, error)

    async def _repeat(self, body: dict[str, Any], occurrence: str, now: datetime) -> None:
        """Count another occurrence into the stored event: one object, `count` + 1."""
        namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
        try:
            stored = await self._client.get(EVENTS, namespace, name)
            annotations = (stored.get("metadata") or {}).get("annotations") or {}
            if annotations.get(OCCURRENCE_ANNOTATION) == occurrence:
                return  # this very occurrence, redone
            await self._client.patch(EVENTS, namespace, name, {
                "metadata": {
                    "annotations": {OCCURRENCE_ANNOTATION: occurrence},
                    "resourceVersion": (stored.get("metadata") or {}).get("resourceVersion"),
                },
                "count": int(stored.get("count") or 1) + 1,
                "lastTimestamp": _stamp(now),
                "message": body["message"],
            })
        except Conflict:
            pass  # another writer counted it at the same moment: one of the two is enough
        except (ApiError, OSError, aiohttp.ClientError, TimeoutError) as error:
            logger.warning("could not count event %s/%s again: %s", namespace, name, error)
