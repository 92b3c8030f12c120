"""kopf registrations. Each handler parses the event and calls a service; nothing more."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import kopf

from mltrl_operator import metrics
from mltrl_operator.api.common import GROUP, VERSION
from mltrl_operator.controllers.audit import catch_up, record_deletion
from mltrl_operator.controllers.cache import prime
from mltrl_operator.controllers.context import OperatorContext
from mltrl_operator.controllers.governance import govern_inference_service
from mltrl_operator.controllers.policy import reconcile_policy
from mltrl_operator.controllers.review import reconcile_or_retry as reconcile_review_or_retry
from mltrl_operator.controllers.review import reconcile_reviews_of
from mltrl_operator.controllers.technology import entering, reconcile_many, reconcile_or_retry
from mltrl_operator.controllers.view import ClusterView
from mltrl_operator.controllers.waivers import (
    reconcile_waiver,
    reconcile_waivers_of,
    redecide_technology,
)
from mltrl_operator.k8s.resources import (
    INFERENCE_SERVICES,
    NAMESPACES,
    POLICIES,
    REVIEWS,
    TECHNOLOGIES,
    WAIVERS,
    ResourceRef,
)

ISVC_GROUP, ISVC_VERSION = INFERENCE_SERVICES.group, INFERENCE_SERVICES.version


def snapshot(body: Any) -> dict[str, Any]:
    """A plain dict of the object as this event saw it (kopf's Body is a live view)."""
    return {key: value for key, value in body.items()}


def _observe(
    ctx: OperatorContext, resource: ResourceRef, event: kopf.RawEvent, body: Any
) -> ClusterView:
    """Bring the cache up to this event, first thing in every handler, and view it."""
    view = ClusterView(ctx.cache, ctx.writes)
    view.observe(resource, event.get("type"), snapshot(body))
    ctx.relister.notice(ctx.client, ctx.cache, resource, event.get("type"), body,
                        lambda _, gone: _after_relist(ctx, gone))
    return view


async def _after_relist(ctx: OperatorContext, gone: list[tuple[str, str]]) -> None:
    """Objects deleted while a watch was away (controllers/relist.py): reconcile the
    technologies of their namespaces (all of them for cluster-scoped kinds)."""
    namespaces = {namespace for namespace, _ in gone}
    for namespace, name in ctx.cache.technology_keys(None if "" in namespaces else namespaces):
        ctx.queue.add(technology_key(namespace, name))


def _owner_technology(body: Any) -> str | None:
    for reference in body.get("metadata", {}).get("ownerReferences") or []:
        if reference.get("kind") == TECHNOLOGIES.kind:
            return str(reference.get("name"))
    return None


async def _govern(ctx: OperatorContext, view: ClusterView, bodies: list[dict[str, Any]]) -> None:
    for body in bodies:
        action = await govern_inference_service(ctx, view, body)
        metrics.count_gate_decision("governance", action.value)


def technology_key(namespace: str, name: str) -> Hashable:
    return (TECHNOLOGIES.kind, namespace, name)


async def reconcile_key(ctx: OperatorContext, key: Hashable) -> None:
    """What one of the work queue's workers does with a key: reconcile from the cache
    (which holds the object as of its latest event) and our own writes since."""
    assert isinstance(key, tuple)
    view = ClusterView(ctx.cache, ctx.writes)
    if key[0] == TECHNOLOGIES.kind:
        _, namespace, name = key
        with metrics.reconcile_timer(TECHNOLOGIES.kind):
            first_entry = entering(view.technology(namespace, name))
            if first_entry:
                # Its reviews first: one already approved enters it and moves it in one
                # status write (controllers.review); the others store its entry alone.
                await reconcile_reviews_of(ctx, view, namespace, name)
            await reconcile_or_retry(ctx, view, namespace, name)
            # Composites and reviews read this technology from the cache, which its latest
            # event has refreshed (and our write, if we just made one, overlays); each
            # writes only if its own status moves.
            await reconcile_many(ctx, view, view.composites_of(namespace, name))
            if not first_entry:
                await reconcile_reviews_of(ctx, view, namespace, name)
            # A claimer must keep serving this technology's model at its level (domain.claims).
            await _govern(ctx, view, view.claimers_of(namespace, name))
            # Whether its waivers count depends on it (it exists; who owned it since when).
            await reconcile_waivers_of(ctx, view, namespace, name)
    elif key[0] == REVIEWS.kind:
        _, namespace, name = key
        review = view.review(namespace, name)
        if review is not None:  # None: deleted since
            with metrics.reconcile_timer(REVIEWS.kind):
                await reconcile_review_or_retry(ctx, view, review)
    else:
        raise ValueError(f"no reconcile for the key {key!r}")


def build_registry() -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.startup(registry=registry, backoff=2.0)
    async def prime_cache(memo: Any, **_: Any) -> None:
        # kopf starts watching only once this is done, so no handler sees a partial cache.
        ctx: OperatorContext = memo["ctx"]
        await prime(ctx.client, ctx.cache)
        # In the background: transitions a previous run stored but may not have recorded.
        view = ClusterView(ctx.cache, ctx.writes)
        ctx.wakeups.at("audit-catch-up", ctx.clock(), ctx.clock,
                       lambda: catch_up(ctx, view))

    # Technologies and reviews, the many: the handler brings the cache up to the event and
    # queues the object's key (controllers/workqueue.py), so kopf's worker and its raw
    # event are let go at once; our own workers reconcile the key from the cache.
    @kopf.on.event(GROUP, VERSION, TECHNOLOGIES.plural, registry=registry)
    async def technology_changed(
        event: kopf.RawEvent, body: kopf.Body, namespace: str | None, name: str, memo: Any,
        **_: Any,
    ) -> None:
        ctx: OperatorContext = memo["ctx"]
        _observe(ctx, TECHNOLOGIES, event, body)
        assert namespace is not None  # MLTechnology is namespaced
        if event.get("type") == "DELETED":
            # The deleted object is in this event only; the cache has forgotten it.
            metrics.forget_technology(namespace, name)
            await record_deletion(ctx, snapshot(body))
        ctx.queue.add(technology_key(namespace, name))

    @kopf.on.event(GROUP, VERSION, REVIEWS.plural, registry=registry)
    async def review_changed(
        event: kopf.RawEvent, body: kopf.Body, namespace: str | None, name: str, memo: Any,
        **_: Any,
    ) -> None:
        ctx: OperatorContext = memo["ctx"]
        _observe(ctx, REVIEWS, event, body)
        if event.get("type") == "DELETED":
            return
        ctx.queue.add((REVIEWS.kind, namespace or "", name))

    @kopf.on.event(GROUP, VERSION, POLICIES.plural, registry=registry)
    async def policy_changed(event: kopf.RawEvent, body: kopf.Body, memo: Any, **_: Any) -> None:
        ctx: OperatorContext = memo["ctx"]
        before = ctx.cache.policies.version
        view = _observe(ctx, POLICIES, event, body)
        with metrics.reconcile_timer(POLICIES.kind):
            if event.get("type") != "DELETED":
                await reconcile_policy(ctx, view, snapshot(body))
            if ctx.cache.policies.version == before:
                return  # its status, or nothing at all, changed: no rule moved
            # Inline, not queued: claimers are governed against technologies already
            # reconciled under the new rules (a rule moving is rare; start-up's listing of
            # a policy moves none, the cache being primed).
            keys = view.technology_keys()
            await reconcile_many(ctx, view, keys)
            for namespace, name in keys:
                await reconcile_reviews_of(ctx, view, namespace, name)
                await reconcile_waivers_of(ctx, view, namespace, name)
            await _govern(ctx, view, view.foreign_inference_services())

    @kopf.on.event("", "v1", NAMESPACES.plural, registry=registry)
    async def namespace_changed(
        event: kopf.RawEvent, body: kopf.Body, name: str, memo: Any, **_: Any
    ) -> None:
        ctx: OperatorContext = memo["ctx"]
        before = ctx.cache.namespace_labels(name)
        view = _observe(ctx, NAMESPACES, event, body)
        if ctx.cache.namespace_labels(name) == before:
            return  # policies select namespaces by label only
        with metrics.reconcile_timer("Namespace"):
            # Inline, as for policies: claimers are governed after their technologies.
            await reconcile_many(ctx, view, view.technology_keys([name]))
            # Another policy may govern the namespace now: its claimers are checked again.
            await _govern(ctx, view, [
                body for body in view.foreign_inference_services()
                if body["metadata"].get("namespace") == name
            ])

    @kopf.on.event(ISVC_GROUP, ISVC_VERSION, INFERENCE_SERVICES.plural, registry=registry)
    async def inference_service_changed(
        event: kopf.RawEvent, body: kopf.Body, namespace: str | None, memo: Any, **_: Any
    ) -> None:
        ctx: OperatorContext = memo["ctx"]
        view = _observe(ctx, INFERENCE_SERVICES, event, body)
        owner = _owner_technology(body)
        assert namespace is not None  # InferenceService is namespaced
        with metrics.reconcile_timer(INFERENCE_SERVICES.kind):
            if owner is not None:
                ctx.queue.add(technology_key(namespace, owner))
            # An owner reference is anyone's to write: only a technology's own by uid is
            # left to that technology's reconcile (domain.claims).
            if event.get("type") != "DELETED" and not view.owned_by_a_technology(snapshot(body)):
                current = view.fresh(
                    "InferenceService", namespace, body["metadata"]["name"], snapshot(body)
                )
                if current is not None:
                    action = await govern_inference_service(ctx, view, current)
                    metrics.count_gate_decision("governance", action.value)

    # Waivers (issue 15): whether each applies now, re-decided at its expiry by a timer;
    # what it allows (the technology's gate, its open reviews) is decided again with it.
    @kopf.on.event(GROUP, VERSION, WAIVERS.plural, registry=registry)
    async def waiver_changed(
        event: kopf.RawEvent, body: kopf.Body, namespace: str | None, name: str, memo: Any,
        **_: Any,
    ) -> None:
        ctx: OperatorContext = memo["ctx"]
        view = _observe(ctx, WAIVERS, event, body)
        assert namespace is not None  # MLTRLWaiver is namespaced
        if event.get("type") != "DELETED":
            await reconcile_waiver(ctx, view, snapshot(body))
        else:
            ctx.wakeups.cancel(("MLTRLWaiver", namespace, name))
        technology = (body.get("spec") or {}).get("technology")
        if technology:
            await redecide_technology(ctx, view, namespace, str(technology))

    return registry
