"""The cluster as the webhooks read it: through the operator's client, at request time.

Technologies and policies are read afresh for every request: a gate must not admit on a
level or a policy that has since changed. Namespace labels change rarely and are kept for
a couple of seconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from mltrl_operator.api.policy import MLTRLPolicySpec
from mltrl_operator.domain.policy import EffectivePolicy, NamedPolicy, effective_policy
from mltrl_operator.k8s.client import KubeClient
from mltrl_operator.k8s.errors import NotFound
from mltrl_operator.k8s.resources import NAMESPACES, POLICIES, TECHNOLOGIES

Body = dict[str, Any]

logger = logging.getLogger(__name__)


class KubeClusterState:
    def __init__(
        self,
        client: KubeClient,
        *,
        namespace_ttl: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._namespace_ttl = namespace_ttl
        self._monotonic = monotonic
        self._namespaces: dict[str, tuple[float, dict[str, str]]] = {}

    async def technology(self, namespace: str, name: str) -> Body | None:
        try:
            return await self._client.get(TECHNOLOGIES, namespace, name)
        except NotFound:
            return None

    async def technologies(self) -> list[Body]:
        return await self._client.list(TECHNOLOGIES)

    async def policies(self) -> list[NamedPolicy]:
        policies = []
        for body in await self._client.list(POLICIES):
            name = str((body.get("metadata") or {}).get("name") or "")
            try:
                spec = MLTRLPolicySpec.model_validate(body.get("spec") or {})
            except ValidationError as error:  # its webhook refuses these; skip, as the view does
                logger.warning("MLTRLPolicy %s cannot be read: %s", name, error)
                continue
            policies.append(NamedPolicy(name=name, spec=spec))
        return policies

    async def namespace_labels(self, namespace: str) -> dict[str, str]:
        now = self._monotonic()
        cached = self._namespaces.get(namespace)
        if cached is not None and now - cached[0] < self._namespace_ttl:
            return cached[1]
        try:
            body = await self._client.get(NAMESPACES, None, namespace)
            labels = dict((body.get("metadata") or {}).get("labels") or {})
        except NotFound:
            labels = {}
        if len(self._namespaces) > 1000:
            self._namespaces.clear()
        self._namespaces[namespace] = (now, labels)
        return labels

    async def policy_for(self, namespace: str) -> EffectivePolicy:
        return effective_policy(await self.policies(), await self.namespace_labels(namespace))
