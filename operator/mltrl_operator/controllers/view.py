"""The cluster as the operator's cache sees it, overlaid with our own writes the watch has
not shown yet: lookups without listing the API."""

from __future__ import annotations

from collections.abc import Iterable

from mltrl_operator.controllers.cache import Body, ClusterCache, Key
from mltrl_operator.controllers.context import ReadYourWrites
from mltrl_operator.domain.policy import EffectivePolicy, NamedPolicy

__all__ = ["Body", "ClusterView", "Key"]


class ClusterView:
    def __init__(self, cache: ClusterCache, writes: ReadYourWrites | None = None) -> None:
        self.cache = cache
        self.writes = writes or ReadYourWrites()

    def technology(self, namespace: str, name: str) -> Body | None:
        body = self.cache.technology(namespace, name)
        return self.writes.fresh(("MLTechnology", namespace, name), body)

    def technology_keys(self, namespaces: Iterable[str] | None = None) -> list[Key]:
        return self.cache.technology_keys(namespaces)

    def composites_of(self, namespace: str, name: str) -> list[Key]:
        return self.cache.composites_of(namespace, name)

    def reviews_of(self, namespace: str, technology: str) -> list[Body]:
        return [
            fresh
            for body in self.cache.reviews_of(namespace, technology)
            if (fresh := self.writes.fresh(
                ("LevelReview", namespace, body["metadata"]["name"]), body
            )) is not None
        ]

    def policies(self) -> list[NamedPolicy]:
        return self.cache.policies.parsed()

    def namespace_labels(self, namespace: str) -> dict[str, str]:
        return self.cache.namespace_labels(namespace) or {}

    def namespaces(self) -> list[str]:
        return self.cache.namespaces()

    def policy_for(self, namespace: str) -> EffectivePolicy:
        return self.cache.policies.effective(self.namespace_labels(namespace))

    def inference_service(self, namespace: str, name: str) -> Body | None:
        body = self.cache.inference_service(namespace, name)
        return self.writes.fresh(("InferenceService", namespace, name), body)

    def claimers_of(self, namespace: str, technology: str) -> list[Body]:
        found = (self.inference_service(namespace, n)
                 for n in self.cache.claimers_of(namespace, technology))
        return [body for body in found if body is not None]

    def foreign_inference_services(self) -> list[Body]:
        found = (self.inference_service(*key) for key in self.cache.foreign_inference_services())
        return [body for body in found if body is not None]
