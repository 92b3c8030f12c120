"""The webhook configurations, as documents: the same webhooks the Helm chart installs.

Namespace exemptions (the operator's namespace, kube-system, webhook.excludeNamespaces)
apply to the InferenceService gate only, so that a broken webhook can never block the
cluster's own workloads. MLTRL objects are governed in every namespace: an exemption for
them would be a place to keep a level nobody reviewed. The status webhook also sees
objects being deleted: a finalizer must not turn a terminating object into a writable one.

The chart (charts/mltrl-operator/templates/webhooks.yaml) is what clusters use; this
module builds the same objects for places without Helm, such as the sandbox, where the
API server reaches the operator at a URL rather than through a Service. A unit test keeps
the two in step (rules, failure policies, selectors, match conditions, paths).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from mltrl_operator.api.common import GROUP, VERSION

OPERATOR_NAMESPACE = "mltrl-system"
OPERATOR_SERVICE_ACCOUNT = "mltrl-operator"
CONFIGURATION_NAME = "mltrl-operator"
DEFAULT_TIMEOUT_SECONDS = 5

Body = dict[str, Any]


def operator_username(
    namespace: str = OPERATOR_NAMESPACE, service_account: str = OPERATOR_SERVICE_ACCOUNT
) -> str:
    return f"system:serviceaccount:{namespace}:{service_account}"


@dataclass(frozen=True)
class Webhook:
    name: str
    path: str
    group: str
    version: str
    resources: tuple[str, ...]
    scope: str
    """Namespaced, Cluster or * (both)."""
    mutating: bool = False
    exempt_namespaces: bool = False
    """Whether the namespace exemptions apply (InferenceServices only)."""
    operations: tuple[str, ...] = ("CREATE", "UPDATE")
    skip_deleting: bool = True


STATUS_RESOURCES = ("mltechnologies/status", "levelreviews/status", "mltrlpolicies/status")

WEBHOOKS = (
    Webhook("levelreviews.mutate.mltrl.dev", "/mutate-levelreview", GROUP, VERSION,
            ("levelreviews",), "Namespaced", mutating=True),
    Webhook("mltechnologies.mutate.mltrl.dev", "/mutate-mltechnology", GROUP, VERSION,
            ("mltechnologies",), "Namespaced", mutating=True),
    Webhook("levelreviews.validate.mltrl.dev", "/validate-levelreview", GROUP, VERSION,
            ("levelreviews",), "Namespaced"),
    Webhook("mltechnologies.validate.mltrl.dev", "/validate-mltechnology", GROUP, VERSION,
            ("mltechnologies",), "Namespaced"),
    Webhook("mltrlpolicies.validate.mltrl.dev", "/validate-mltrlpolicy", GROUP, VERSION,
            ("mltrlpolicies",), "Cluster"),
    Webhook("status.validate.mltrl.dev", "/validate-status", GROUP, VERSION,
            STATUS_RESOURCES, "*", skip_deleting=False),
    Webhook("inferenceservices.validate.mltrl.dev", "/validate-inferenceservice",
            "serving.kserve.io", "v1beta1", ("inferenceservices",), "Namespaced",
            exempt_namespaces=True),
    # The audit record (issue 15): nobody but the operator writes or deletes it.
    Webhook("mltrlauditrecords.validate.mltrl.dev", "/validate-mltrlauditrecord", GROUP,
            VERSION, ("mltrlauditrecords",), "Cluster",
            operations=("CREATE", "UPDATE", "DELETE"), skip_deleting=False),
    # Waivers (issue 15): approvals stamped, then length, expiry and approvers checked.
    Webhook("mltrlwaivers.mutate.mltrl.dev", "/mutate-mltrlwaiver", GROUP, VERSION,
            ("mltrlwaivers",), "Namespaced", mutating=True),
    Webhook("mltrlwaivers.validate.mltrl.dev", "/validate-mltrlwaiver", GROUP, VERSION,
            ("mltrlwaivers", "mltrlwaivers/status"), "Namespaced"),
)


def _webhook(
    hook: Webhook,
    client_config: Body,
    *,
    operator: str,
    excluded_namespaces: tuple[str, ...],
    timeout_seconds: int,
    failure_policy: str,
) -> Body:
    body: Body = {
        "name": hook.name,
        "clientConfig": client_config,
        "failurePolicy": failure_policy,
    }
    if hook.mutating:
        body["reinvocationPolicy"] = "Never"
    body["rules"] = [
        {
            "apiGroups": [hook.group],
            "apiVersions": [hook.version],
            "operations": list(hook.operations),
            "resources": list(hook.resources),
            "scope": hook.scope,
        }
    ]
    if hook.exempt_namespaces:
        body["namespaceSelector"] = {
            "matchExpressions": [
                {
                    "key": "kubernetes.io/metadata.name",
                    "operator": "NotIn",
                    "values": list(dict.fromkeys(excluded_namespaces)),
                }
            ]
        }
    body.update(
        {
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "timeoutSeconds": timeout_seconds,
            "matchPolicy": "Equivalent",
            "matchConditions": [
                {
                    "name": "not-the-operator",
                    "expression": f'request.userInfo.username != "{operator}"',
                },
                *(
                    [{
                        "name": "not-being-deleted",
                        "expression": "!has(object.metadata.deletionTimestamp)",
                    }]
                    if hook.skip_deleting
                    else []
                ),
            ],
        }
    )
    return body


def webhook_configurations(
    url: str,
    ca_pem: bytes,
    *,
    name: str = CONFIGURATION_NAME,
    operator: str | None = None,
    operator_namespace: str = OPERATOR_NAMESPACE,
    excluded_namespaces: tuple[str, ...] = (),
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS,
    inference_service_failure_policy: str = "Fail",
    labels: dict[str, str] | None = None,
) -> list[Body]:
    """A MutatingWebhookConfiguration and a ValidatingWebhookConfiguration that call the
    webhook server at `url` (https://host:port), trusting the CA in `ca_pem`."""
    ca_bundle = base64.b64encode(ca_pem).decode()
    base = url.rstrip("/")
    operator = operator or operator_username(operator_namespace)
    excluded = (operator_namespace, "kube-system", *excluded_namespaces)
    documents: list[Body] = []
    for kind, mutating in (
        ("MutatingWebhookConfiguration", True),
        ("ValidatingWebhookConfiguration", False),
    ):
        documents.append(
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": kind,
                "metadata": {
                    "name": name,
                    "labels": {"app.kubernetes.io/part-of": "mltrl-operator", **(labels or {})},
                },
                "webhooks": [
                    _webhook(
                        hook,
                        {"url": f"{base}{hook.path}", "caBundle": ca_bundle},
                        operator=operator,
                        excluded_namespaces=excluded,
                        timeout_seconds=timeout_seconds,
                        failure_policy=inference_service_failure_policy
                        if hook.group != GROUP
                        else "Fail",
                    )
                    for hook in WEBHOOKS
                    if hook.mutating is mutating
                ],
            }
        )
    return documents
