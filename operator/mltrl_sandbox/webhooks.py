"""Admission webhooks: the sandbox calls what Validating/MutatingWebhookConfigurations name.

Two admission hooks (one mutating, one validating) read the configurations from the
store on every write and call each matching webhook over HTTPS with an AdmissionReview
v1 request that carries the requester (the bearer token's user, or whom kubectl's `--as`
impersonates). As in Kubernetes:

- webhooks run in configuration-name order, then in list order; mutating ones before the
  schema validation, validating ones after it;
- a webhook matches by `rules` (operations, apiGroups, apiVersions, resources with
  `name/subresource` and `*` forms, scope), `namespaceSelector` (the namespace's labels,
  which always include `kubernetes.io/metadata.name`; for a Namespace its own labels),
  `objectSelector` (the new or the old object's labels) and `matchConditions` (a CEL
  subset: see cel.py);
- the call is `clientConfig.url` only (https; a `service` cannot be reached from the
  sandbox and counts as a failed call), verified against `caBundle` (or the system
  roots), bounded by `timeoutSeconds` (default 10);
- a refusal is answered with the webhook's code and reason and the message
  `admission webhook "NAME" denied the request: ...`; warnings reach the client as
  `Warning` headers; a mutating webhook's JSONPatch is applied to the object;
- a failed call (refused connection, timeout, TLS error, non-200, a malformed or
  mismatched answer, an unusable patch, a matchCondition that cannot be evaluated) is
  `failurePolicy`'s: Fail (the default) refuses with 500 InternalError, Ignore skips the
  webhook;
- a dry run reaches only webhooks with sideEffects None or NoneOnDryRun; others refuse.

Simplified: webhooks are called one after another (validating ones in parallel in
Kubernetes), reinvocationPolicy is ignored (never reinvoked), matchPolicy is moot (every
kind is served in one version), and `authorizer`/`params` are not available to CEL.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import ssl
import uuid
from collections.abc import Mapping
from typing import Any

import aiohttp

from .admission import AdmissionDenied, AdmissionRequest
from .auth import user_info_wire
from .cel import CelError, evaluate_condition
from .patch import PatchError, json_patch
from .resources import Obj
from .store import Store
from .strategies import NAMESPACE_NAME_LABEL

log = logging.getLogger(__name__)

MUTATING = "mutatingwebhookconfigurations.admissionregistration.k8s.io"
VALIDATING = "validatingwebhookconfigurations.admissionregistration.k8s.io"
ADMISSION_VERSION = "admission.k8s.io/v1"
DEFAULT_TIMEOUT = 10
MAX_TIMEOUT = 30
_OPTIONS_KIND = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions", "DELETE": "DeleteOptions"}


class CallFailed(Exception):
    """The webhook could not give an answer; failurePolicy decides."""


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """metav1.LabelSelector; an absent or empty selector matches everything."""
    if not selector:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key"), expression.get("operator")
        values = expression.get("values") or []
        present = key in labels
        if operator == "In":
            holds = present and labels[key] in values
        elif operator == "NotIn":
            holds = not present or labels[key] not in values
        elif operator == "Exists":
            holds = present
        elif operator == "DoesNotExist":
            holds = not present
        else:
            return False
        if not holds:
            return False
    return True


def _one_of(allowed: list[str] | None, value: str) -> bool:
    return "*" in (allowed or []) or value in (allowed or [])


def _resource_matches(patterns: list[str], resource: str, subresource: str) -> bool:
    for pattern in patterns or []:
        main, _, sub = pattern.partition("/")
        if main not in ("*", resource):
            continue
        if (not sub and not subresource) or sub == "*" or (sub and sub == subresource):
            return True
    return False


def rule_matches(rule: Mapping[str, Any], req: AdmissionRequest) -> bool:
    rt = req.resource
    scope = rule.get("scope") or "*"
    if scope == "Namespaced" and not rt.namespaced:
        return False
    if scope == "Cluster" and rt.namespaced:
        return False
    return (
        _one_of(rule.get("operations"), req.operation)
        and _one_of(rule.get("apiGroups"), rt.group)
        and _one_of(rule.get("apiVersions"), rt.version)
        and _resource_matches(rule.get("resources") or [], rt.plural, req.subresource)
    )


def _labels(obj: Obj | None) -> dict[str, str]:
    return dict(((obj or {}).get("metadata") or {}).get("labels") or {})


def admission_request(req: AdmissionRequest) -> Obj:
    rt = req.resource
    kind = {"group": rt.group, "version": rt.version, "kind": rt.kind}
    resource = {"group": rt.group, "version": rt.version, "resource": rt.plural}
    body: Obj = {
        "uid": str(uuid.uuid4()),
        "kind": kind,
        "resource": resource,
        "requestKind": kind,
        "requestResource": resource,
        "name": req.name,
        "operation": req.operation,
        "userInfo": user_info_wire(req.user),
        "object": req.object,
        "oldObject": req.old_object,
        "dryRun": req.dry_run,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": _OPTIONS_KIND[req.operation]},
    }
    if req.subresource:
        body["subResource"] = req.subresource
        body["requestSubResource"] = req.subresource
    if rt.namespaced:
        body["namespace"] = req.namespace
    return body


class WebhookCaller:
    """The sandbox's admission hooks for the webhook configurations in its store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._session: aiohttp.ClientSession | None = None
        self._contexts: dict[str, ssl.SSLContext] = {}

    async def mutate(self, req: AdmissionRequest) -> Obj | None:
        return await self._run(MUTATING, req, mutating=True)

    async def validate(self, req: AdmissionRequest) -> Obj | None:
        await self._run(VALIDATING, req, mutating=False)
        return None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- matching -----------------------------------------------------------------------
    def _namespace_labels(self, req: AdmissionRequest) -> dict[str, str] | None:
        rt = req.resource
        if rt.group == "" and rt.plural == "namespaces":
            own = {NAMESPACE_NAME_LABEL: req.name}
            return {**_labels(req.old_object), **_labels(req.object), **own}
        if not rt.namespaced:
            return None
        namespace = self.store.get("namespaces", None, req.namespace)
        return {**_labels(namespace), NAMESPACE_NAME_LABEL: req.namespace}

    def _matches(self, webhook: Mapping[str, Any], req: AdmissionRequest) -> bool:
        if not any(rule_matches(rule, req) for rule in webhook.get("rules") or []):
            return False
        namespace_labels = self._namespace_labels(req)
        if namespace_labels is not None and not selector_matches(
            webhook.get("namespaceSelector"), namespace_labels
        ):
            return False
        selector = webhook.get("objectSelector")
        return not selector or any(
            selector_matches(selector, _labels(obj))
            for obj in (req.object, req.old_object)
            if obj is not None
        )

    @staticmethod
    def _conditions_hold(webhook: Mapping[str, Any], review: Obj) -> bool:
        """False when a condition is false; CallFailed when one cannot be evaluated."""
        variables = {
            "object": review.get("object"),
            "oldObject": review.get("oldObject"),
            "request": review,
        }
        for condition in webhook.get("matchConditions") or []:
            try:
                if not evaluate_condition(str(condition.get("expression", "")), variables):
                    return False
            except CelError as error:
                raise CallFailed(
                    f"matchCondition {condition.get('name')!r} cannot be evaluated: {error}"
                ) from error
        return True

    # --- calling ------------------------------------------------------------------------
    def _ssl(self, ca_bundle: str | None) -> ssl.SSLContext:
        key = ca_bundle or ""
        if key not in self._contexts:
            if ca_bundle:
                try:
                    pem = base64.b64decode(ca_bundle).decode()
                    context = ssl.create_default_context(cadata=pem)
                except (ValueError, ssl.SSLError) as error:
                    raise CallFailed(f"the caBundle cannot be used: {error}") from error
            else:
                context = ssl.create_default_context()
            self._contexts[key] = context
        return self._contexts[key]

    async def _post(self, webhook: Mapping[str, Any], review: Obj) -> Obj:
        client = webhook.get("clientConfig") or {}
        url = client.get("url")
        if not url:
            service = client.get("service") or {}
            raise CallFailed(
                f"the sandbox cannot reach Service {service.get('namespace')}/"
                f"{service.get('name')}: give clientConfig.url instead"
            )
        if not str(url).startswith("https://"):
            raise CallFailed(f"webhook URLs must use https, not {url}")
        timeout = min(int(webhook.get("timeoutSeconds") or DEFAULT_TIMEOUT), MAX_TIMEOUT)
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        body = {"apiVersion": ADMISSION_VERSION, "kind": "AdmissionReview", "request": review}
        try:
            async with self._session.post(
                url,
                json=body,
                ssl=self._ssl(client.get("caBundle")),
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                text = await response.text()
                if response.status != 200:
                    raise CallFailed(
                        f'failed to call webhook: Post "{url}": the server responded with '
                        f"status {response.status}: {text[:300]}"
                    )
        except TimeoutError as error:  # before ClientError: aiohttp's timeouts are both
            raise CallFailed(
                f'failed to call webhook: Post "{url}": context deadline exceeded'
            ) from error
        except (aiohttp.ClientError, OSError) as error:
            raise CallFailed(f'failed to call webhook: Post "{url}": {error}') from error
        try:
            answer = json.loads(text)
        except ValueError as error:
            raise CallFailed(f"the webhook's answer is not JSON: {error}") from error
        if not isinstance(answer, dict) or answer.get("apiVersion") != ADMISSION_VERSION or (
            answer.get("kind") != "AdmissionReview"
        ):
            raise CallFailed(f"expected an AdmissionReview of {ADMISSION_VERSION} in response")
        response_body = answer.get("response")
        if not isinstance(response_body, dict):
            raise CallFailed("the webhook's answer has no response")
        if response_body.get("uid") != review["uid"]:
            raise CallFailed(
                f"expected response.uid={review['uid']!r}, got {response_body.get('uid')!r}"
            )
        return response_body

    async def _call(
        self, webhook: Mapping[str, Any], req: AdmissionRequest, obj: Obj | None, mutating: bool
    ) -> Obj | None:
        """Call one webhook; return the patched object (mutating) or None."""
        name = webhook.get("name", "")
        review = admission_request(req)
        review["object"] = obj
        if not self._conditions_hold(webhook, review):
            return None
        answer = await self._post(webhook, review)
        req.warnings.extend(str(w) for w in answer.get("warnings") or [])
        if not answer.get("allowed"):
            status = answer.get("status") or {}
            message = status.get("message") or status.get("reason") or ""
            text = f'admission webhook "{name}" denied the request'
            text = f"{text}: {message}" if message else f"{text} without explanation"
            code = int(status.get("code") or 400)
            raise AdmissionDenied(text, max(code, 400), status.get("reason") or "")
        patch = answer.get("patch")
        if not patch:
            return None
        if not mutating:
            raise CallFailed("a validating webhook may not return a patch")
        if answer.get("patchType") != "JSONPatch":
            raise CallFailed(f"unsupported patchType {answer.get('patchType')!r}")
        try:
            operations = json.loads(base64.b64decode(patch))
            return dict(json_patch(copy.deepcopy(obj), operations))
        except (ValueError, PatchError) as error:
            raise CallFailed(f"the webhook's patch cannot be applied: {error}") from error

    async def _run(self, storage: str, req: AdmissionRequest, *, mutating: bool) -> Obj | None:
        obj: Obj | None = None
        copied = changed = False
        for configuration in self.store.list(storage):
            for webhook in configuration.get("webhooks") or []:
                if not self._matches(webhook, req):
                    continue
                if not copied:  # the object is copied only for a webhook it concerns
                    obj = copy.deepcopy(req.object) if req.object is not None else None
                    copied = True
                name = webhook.get("name", "")
                if req.dry_run and webhook.get("sideEffects") not in ("None", "NoneOnDryRun"):
                    raise AdmissionDenied(
                        f'admission webhook "{name}" does not support dry run', 400, "BadRequest"
                    )
                try:
                    patched = await self._call(webhook, req, obj, mutating)
                except CallFailed as failure:
                    if webhook.get("failurePolicy", "Fail") == "Ignore":
                        log.warning("webhook %s failed and is ignored: %s", name, failure)
                        continue
                    raise AdmissionDenied(
                        f'Internal error occurred: failed calling webhook "{name}": {failure}',
                        500,
                        "InternalError",
                    ) from failure
                if patched is not None:
                    obj, changed = patched, True
        return obj if mutating and changed else None
