"""The cluster as the operator's cache sees it, overlaid with our own writes the watch has
not shown yet: lookups without listing the API."""

from __future__ import annotations

from collections.abc import Iterable

from mltrl_operator.controllers.cache import Body, ClusterCache, Key
from mltrl_operator.controllers.context import ReadYourWrites
from mltrl_operator.domain.claims import owned_by, technologys_own
from mltrl_operator.domain.lifecycle import LifecyclePolicy, lifecycle_policy
from mltrl_operator.domain.policy import EffectivePolicy, NamedPolicy, matching_policies
from mltrl_operator.domain.waivers import WaiverFacts, waiver_facts
from mltrl_operator.k8s.resources import ResourceRef

__all__ = ["Body", "ClusterView", "Key"]


class ClusterView:
    def __init__(self, cache: ClusterCache, writes: ReadYourWrites | None = None) -> None:
        self.cache = cache
        self.writes = writes or ReadYourWrites()

    def observe(self, resource: ResourceRef, event_type: str | None, body: Body) -> None:
        """One watch event (`event_type` None: kopf's initial listing) into the cache; our
        own writes it shows (or goes past) are forgotten now. Left to the object's next
        read, they were held until it, which at start-up comes after the whole work queue:
        every object written in the start-up stayed in memory, as the server returned it,
        until the queue had gone round once (issue 17)."""
        self.cache.apply(resource, event_type, body)
        metadata = body.get("metadata") or {}
        self.fresh(resource.kind, str(metadata.get("namespace") or ""),
                   str(metadata.get("name") or ""), body)

    def fresh(self, kind: str, namespace: str, name: str, body: Body | None) -> Body | None:
        """The one place a snapshot (from the cache or a watch event) meets our own writes
        that the watch has not shown yet: it is replaced by what the server returned."""
        return self.writes.fresh((kind, namespace, name), body)

    def technology(self, namespace: str, name: str) -> Body | None:
        return self.fresh("MLTechnology", namespace, name, self.cache.technology(namespace, name))

    def technology_keys(self, namespaces: Iterable[str] | None = None) -> list[Key]:
        return self.cache.technology_keys(namespaces)

    def composites_of(self, namespace: str, name: str) -> list[Key]:
        return self.cache.composites_of(namespace, name)

    def review(self, namespace: str, name: str) -> Body | None:
        return self.fresh("LevelReview", namespace, name, self.cache.review(namespace, name))

    def reviews_of(self, namespace: str, technology: str) -> list[Body]:
        return [
            fresh
            for body in self.cache.reviews_of(namespace, technology)
            if (fresh := self.fresh("LevelReview", namespace, body["metadata"]["name"], body))
            is not None
        ]

    def waivers_of(self, namespace: str, technology: str) -> list[Body]:
        return self.cache.waivers_of(namespace, technology)

    def waiver_facts(self, namespace: str, technology: str) -> list[WaiverFacts]:
        """The technology's waivers as the domain judges them (domain.waivers)."""
        found = (waiver_facts(body) for body in self.waivers_of(namespace, technology))
        return [facts for facts in found if facts is not None]

    def policies(self) -> list[NamedPolicy]:
        return self.cache.policies.parsed()

    def namespace_labels(self, namespace: str) -> dict[str, str]:
        return self.cache.namespace_labels(namespace) or {}

    def namespaces(self) -> list[str]:
        return self.cache.namespaces()

    def policy_for(self, namespace: str) -> EffectivePolicy:
        return self.cache.policies.effective(self.namespace_labels(namespace))

    def lifecycle_for(self, namespace: str) -> LifecyclePolicy:
        """modelChange and validFor as the policies matching the namespace say."""
        return lifecycle_policy(
            matching_policies(self.policies(), self.namespace_labels(namespace))
        )

    def inference_service(self, namespace: str, name: str) -> Body | None:
        body = self.cache.inference_service(namespace, name)
        return self.fresh("InferenceService", namespace, name, body)

    def claimers_of(self, namespace: str, technology: str) -> list[Body]:
        """InferenceServices that claim the technology but are not its own."""
        found = (self.inference_service(namespace, n)
                 for n in self.cache.claimers_of(namespace, technology))
        return [body for body in found if body is not None and not self._own(body)]

    def foreign_inference_services(self) -> list[Body]:
        found = (self.inference_service(*key) for key in self.cache.foreign_inference_services())
        return [body for body in found if body is not None and not self._own(body)]

    def owned_by_a_technology(self, body: Body) -> bool:
        """Whether an InferenceService's owner reference names a technology by its uid."""
        metadata = body.get("metadata") or {}
        return any(
            reference.get("kind") == "MLTechnology"
            and owned_by(body, ((self.technology(metadata.get("namespace") or "",
                                                 str(reference.get("name"))) or {})
                                .get("metadata") or {}).get("uid"))
            for reference in metadata.get("ownerReferences") or []
        )

    def _own(self, body: Body) -> bool:
        metadata = body.get("metadata") or {}
        claimed = (metadata.get("labels") or {}).get("mltrl.dev/technology")
        return bool(claimed) and technologys_own(
            body, self.technology(metadata.get("namespace") or "", str(claimed))
        )
