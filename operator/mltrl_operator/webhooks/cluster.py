"""The cluster as the webhooks read it: through the operator's client, at request time.

Technologies and policies are read afresh for every request: a gate must not admit on a
level or a policy that has since changed. Namespace labels change rarely and are kept for
a couple of seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from mltrl_operator.domain.policy import EffectivePolicy, NamedPolicy, effective_policy
from mltrl_operator.k8s.client import KubeClient
from mltrl_operator.k8s.errors import NotFound
from mltrl_operator.k8s.lookups import NamespaceLabels, read_policies
from mltrl_operator.k8s.resources import INFERENCE_SERVICES, TECHNOLOGIES, WAIVERS

Body = dict[str, Any]


class KubeClusterState:
    def __init__(
        self,
        client: KubeClient,
        *,
        namespace_ttl: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._namespaces = NamespaceLabels(client, namespace_ttl, monotonic)

    async def technology(self, namespace: str, name: str) -> Body | None:
        try:
            return await self._client.get(TECHNOLOGIES, namespace, name)
        except NotFound:
            return None

    async def inference_service(self, namespace: str, name: str) -> Body | None:
        try:
            return await self._client.get(INFERENCE_SERVICES, namespace, name)
        except NotFound:
            return None

    async def waivers(self, namespace: str) -> list[Body]:
        return await self._client.list(WAIVERS, namespace)

    async def technologies(self) -> list[Body]:
        return await self._client.list(TECHNOLOGIES)

    async def policies(self) -> list[NamedPolicy]:
        return await read_policies(self._client)

    async def namespace_labels(self, namespace: str) -> dict[str, str]:
        return await self._namespaces.of(namespace)

    async def policy_for(self, namespace: str) -> EffectivePolicy:
        return effective_policy(await self.policies(), await self.namespace_labels(namespace))
