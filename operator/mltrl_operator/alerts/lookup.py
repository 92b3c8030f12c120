"""Which technology an alert is about, and the policy that applies in its namespace."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from mltrl_operator.alerts.config import ReceiverConfig
from mltrl_operator.domain.policy import EffectivePolicy, NamedPolicy, effective_policy
from mltrl_operator.domain.serving import TECHNOLOGY_LABEL
from mltrl_operator.k8s.client import KubeClient
from mltrl_operator.k8s.errors import NotFound
from mltrl_operator.k8s.lookups import NamespaceLabels, read_policies
from mltrl_operator.k8s.resources import INFERENCE_SERVICES

Key = tuple[str, str]

# Label values go into API paths: anything but a DNS-1123 name is refused before a request.
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Resolution:
    key: Key | None
    detail: str
    """Where the technology came from, or why none was found."""


def _valid(name: str) -> bool:
    return bool(_NAME.fullmatch(name)) and ".." not in name  # fullmatch: `$` allows a "\n"


async def resolve_technology(
    client: KubeClient, config: ReceiverConfig, labels: Mapping[str, str]
) -> Resolution:
    namespace = labels.get(config.namespace_label, "")
    technology = labels.get(config.technology_label, "")
    isvc = labels.get(config.inference_service_label, "")
    if not technology and not isvc:
        return Resolution(
            None,
            f"the alert has neither a {config.technology_label!r} nor an "
            f"{config.inference_service_label!r} label",
        )
    if not namespace:
        return Resolution(None, f"the alert has no {config.namespace_label!r} label")
    if not _valid(namespace):
        return Resolution(None, f"{namespace!r} is not a valid namespace name")
    if technology:
        if not _valid(technology):
            return Resolution(None, f"{technology!r} is not a valid MLTechnology name")
        return Resolution((namespace, technology), f"label {config.technology_label}")
    if not _valid(isvc):
        return Resolution(None, f"{isvc!r} is not a valid InferenceService name")
    try:
        body = await client.get(INFERENCE_SERVICES, namespace, isvc)
    except NotFound:
        return Resolution(None, f"InferenceService {namespace}/{isvc} does not exist")
    claimed = ((body.get("metadata") or {}).get("labels") or {}).get(TECHNOLOGY_LABEL)
    if not claimed or not _valid(claimed):
        return Resolution(
            None, f"InferenceService {namespace}/{isvc} has no {TECHNOLOGY_LABEL} label"
        )
    return Resolution((namespace, claimed), f"InferenceService {isvc}")


class PolicyCache:
    """Policies and namespace labels, read through the API and kept a few seconds.

    Alerts come in bursts (one notification per group, re-sent); reading every policy for
    each of them would cost more than the seconds of staleness are worth.
    """

    def __init__(
        self,
        client: KubeClient,
        ttl: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._ttl = ttl
        self._monotonic = monotonic
        self._policies: tuple[float, list[NamedPolicy]] | None = None
        self._labels = NamespaceLabels(client, ttl, monotonic)

    async def _all_policies(self) -> list[NamedPolicy]:
        if self._policies is not None and self._monotonic() - self._policies[0] < self._ttl:
            return self._policies[1]
        policies = await read_policies(self._client)
        self._policies = (self._monotonic(), policies)
        return policies

    async def policy_for(self, namespace: str) -> EffectivePolicy:
        return effective_policy(await self._all_policies(), await self._labels.of(namespace))
