"""Kubernetes Events on our objects, so `kubectl describe` tells what the operator did."""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from typing import Any

import aiohttp

from mltrl_operator.k8s.client import KubeClient
from mltrl_operator.k8s.errors import ApiError, Conflict

COMPONENT = "mltrl-operator"
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
) -> dict[str, Any]:
    metadata = involved.get("metadata", {})
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    naming = (
        {"name": event_name(involved, reason, key)}
        if key is not None
        else {"generateName": f"{metadata.get('name', 'object')}."}
    )
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
    ) -> None:
        """Post an event; with `key`, at most once per (object, reason, key)."""
        # An event is a courtesy to the reader; failing to post one must never fail a reconcile.
        try:
            await self._client.post_event(
                event_body(involved, type=type, reason=reason, message=message, now=now, key=key)
            )
        except Conflict:
            pass  # posted before, by an earlier attempt of the same decision
        except (ApiError, OSError, aiohttp.ClientError, TimeoutError) as error:
            transient = not isinstance(error, ApiError) or error.status >= 500 or (
                error.status == 429
            )
            if key is not None and transient:
                # A named event is part of a decision being carried out: the caller's
                # retry posts it again (409 if this attempt did land after all).
                raise
            logger.warning("could not post event %s on %s: %s", reason, involved, error)
