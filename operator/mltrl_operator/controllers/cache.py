"""What the operator knows of the cluster: listed once at start-up, then kept current from
the very watch events kopf hands to our handlers.

This replaces kopf's indices on purpose. kopf holds every object's handler until every
object of every indexed kind is indexed, and its gate wakes every waiting worker for each
object indexed: start-up cost grows with the square of the object count (minutes at
10,000 technologies, docs/benchmarks.md). Listing before kopf starts watching gives the
same guarantee (no handler acts on a partial view) in one request per kind.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from mltrl_operator.api.policy import MLTRLPolicySpec
from mltrl_operator.domain.policy import EffectivePolicy, NamedPolicy, effective_policy
from mltrl_operator.k8s.client import KubeClient
from mltrl_operator.k8s.errors import NotFound
from mltrl_operator.k8s.resources import (
    INFERENCE_SERVICES,
    NAMESPACES,
    POLICIES,
    REVIEWS,
    TECHNOLOGIES,
    WAIVERS,
    ResourceRef,
)

Key = tuple[str, str]
Body = dict[str, Any]
Labels = dict[str, str]

CACHED = (TECHNOLOGIES, REVIEWS, POLICIES, NAMESPACES, INFERENCE_SERVICES, WAIVERS)

logger = logging.getLogger(__name__)


def _key(body: Body) -> Key:
    metadata = body.get("metadata") or {}
    return str(metadata.get("namespace") or ""), str(metadata.get("name") or "")


_UNREAD_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"


def _claim(namespace: str, body: Body | None) -> Key | None:
    """The technology an InferenceService claims (label mltrl.dev/technology). Whether it
    is that technology's own (domain.claims.technologys_own) is for governance to say:
    an ownerReference alone can be written by anyone."""
    metadata = (body or {}).get("metadata") or {}
    claimed = (metadata.get("labels") or {}).get("mltrl.dev/technology")
    return (namespace, str(claimed)) if claimed else None


def slim(body: Body) -> Body:
    """The object without what the operator never reads and a real API server adds:
    managedFields and kubectl's copy of the last applied manifest can be larger than the
    rest of the object, and the cache holds every object of five kinds."""
    metadata = body.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    if "managedFields" not in metadata and _UNREAD_ANNOTATION not in annotations:
        return body
    slim = {key: value for key, value in metadata.items() if key != "managedFields"}
    if _UNREAD_ANNOTATION in annotations:
        slim["annotations"] = {
            key: value for key, value in annotations.items() if key != _UNREAD_ANNOTATION
        }
    return {**body, "metadata": slim}


def packed(body: Body) -> str:
    """A technology or review as the cache keeps it: compact JSON. As dicts, a technology
    with its status costs about 11 KiB and a review 7 KiB; as JSON about a third of that,
    and the cache holds every one (180 MiB at 10,000 technologies and their reviews, as
    dicts). A read decodes it again (tens of microseconds), and hands the caller an object
    of its own."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def unpacked(text: str | None) -> Body | None:
    return None if text is None else json.loads(text)


def _components(namespace: str, body: Body) -> set[Key]:
    return {
        (str(component.get("namespace") or namespace), str(component.get("name")))
        for component in (body.get("spec") or {}).get("components") or []
    }


class _Policies:
    """Policies parsed once per change, and the effective policy per set of namespace
    labels, which is all most reconciles ask for."""

    LIMIT = 4096

    def __init__(self) -> None:
        self._specs: dict[str, Body] = {}
        self._parsed: list[NamedPolicy] | None = None
        self._effective: dict[tuple[tuple[str, str], ...], EffectivePolicy] = {}
        self.version = 0
        """Counts changes, so a handler can tell whether an event moved any rule."""

    def put(self, name: str, spec: Body | None) -> bool:
        """Store (None: forget) a policy's spec; True when that changes what applies."""
        if spec is None:
            changed = self._specs.pop(name, None) is not None
        else:
            changed = self._specs.get(name) != spec
            self._specs[name] = spec
        if changed:
            self.version += 1
            self._parsed = None
            self._effective = {}
        return changed

    def names(self) -> list[str]:
        return list(self._specs)

    def parsed(self) -> list[NamedPolicy]:
        # A spec that does not parse raises here, at every reconcile, rather than being
        # skipped: a policy the operator cannot read must not silently stop applying.
        if self._parsed is None:
            self._parsed = sorted(
                (
                    NamedPolicy(name=name, spec=MLTRLPolicySpec.model_validate(spec))
                    for name, spec in self._specs.items()
                ),
                key=lambda policy: policy.name,
            )
        return list(self._parsed)

    def effective(self, labels: Labels) -> EffectivePolicy:
        policies = self.parsed()
        key = tuple(sorted(labels.items()))
        found = self._effective.get(key)
        if found is None:
            if len(self._effective) >= self.LIMIT:
                self._effective.clear()
            found = self._effective[key] = effective_policy(policies, labels)
        return found


