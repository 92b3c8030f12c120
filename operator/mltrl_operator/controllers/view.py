"""The cluster as kopf's in-memory indices see it: lookups without listing the API."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mltrl_operator.api.policy import MLTRLPolicySpec
from mltrl_operator.controllers.context import ReadYourWrites
from mltrl_operator.domain.policy import EffectivePolicy, NamedPolicy, effective_policy

Key = tuple[str, str]
Body = dict[str, Any]

TECHNOLOGIES = "technology_index"
COMPOSITES = "composite_index"
REVIEWS = "review_index"
POLICIES = "policy_index"
NAMESPACES = "namespace_index"
INFERENCE_SERVICES = "inference_service_index"
INDEX_IDS = (TECHNOLOGIES, COMPOSITES, REVIEWS, POLICIES, NAMESPACES, INFERENCE_SERVICES)


def _first(index: Mapping[Any, Iterable[Any]] | None, key: Any) -> Any:
    if index is None or key not in index:
        return None
    return next(iter(index[key]), None)


def _all(index: Mapping[Any, Iterable[Any]] | None, key: Any) -> list[Any]:
    if index is None or key not in index:
        return []
    return list(index[key])


class _PolicyMemo:
    """The parsed policies, and the effective policy per set of namespace labels, kept for
    as long as the policy index holds the very same entries: kopf replaces an entry only
    when the policy changed, so most reconciles need not parse and merge every policy.
    The entries are kept referenced, so an identity match can never be a recycled id."""

    LIMIT = 4096

    def __init__(self) -> None:
        self._entries: list[Any] = []
        self._policies: list[NamedPolicy] = []
        self._effective: dict[tuple[tuple[str, str], ...], EffectivePolicy] = {}

    def policies(self, entries: list[Any]) -> list[NamedPolicy]:
        if len(entries) != len(self._entries) or any(
            entry is not known for entry, known in zip(entries, self._entries, strict=True)
        ):
            self._policies = sorted(
                (
                    NamedPolicy(name=name, spec=MLTRLPolicySpec.model_validate(spec))
                    for name, spec in entries
                ),
                key=lambda policy: policy.name,
            )
            self._entries = entries
            self._effective = {}
        return list(self._policies)

    def effective(self, entries: list[Any], labels: dict[str, str]) -> EffectivePolicy:
        policies = self.policies(entries)
        key = tuple(sorted(labels.items()))
        found = self._effective.get(key)
        if found is None:
            if len(self._effective) >= self.LIMIT:
                self._effective.clear()
            found = self._effective[key] = effective_policy(policies, labels)
        return found


_POLICY_MEMO = _PolicyMemo()


class ClusterView:
    def __init__(self, indices: Mapping[str, Any], writes: ReadYourWrites | None = None) -> None:
        self._indices = {name: indices.get(name) for name in INDEX_IDS}
        self.writes = writes or ReadYourWrites()

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any], writes: ReadYourWrites) -> ClusterView:
        return cls(kwargs, writes)

    def technology(self, namespace: str, name: str) -> Body | None:
        body: Body | None = _first(self._indices[TECHNOLOGIES], (namespace, name))
        return self.writes.fresh(("MLTechnology", namespace, name), body)

    def technology_keys(self, namespaces: Iterable[str] | None = None) -> list[Key]:
        index = self._indices[TECHNOLOGIES]
        keys = list(index.keys()) if index is not None else []
        if namespaces is None:
            return keys
        wanted = set(namespaces)
        return [key for key in keys if key[0] in wanted]

    def composites_of(self, namespace: str, name: str) -> list[Key]:
        return sorted(set(_all(self._indices[COMPOSITES], (namespace, name))))

    def reviews_of(self, namespace: str, technology: str) -> list[Body]:
        return [
            fresh
            for body in _all(self._indices[REVIEWS], (namespace, technology))
            if (fresh := self.writes.fresh(
                ("LevelReview", namespace, body["metadata"]["name"]), body
            )) is not None
        ]

    def policies(self) -> list[NamedPolicy]:
        return _POLICY_MEMO.policies(_all(self._indices[POLICIES], None))

    def namespace_labels(self, namespace: str) -> dict[str, str]:
        labels: dict[str, str] | None = _first(self._indices[NAMESPACES], namespace)
        return dict(labels or {})

    def namespaces(self) -> list[str]:
        index = self._indices[NAMESPACES]
        return sorted(index.keys()) if index is not None else []

    def policy_for(self, namespace: str) -> EffectivePolicy:
        return _POLICY_MEMO.effective(
            _all(self._indices[POLICIES], None), self.namespace_labels(namespace)
        )

    def inference_service(self, namespace: str, name: str) -> Body | None:
        body: Body | None = _first(self._indices[INFERENCE_SERVICES], (namespace, name))
        return self.writes.fresh(("InferenceService", namespace, name), body)
