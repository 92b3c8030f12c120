"""Which technology an alert is about, and the policy that applies in its namespace."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pydantic import ValidationError

from mltrl_operator.alerts.config import ReceiverConfig
from mltrl_operator.api.policy import MLTRLPolicySpec
from mltrl_operator.domain.policy import EffectivePolicy, NamedPolicy, effective_policy
from mltrl_operator.domain.serving import TECHNOLOGY_LABEL
from mltrl_operator.k8s.client import KubeClient
from mltrl_operator.k8s.errors import NotFound
from mltrl_operator.k8s.resources import INFERENCE_SERVICES, NAMESPACES, POLICIES

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
    return bool(_NAME.match(name)) and ".." not in name


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
        self._labels: dict[str, tuple[float, dict[str, str]]] = {}

    def _fresh(self, stamp: float) -> bool:
        return self._monotonic() - stamp < self._ttl

    async def _all_policies(self) -> list[NamedPolicy]:
        if self._policies is not None and self._fresh(self._policies[0]):
            return self._policies[1]
        policies = []
        for item in await self._client.list(POLICIES):
            name = (item.get("metadata") or {}).get("name", "")
            try:
                spec = MLTRLPolicySpec.model_validate(item.get("spec") or {})
            except ValidationError as error:
                logger.warning("MLTRLPolicy %s cannot be read, ignored for alerts: %s", name, error)
                continue
            policies.append(NamedPolicy(name=name, spec=spec))
        self._policies = (self._monotonic(), policies)
        return policies

    async def _namespace_labels(self, namespace: str) -> dict[str, str]:
        cached = self._labels.get(namespace)
        if cached is not None and self._fresh(cached[0]):
            return cached[1]
        try:
            body = await self._client.get(NAMESPACES, None, namespace)
            labels = dict((body.get("metadata") or {}).get("labels") or {})
        except NotFound:
            labels = {}
        self._labels[namespace] = (self._monotonic(), labels)
        return labels

    async def policy_for(self, namespace: str) -> EffectivePolicy:
        return effective_policy(await self._all_policies(), await self._namespace_labels(namespace))
