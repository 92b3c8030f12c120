"""kopf registrations. Each handler parses the event and calls a service; nothing more."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from mltrl_operator import metrics
from mltrl_operator.api.common import GROUP, VERSION
from mltrl_operator.controllers import view as ids
from mltrl_operator.controllers.context import OperatorContext
from mltrl_operator.controllers.governance import govern_inference_service
from mltrl_operator.controllers.policy import reconcile_policy
from mltrl_operator.controllers.review import reconcile_or_retry as reconcile_review_or_retry
from mltrl_operator.controllers.review import reconcile_reviews_of
from mltrl_operator.controllers.technology import reconcile_many, reconcile_or_retry
from mltrl_operator.controllers.view import ClusterView
from mltrl_operator.k8s.connection import Connection
from mltrl_operator.k8s.resources import (
    INFERENCE_SERVICES,
    NAMESPACES,
    POLICIES,
    REVIEWS,
    TECHNOLOGIES,
)

ISVC_GROUP, ISVC_VERSION = INFERENCE_SERVICES.group, INFERENCE_SERVICES.version


def snapshot(body: Any) -> dict[str, Any]:
    """A plain dict of the object as this event saw it (kopf's Body is a live view)."""
    return {key: value for key, value in body.items()}


def _is_initial_listing(event: kopf.RawEvent) -> bool:
    return event.get("type") is None


def _owner_technology(body: Any) -> str | None:
    for reference in body.get("metadata", {}).get("ownerReferences") or []:
        if reference.get("kind") == TECHNOLOGIES.kind:
            return str(reference.get("name"))
    return None


def build_registry(connection: Connection) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(
            server=connection.server,
            token=connection.token,
            scheme="Bearer" if connection.token else None,
            ca_path=connection.ca_file,
            insecure=connection.insecure,
            certificate_path=connection.cert_file,
            private_key_path=connection.key_file,
            default_namespace=connection.default_namespace,
        )

    # The indices are async on purpose: kopf runs plain functions in a thread pool, and a
    # hop to a thread and back for every event of every object costs far more than the
    # indexing itself (docs/benchmarks.md).
    @kopf.index(GROUP, VERSION, TECHNOLOGIES.plural, id=ids.TECHNOLOGIES, registry=registry)
    async def technology_index(
        namespace: str | None, name: str, body: kopf.Body, **_: Any
    ) -> dict[Any, Any]:
        return {(namespace, name): snapshot(body)}

    @kopf.index(GROUP, VERSION, TECHNOLOGIES.plural, id=ids.COMPOSITES, registry=registry)
    async def composite_index(
        namespace: str | None, name: str, spec: kopf.Spec, **_: Any
    ) -> dict[Any, Any]:
        return {
            (component.get("namespace") or namespace, component.get("name")): (namespace, name)
            for component in spec.get("components") or []
        }

    @kopf.index(GROUP, VERSION, REVIEWS.plural, id=ids.REVIEWS, registry=registry)
    async def review_index(
        namespace: str | None, spec: kopf.Spec, body: kopf.Body, **_: Any
    ) -> dict[Any, Any]:
        return {(namespace, spec.get("technology")): snapshot(body)}

    @kopf.index(GROUP, VERSION, POLICIES.plural, id=ids.POLICIES, registry=registry)
    async def policy_index(name: str, spec: kopf.Spec, **_: Any) -> dict[Any, Any]:
        return {None: (name, dict(spec))}

    @kopf.index("", "v1", NAMESPACES.plural, id=ids.NAMESPACES, registry=registry)
    async def namespace_index(name: str, labels: Mapping[str, str], **_: Any) -> dict[Any, Any]:
        return {name: dict(labels)}

    @kopf.index(
        ISVC_GROUP, ISVC_VERSION, INFERENCE_SERVICES.plural, id=ids.INFERENCE_SERVICES,
        registry=registry,
    )
    async def inference_service_index(
        namespace: str | None, name: str, body: kopf.Body, **_: Any
    ) -> dict[Any, Any]:
        return {(namespace, name): snapshot(body)}

    @kopf.on.event(GROUP, VERSION, TECHNOLOGIES.plural, registry=registry)
    async def technology_changed(
        event: kopf.RawEvent, body: kopf.Body, namespace: str | None, name: str, memo: Any,
        **kwargs: Any,
    ) -> None:
        ctx: OperatorContext = memo["ctx"]
        view = ClusterView.from_kwargs(kwargs, ctx.writes)
        assert namespace is not None  # MLTechnology is namespaced
        with metrics.reconcile_timer(TECHNOLOGIES.kind):
            if event.get("type") != "DELETED":
                current = ctx.writes.fresh(("MLTechnology", namespace, name), snapshot(body))
                await reconcile_or_retry(ctx, view, namespace, name, current)
            else:
                metrics.forget_technology(namespace, name)
            # Composites and reviews read this technology from the index, which this very
            # event has just refreshed; each writes only if its own status moves.
            await reconcile_many(ctx, view, view.composites_of(namespace, name))
            await reconcile_reviews_of(ctx, view, namespace, name)

    @kopf.on.event(GROUP, VERSION, REVIEWS.plural, registry=registry)
    async def review_changed(
        event: kopf.RawEvent, body: kopf.Body, namespace: str | None, name: str, memo: Any,
        **kwargs: Any,
    ) -> None:
        if event.get("type") == "DELETED":
            return
        ctx: OperatorContext = memo["ctx"]
        view = ClusterView.from_kwargs(kwargs, ctx.writes)
        review = ctx.writes.fresh(("LevelReview", namespace or "", name), snapshot(body))
        if review is not None:
            with metrics.reconcile_timer(REVIEWS.kind):
                await reconcile_review_or_retry(ctx, view, review)

    @kopf.on.event(GROUP, VERSION, POLICIES.plural, registry=registry)
    async def policy_changed(
        event: kopf.RawEvent, body: kopf.Body, memo: Any, **kwargs: Any
    ) -> None:
        ctx: OperatorContext = memo["ctx"]
        view = ClusterView.from_kwargs(kwargs, ctx.writes)
        with metrics.reconcile_timer(POLICIES.kind):
            if event.get("type") != "DELETED":
                await reconcile_policy(ctx, view, snapshot(body))
            if _is_initial_listing(event):
                return  # every technology is listed at start-up anyway
            keys = view.technology_keys()
            await reconcile_many(ctx, view, keys)
            for namespace, name in keys:
                await reconcile_reviews_of(ctx, view, namespace, name)

    @kopf.on.event("", "v1", NAMESPACES.plural, registry=registry)
    async def namespace_changed(
        event: kopf.RawEvent, name: str, labels: Mapping[str, str], memo: Any, **kwargs: Any
    ) -> None:
        ctx: OperatorContext = memo["ctx"]
        seen = ctx.namespace_labels
        previous, seen[name] = seen.get(name), dict(labels)
        if _is_initial_listing(event) or previous == seen[name]:
            return
        view = ClusterView.from_kwargs(kwargs, ctx.writes)
        with metrics.reconcile_timer("Namespace"):
            await reconcile_many(ctx, view, view.technology_keys([name]))

    @kopf.on.event(ISVC_GROUP, ISVC_VERSION, INFERENCE_SERVICES.plural, registry=registry)
    async def inference_service_changed(
        event: kopf.RawEvent, body: kopf.Body, namespace: str | None, memo: Any,
        **kwargs: Any,
    ) -> None:
        ctx: OperatorContext = memo["ctx"]
        view = ClusterView.from_kwargs(kwargs, ctx.writes)
        owner = _owner_technology(body)
        assert namespace is not None  # InferenceService is namespaced
        with metrics.reconcile_timer(INFERENCE_SERVICES.kind):
            if owner is not None:
                await reconcile_or_retry(ctx, view, namespace, owner)
            elif event.get("type") != "DELETED":
                ref = ("InferenceService", namespace, body["metadata"]["name"])
                current = ctx.writes.fresh(ref, snapshot(body))
                if current is not None:
                    action = await govern_inference_service(ctx, view, current)
                    metrics.count_gate_decision("governance", action.value)

    return registry