class _ByTechnology:
    """Objects of one namespaced kind that name a technology in spec.technology (reviews,
    waivers), kept packed; each read hands out objects of the caller's own."""

    def __init__(self) -> None:
        self._by_technology: dict[Key, dict[str, str]] = {}  # packed
        self._technology_of: dict[Key, str] = {}

    def put(self, key: Key, body: Body | None) -> None:
        namespace, name = key
        previous = self._technology_of.pop(key, None)
        if previous is not None:
            found = self._by_technology.get((namespace, previous))
            if found is not None:
                found.pop(name, None)
                if not found:
                    del self._by_technology[(namespace, previous)]
        if body is None:
            return
        technology = str((body.get("spec") or {}).get("technology") or "")
        self._technology_of[key] = technology
        self._by_technology.setdefault((namespace, technology), {})[name] = packed(body)

    def get(self, key: Key) -> Body | None:
        technology = self._technology_of.get(key)
        if technology is None:
            return None
        namespace, name = key
        return unpacked(self._by_technology[(namespace, technology)][name])

    def of(self, namespace: str, technology: str) -> list[Body]:
        return [json.loads(packed)
                for packed in self._by_technology.get((namespace, technology), {}).values()]

    def keys(self) -> list[Key]:
        return list(self._technology_of)

    def __len__(self) -> int:
        return len(self._technology_of)


