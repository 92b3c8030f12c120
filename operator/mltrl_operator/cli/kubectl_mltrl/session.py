"""The plugin's one connection to the cluster: the user's kubeconfig, context and identity,
loaded by the operator's own credentials code, and the reads every command shares."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from mltrl_operator.api.review import LevelReviewSpec, LevelReviewStatus
from mltrl_operator.api.technology import MLTechnologySpec, MLTechnologyStatus
from mltrl_operator.domain.maturity import ReviewRecord, TechnologyRecord
from mltrl_operator.domain.policy import EffectivePolicy, NamedPolicy, effective_policy
from mltrl_operator.domain.progress import NamedReview
from mltrl_operator.k8s import connection as credentials
from mltrl_operator.k8s.client import KubeClient
from mltrl_operator.k8s.errors import ApiError, NotFound
from mltrl_operator.k8s.lookups import read_policies
from mltrl_operator.k8s.resources import NAMESPACES, REVIEWS, TECHNOLOGIES, WAIVERS, ResourceRef

Body = dict[str, Any]
FIELD_MANAGER = "kubectl-mltrl"
SELF_SUBJECT_REVIEWS = ResourceRef(
    "authentication.k8s.io", "v1", "selfsubjectreviews", "SelfSubjectReview", namespaced=False
)


class PluginError(Exception):
    """A problem the user can act on: printed as is, exit code 1."""


class PolicyUnreadable(PluginError):
    """The user may not read the MLTRLPolicies or the namespace labels that pick them (in a
    cluster, namespace users usually cannot): the plugin falls back to what the operator
    published in status, computed by the same functions."""


def load_connection(kubeconfig: str | None, context: str | None) -> credentials.Connection:
    """The one call into the operator's credentials code (kubeconfig, $KUBECONFIG, in-cluster,
    ~/.kube/config, in kubectl's order), so a change of loader is a change here only."""
    try:
        return credentials.load_connection(kubeconfig, context)
    except (credentials.CredentialsError, OSError, KeyError) as error:
        raise PluginError(f"cannot load the kubeconfig: {error}") from error


def explain(error: ApiError) -> str:
    """The server's own message (a webhook's refusal says what to fix), not a status line."""
    message = str(error.body.get("message") or error)
    return message


