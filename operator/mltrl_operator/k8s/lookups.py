"""Reads that the alert receiver and the webhooks both make at request time."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from pydantic import ValidationError

from mltrl_operator.api.policy import MLTRLPolicySpec
from mltrl_operator.domain.policy import NamedPolicy
from mltrl_operator.k8s.client import KubeClient
from mltrl_operator.k8s.errors import NotFound
from mltrl_operator.k8s.resources import NAMESPACES, POLICIES

logger = logging.getLogger(__name__)

TechnologyLookup = Callable[[str, str], "dict[str, Any] | None"]
"""(namespace, name) -> the technology as the operator's cache holds it (overlaid with its
own writes), or None when the cache has not seen it: what `mltrl run` hands the services
beside it (the alert receiver saves a GET with it)."""

TechnologyStored = Callable[["dict[str, Any] | None", "dict[str, Any]"], None]
"""(the technology a write was based on, the technology as stored after it): a service
beside the operator tells it of a technology status it wrote, so that the operator
reconciles it at once from what was stored, not when the watch brings the event."""


class OperatorTechnologies(Protocol):
    """What `mltrl run` hands the services beside it: its cached technologies (a
    TechnologyLookup) and `stored`, a TechnologyStored for the writes they make."""

    def __call__(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    def stored(self, based_on: dict[str, Any] | None, stored: dict[str, Any]) -> None: ...


async def read_policies(client: KubeClient) -> list[NamedPolicy]:
    """Every MLTRLPolicy that parses. Their own webhook and schema refuse the rest, so one
    that cannot be read was stored around them; it is skipped, and said so."""
    policies = []
    for body in await client.list(POLICIES):
        name = str((body.get("metadata") or {}).get("name") or "")
        try:
            spec = MLTRLPolicySpec.model_validate(body.get("spec") or {})
        except ValidationError as error:
            logger.warning("MLTRLPolicy %s cannot be read, skipped: %s", name, error)
            continue
        policies.append(NamedPolicy(name=name, spec=spec))
    return policies


NAME_LABEL = "kubernetes.io/metadata.name"


class NamespaceLabels:
    """Namespace labels, kept `ttl` seconds: they change rarely, and a burst of requests
    (an alert group re-sent, an apply of many objects) asks for the same few."""

    LIMIT = 1000

    def __init__(
        self, client: KubeClient, ttl: float, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._client = client
        self._ttl = ttl
        self._monotonic = monotonic
        self._seen: dict[str, tuple[float, dict[str, str]]] = {}

    async def of(self, namespace: str) -> dict[str, str]:
        """A namespace that does not exist has no labels."""
        cached = self._seen.get(namespace)
        if cached is not None and self._monotonic() - cached[0] < self._ttl:
            return cached[1]
        try:
            body = await self._client.get(NAMESPACES, None, namespace)
            # The API server sets kubernetes.io/metadata.name on every namespace (1.21+);
            # policies may select by it even where a server does not (the sandbox).
            labels = {NAME_LABEL: namespace,
                      **dict((body.get("metadata") or {}).get("labels") or {})}
        except NotFound:
            labels = {}
        if len(self._seen) >= self.LIMIT:
            self._seen.clear()
        self._seen[namespace] = (self._monotonic(), labels)
        return labels