class ClusterCache:
    def __init__(self) -> None:
        self._technologies: dict[Key, str] = {}  # packed
        self._components_of: dict[Key, set[Key]] = {}
        self._composites_of: dict[Key, set[Key]] = {}
        self._reviews = _ByTechnology()
        self._waivers = _ByTechnology()  # issue 15
        self._namespaces: dict[str, Labels] = {}
        self._inference_services: dict[Key, Body] = {}
        # InferenceServices by the technology they claim, so a technology's change
        # re-checks its claimers without a scan.
        self._claimers: dict[Key, set[str]] = {}
        self.policies = _Policies()

    # --- keeping it current ---------------------------------------------------------------

    def apply(self, resource: ResourceRef, event_type: str | None, body: Body) -> None:
        """One watch event (`event_type` None: kopf's initial listing)."""
        deleted = event_type == "DELETED"
        body = slim(body)
        if resource == TECHNOLOGIES:
            self._put_technology(_key(body), None if deleted else body)
        elif resource == REVIEWS:
            self._reviews.put(_key(body), None if deleted else body)
        elif resource == WAIVERS:
            self._waivers.put(_key(body), None if deleted else body)
        elif resource == POLICIES:
            name = _key(body)[1]
            self.policies.put(name, None if deleted else dict(body.get("spec") or {}))
        elif resource == NAMESPACES:
            name = _key(body)[1]
            if deleted:
                self._namespaces.pop(name, None)
            else:
                # kubernetes.io/metadata.name, as the API server sets it (1.21+), for
                # policies that select namespaces by name.
                self._namespaces[name] = {
                    "kubernetes.io/metadata.name": name,
                    **dict((body.get("metadata") or {}).get("labels") or {}),
                }
        elif resource == INFERENCE_SERVICES:
            self._put_claim(_key(body), None if deleted else body)
            if deleted:
                self._inference_services.pop(_key(body), None)
            else:
                self._inference_services[_key(body)] = body
        else:
            raise ValueError(f"{resource.kind} is not cached")

    def _put_technology(self, key: Key, body: Body | None) -> None:
        for component in self._components_of.pop(key, set()):
            composites = self._composites_of.get(component)
            if composites is not None:
                composites.discard(key)
                if not composites:
                    del self._composites_of[component]
        if body is None:
            self._technologies.pop(key, None)
            return
        self._technologies[key] = packed(body)
        components = _components(key[0], body)
        if components:
            self._components_of[key] = components
            for component in components:
                self._composites_of.setdefault(component, set()).add(key)

    def _put_claim(self, key: Key, body: Body | None) -> None:
        old = self._inference_services.get(key)
        for claim in (_claim(key[0], old), _claim(key[0], body)):
            if claim is not None and claim in self._claimers:
                self._claimers[claim].discard(key[1])
                if not self._claimers[claim]:
                    del self._claimers[claim]
        claim = _claim(key[0], body)
        if claim is not None:
            self._claimers.setdefault(claim, set()).add(key[1])

    # --- reading it -----------------------------------------------------------------------

    def technology(self, namespace: str, name: str) -> Body | None:
        return unpacked(self._technologies.get((namespace, name)))

    def technology_keys(self, namespaces: Iterable[str] | None = None) -> list[Key]:
        if namespaces is None:
            return list(self._technologies)
        wanted = set(namespaces)
        return [key for key in self._technologies if key[0] in wanted]

    def composites_of(self, namespace: str, name: str) -> list[Key]:
        return sorted(self._composites_of.get((namespace, name), ()))

    def review(self, namespace: str, name: str) -> Body | None:
        return self._reviews.get((namespace, name))

    def reviews_of(self, namespace: str, technology: str) -> list[Body]:
        return self._reviews.of(namespace, technology)

    def waivers_of(self, namespace: str, technology: str) -> list[Body]:
        return self._waivers.of(namespace, technology)

    def namespace_labels(self, namespace: str) -> Labels | None:
        """None: no such namespace seen."""
        labels = self._namespaces.get(namespace)
        return None if labels is None else dict(labels)

    def namespaces(self) -> list[str]:
        return sorted(self._namespaces)

    def inference_service(self, namespace: str, name: str) -> Body | None:
        return self._inference_services.get((namespace, name))

    def keys(self, resource: ResourceRef) -> list[Key]:
        """Every (namespace, name) held of one kind; cluster-scoped kinds have namespace ""."""
        if resource == TECHNOLOGIES:
            return list(self._technologies)
        if resource == REVIEWS:
            return self._reviews.keys()
        if resource == POLICIES:
            return [("", name) for name in self.policies.names()]
        if resource == NAMESPACES:
            return [("", name) for name in self._namespaces]
        if resource == INFERENCE_SERVICES:
            return list(self._inference_services)
        if resource == WAIVERS:
            return self._waivers.keys()
        raise ValueError(f"{resource.kind} is not cached")

    def claimers_of(self, namespace: str, technology: str) -> list[str]:
        """Names of the InferenceServices that claim this technology (its own included)."""
        return sorted(self._claimers.get((namespace, technology), ()))

    def foreign_inference_services(self) -> list[Key]:
        return sorted(
            (key[0], name) for key, names in self._claimers.items() for name in names
        )

    def sizes(self) -> dict[str, int]:
        return {
            "technologies": len(self._technologies),
            "reviews": len(self._reviews),
            "namespaces": len(self._namespaces),
            "inferenceservices": len(self._inference_services),
            "waivers": len(self._waivers),
        }


async def prime(client: KubeClient, cache: ClusterCache) -> None:
    """List every kind the operator reads, before kopf starts watching them: a page at a
    time into the cache, so the objects as sent (managedFields and all, three times the
    size of what the cache keeps) are never all in memory at once (issue 17)."""
    for resource in CACHED:
        try:
            async for restarted, items in client.pages(resource):
                if restarted:  # the list started over: only what it gives now exists
                    for namespace, name in cache.keys(resource):
                        cache.apply(resource, "DELETED",
                                    {"metadata": {"namespace": namespace, "name": name}})
                for item in items:
                    # A list's items carry no kind; watch events, and our event recorder, do.
                    cache.apply(resource, None, {
                        "apiVersion": resource.api_version, "kind": resource.kind, **item,
                    })
        except NotFound:
            # KServe not installed (yet): nothing to govern, and kopf will say so too.
            logger.warning("%s cannot be listed; treating as none", resource.plural)
    logger.info("cache primed: %s", cache.sizes())