@dataclass
class Session:
    client: KubeClient
    namespace: str
    all_namespaces: bool = False

    @classmethod
    def open(cls, kubeconfig: str | None, context: str | None, namespace: str | None,
             all_namespaces: bool = False) -> Session:
        connection = load_connection(kubeconfig, context)
        return cls(KubeClient(connection), namespace or connection.default_namespace,
                   all_namespaces)

    async def close(self) -> None:
        await self.client.close()

    @property
    def scope(self) -> str | None:
        return None if self.all_namespaces else self.namespace

    # --- identity --------------------------------------------------------------------
    async def whoami(self) -> str | None:
        """The username the API server knows us by (SelfSubjectReview), or None when the
        server cannot say; the admission webhook then fills in an empty reviewer."""
        try:
            body = await self.client.request(
                "POST", SELF_SUBJECT_REVIEWS.path(),
                body={"apiVersion": SELF_SUBJECT_REVIEWS.api_version,
                      "kind": SELF_SUBJECT_REVIEWS.kind},
            )
        except ApiError:
            return None
        user = ((body.get("status") or {}).get("userInfo") or {}).get("username")
        return str(user) if user else None

    # --- reads -----------------------------------------------------------------------
    async def technology(self, name: str, namespace: str | None = None) -> Body:
        namespace = namespace or self.namespace
        try:
            return await self.client.get(TECHNOLOGIES, namespace, name)
        except NotFound:
            raise PluginError(
                f'mltechnology "{name}" not found in namespace "{namespace}": list them with '
                f"kubectl get mltech -n {namespace}"
            ) from None

    async def review(self, name: str, namespace: str | None = None) -> Body:
        namespace = namespace or self.namespace
        try:
            return await self.client.get(REVIEWS, namespace, name)
        except NotFound:
            raise PluginError(
                f'levelreview "{name}" not found in namespace "{namespace}": list them with '
                f"kubectl get lvlreview -n {namespace}"
            ) from None

    async def technologies(self, namespace: str | None = None) -> list[Body]:
        return await self._list(TECHNOLOGIES, namespace)

    async def reviews(self, namespace: str | None = None) -> list[Body]:
        return await self._list(REVIEWS, namespace)

    async def waivers(self, namespace: str | None = None) -> list[Body] | None:
        """The MLTRLWaivers; None when the user may not read them (the plugin then says
        what the operator published)."""
        try:
            return await self.client.list(WAIVERS, namespace)
        except ApiError:
            return None

    async def _list(self, resource: ResourceRef, namespace: str | None) -> list[Body]:
        try:
            return await self.client.list(resource, namespace)
        except ApiError as error:
            where = f'in namespace "{namespace}"' if namespace else "in all namespaces"
            raise PluginError(f"cannot list {resource.plural} {where}: {explain(error)}") from None

    async def policies(self) -> list[NamedPolicy]:
        try:
            return await read_policies(self.client)
        except ApiError as error:
            raise PolicyUnreadable(
                f"cannot read the MLTRLPolicies that decide what reviews need: {explain(error)}; "
                "ask your platform team for read access to mltrlpolicies"
            ) from None

    async def namespace_labels(self, namespace: str) -> dict[str, str]:
        try:
            body = await self.client.get(NAMESPACES, None, namespace)
        except NotFound:
            return {}
        except ApiError as error:
            raise PolicyUnreadable(
                f'cannot read namespace "{namespace}" to find its policy: {explain(error)}'
            ) from None
        return dict((body.get("metadata") or {}).get("labels") or {})

    async def policy_for(self, namespace: str,
                         policies: list[NamedPolicy] | None = None) -> EffectivePolicy:
        if policies is None:
            policies = await self.policies()
        return effective_policy(policies, await self.namespace_labels(namespace))

    async def create(self, resource: ResourceRef, namespace: str, body: Body) -> Body:
        body = {"apiVersion": resource.api_version, "kind": resource.kind, **body}
        return await self.client.request(
            "POST", resource.path(namespace), body=body, params={"fieldManager": FIELD_MANAGER}
        )

    async def json_patch(self, resource: ResourceRef, namespace: str, name: str,
                         ops: list[Body]) -> Body:
        return await self.client.request(
            "PATCH", resource.path(namespace, name), body=ops,
            content_type="application/json-patch+json", params={"fieldManager": FIELD_MANAGER},
        )


# --- parsing what the API returned ------------------------------------------------------
def meta(body: Body) -> Body:
    return dict(body.get("metadata") or {})


def tech_spec(body: Body) -> MLTechnologySpec:
    try:
        return MLTechnologySpec.model_validate(body.get("spec") or {})
    except ValidationError as error:
        name = meta(body).get("name")
        raise PluginError(f"mltechnology {name} cannot be read: {error}") from None


def tech_status(body: Body) -> MLTechnologyStatus | None:
    raw = body.get("status")
    if not raw:
        return None
    try:
        return MLTechnologyStatus.model_validate(raw)
    except ValidationError:
        return None


def review_spec(body: Body) -> LevelReviewSpec | None:
    try:
        return LevelReviewSpec.model_validate(body.get("spec") or {})
    except ValidationError:
        return None


def review_status(body: Body) -> LevelReviewStatus:
    try:
        return LevelReviewStatus.model_validate(body.get("status") or {})
    except ValidationError:
        return LevelReviewStatus()


def named_reviews(bodies: list[Body]) -> list[NamedReview]:
    found = []
    for body in bodies:
        spec = review_spec(body)
        if spec is not None:
            found.append(NamedReview(str(meta(body).get("name")), spec))
    return found


def technology_records(bodies: list[Body]) -> list[TechnologyRecord]:
    records = []
    for body in bodies:
        try:
            spec = MLTechnologySpec.model_validate(body.get("spec") or {})
        except ValidationError:
            continue
        records.append(TechnologyRecord(
            str(meta(body).get("namespace") or ""), str(meta(body).get("name")), spec,
            tech_status(body),
        ))
    return records


def review_records(bodies: list[Body]) -> list[ReviewRecord]:
    records = []
    for body in bodies:
        spec = review_spec(body)
        if spec is None:
            continue
        records.append(ReviewRecord(
            str(meta(body).get("namespace") or ""), str(meta(body).get("name")), spec,
            review_status(body).phase,
        ))
    return records


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=False, default=str)
