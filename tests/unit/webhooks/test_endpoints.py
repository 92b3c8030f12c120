"""The webhook server over HTTPS, fed raw AdmissionReview JSON as an API server sends it."""

from __future__ import annotations

import base64
import json
import os
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from mltrl_operator import metrics
from mltrl_operator.api.policy import MLTRLPolicySpec
from mltrl_operator.domain.policy import EffectivePolicy, NamedPolicy, effective_policy
from mltrl_operator.webhooks.config import (
    CertificateFiles,
    WebhookConfig,
    WebhookConfigError,
    webhook_config,
)
from mltrl_operator.webhooks.server import WebhookServer
from mltrl_sandbox.certs import ServingCertificate, make_serving_certificate

NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
CI_GROUP = "system:serviceaccounts:ci"


class FakeCluster:
    """The ClusterState the handlers read, from plain dicts."""

    def __init__(self) -> None:
        self.technologies_: dict[tuple[str, str], dict[str, Any]] = {}
        self.policies: list[NamedPolicy] = []
        self.namespace_labels: dict[str, dict[str, str]] = {}
        self.broken = False

    def add_technology(self, namespace: str, name: str, level: int | None, **spec: Any) -> None:
        self.technologies_[(namespace, name)] = {
            "metadata": {"namespace": namespace, "name": name},
            "spec": {"owner": "alice", "entryLevel": 3, **spec},
            "status": {} if level is None else {"level": level, "effectiveLevel": level},
        }

    async def technology(self, namespace: str, name: str) -> dict[str, Any] | None:
        if self.broken:
            raise ConnectionError("the API server is unreachable")
        return self.technologies_.get((namespace, name))

    async def technologies(self) -> list[dict[str, Any]]:
        return list(self.technologies_.values())

    async def inference_service(self, namespace: str, name: str) -> dict[str, Any] | None:
        return None

    async def waivers(self, namespace: str) -> list[dict[str, Any]]:
        return []

    async def policy_for(self, namespace: str) -> EffectivePolicy:
        return effective_policy(self.policies, self.namespace_labels.get(namespace, {}))


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> ServingCertificate:
    return make_serving_certificate(Path(tmp_path_factory.mktemp("webhook-tls")))


@pytest.fixture
def cluster() -> FakeCluster:
    cluster = FakeCluster()
    cluster.policies = [
        NamedPolicy("prod", MLTRLPolicySpec.model_validate(
            {"namespaceSelector": {"matchLabels": {"env": "prod"}},
             "serving": {"minimumLevel": 6, "governed": True}})),
        NamedPolicy("watch", MLTRLPolicySpec.model_validate(
            {"namespaceSelector": {"matchLabels": {"env": "watch"}},
             "serving": {"minimumLevel": 6, "governed": True, "enforcement": "audit"}})),
    ]
    cluster.namespace_labels = {"payments": {"env": "prod"}, "lab": {"env": "watch"}}
    cluster.add_technology("payments", "scorer", 5)
    cluster.add_technology("payments", "ranker", 6, model={
        "version": "1", "storageUri": "s3://models/ranker", "format": "sklearn"})
    return cluster


class Client:
    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session, self.url = session, url

    async def post(self, path: str, body: Any, *, raw: bytes | None = None) -> tuple[int, Any]:
        data = raw if raw is not None else json.dumps(body).encode()
        async with self.session.post(
            self.url + path, data=data, headers={"Content-Type": "application/json"}
        ) as response:
            text = await response.text()
            return response.status, json.loads(text) if text.startswith("{") else text

    async def admit(self, path: str, request: dict[str, Any]) -> dict[str, Any]:
        status, answer = await self.post(path, review(request))
        assert status == 200, answer
        assert answer["apiVersion"] == "admission.k8s.io/v1"
        assert answer["kind"] == "AdmissionReview"
        assert answer["response"]["uid"] == request["uid"]
        response: dict[str, Any] = answer["response"]
        return response


@pytest.fixture
async def client(certificate: ServingCertificate, cluster: FakeCluster) -> AsyncIterator[Client]:
    config = WebhookConfig(
        port=0, cert_file=certificate.cert_file, key_file=certificate.key_file,
        host="127.0.0.1", trusted_groups=frozenset({CI_GROUP}), max_body_bytes=64 * 1024,
    )
    async with WebhookServer(config, cluster, lambda: NOW) as server:
        context = ssl.create_default_context(cadata=certificate.ca_pem.decode())
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
            yield Client(session, f"https://127.0.0.1:{server.port}")


def review(request: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def request(
    kind: str,
    obj: dict[str, Any] | None,
    *,
    group: str = "mltrl.dev",
    version: str = "v1alpha1",
    resource: str = "",
    operation: str = "CREATE",
    user: str = "bob",
    groups: tuple[str, ...] = ("system:authenticated",),
    old: dict[str, Any] | None = None,
    sub_resource: str | None = None,
) -> dict[str, Any]:
    metadata = (obj or old or {}).get("metadata") or {}
    body: dict[str, Any] = {
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "kind": {"group": group, "version": version, "kind": kind},
        "resource": {"group": group, "version": version,
                     "resource": resource or kind.lower() + "s"},
        "name": metadata.get("name", ""),
        "namespace": metadata.get("namespace", ""),
        "operation": operation,
        "userInfo": {"username": user, "groups": list(groups)},
        "object": obj,
        "oldObject": old,
        "dryRun": False,
    }
    if sub_resource:
        body["subResource"] = sub_resource
    return body


def isvc(namespace: str, technology: str | None) -> dict[str, Any]:
    labels = {"mltrl.dev/technology": technology} if technology else {}
    return {
        "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
        "metadata": {"name": "model", "namespace": namespace, "labels": labels},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"},
                                         "storageUri": f"s3://models/{technology}"}}},
    }


def isvc_request(namespace: str, technology: str | None, **kw: Any) -> dict[str, Any]:
    return request("InferenceService", isvc(namespace, technology), group="serving.kserve.io",
                   version="v1beta1", **kw)


def level_review(*approvals: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "mltrl.dev/v1alpha1", "kind": "LevelReview",
        "metadata": {"name": "scorer-to-6", "namespace": "payments"},
        "spec": {"technology": "scorer", "fromLevel": 5, "toLevel": 6,
                 "approvals": list(approvals)},
    }


# --- valid requests ----------------------------------------------------------------------


async def test_a_valid_request_that_passes_the_gate_is_allowed(client: Client) -> None:
    response = await client.admit("/validate-inferenceservice",
                                  isvc_request("payments", "ranker"))
    assert response == {"uid": response["uid"], "allowed": True}


async def test_a_valid_request_below_the_gate_is_denied_with_the_reason(client: Client) -> None:
    response = await client.admit("/validate-inferenceservice",
                                  isvc_request("payments", "scorer"))
    assert response["allowed"] is False
    assert response["status"] == {
        "status": "Failure", "code": 403, "reason": "Forbidden",
        "message": "metadata.labels[mltrl.dev/technology]: Forbidden: "
        'InferenceService payments/model may not serve: mltech scorer is at level 5 '
        '(Machine Learning "Capability"); serving requires level 6 (policy prod)',
    }


async def test_audit_mode_allows_with_a_warning(client: Client) -> None:
    response = await client.admit("/validate-inferenceservice", isvc_request("lab", None))
    assert response["allowed"] is True
    assert response["warnings"] == [
        "InferenceService lab/model: the InferenceService claims no MLTechnology (label "
        "mltrl.dev/technology) and the namespace is governed (policy watch) (audit: reported "
        "only)"
    ]


async def test_the_mutating_webhook_answers_with_a_json_patch(client: Client) -> None:
    obj = level_review({"role": "qa", "decision": "approve"})
    response = await client.admit("/mutate-levelreview", request("LevelReview", obj))
    assert response["allowed"] is True and response["patchType"] == "JSONPatch"
    reviewer, time, stamp = json.loads(base64.b64decode(response["patch"]))
    assert [reviewer, time] == [
        {"op": "add", "path": "/spec/approvals/0/reviewer", "value": "bob"},
        {"op": "add", "path": "/spec/approvals/0/time", "value": "2026-11-22T12:00:00Z"},
    ]
    assert stamp["path"] == "/spec/approvals/0/approvedBy"
    assert stamp["value"]["username"] == "bob"
    assert stamp["value"]["time"] == "2026-11-22T12:00:00Z"
    assert len(stamp["value"]["content"]["digest"]) == 64


async def test_reviews_bind_approvals_to_the_requester(client: Client) -> None:
    forged = request("LevelReview", level_review({"reviewer": "carol", "role": "qa",
                                                  "decision": "approve"}), user="mallory")
    response = await client.admit("/validate-levelreview", forged)
    assert response["allowed"] is False and response["status"]["code"] == 403
    assert "mallory may not record an approval as 'carol'" in response["status"]["message"]
    trusted = {**forged, "userInfo": {"username": "system:serviceaccount:ci:bot",
                                      "groups": [CI_GROUP]}}
    assert (await client.admit("/validate-levelreview", trusted))["allowed"] is True
    owner = request("LevelReview", level_review({"reviewer": "alice", "role": "qa",
                                                 "decision": "approve"}), user="alice")
    response = await client.admit("/validate-levelreview", owner)
    assert response["allowed"] is False
    assert "alice owns mltech scorer" in response["status"]["message"]


async def test_an_applied_review_cannot_be_edited(client: Client) -> None:
    old = level_review({"reviewer": "bob", "role": "qa", "decision": "approve"})
    old["status"] = {"phase": "Applied"}
    new = json.loads(json.dumps(old))
    new["spec"]["reason"] = "second thoughts"
    response = await client.admit(
        "/validate-levelreview", request("LevelReview", new, old=old, operation="UPDATE")
    )
    assert response["allowed"] is False
    assert response["status"]["message"].startswith("spec: Forbidden: the review is Applied")


async def test_technology_and_policy_rules_and_the_status_level(client: Client) -> None:
    technology = {"metadata": {"name": "t", "namespace": "payments"},
                  "spec": {"owner": "alice", "entryLevel": 5, "targetLevel": 4}}
    response = await client.admit("/validate-mltechnology", request("MLTechnology", technology,
                                                                    resource="mltechnologies"))
    assert response["allowed"] is False and response["status"]["reason"] == "Invalid"
    assert response["status"]["code"] == 422
    assert response["status"]["message"] == (
        "spec.targetLevel: Invalid: must be at least spec.entryLevel (5)"
    )
    old = {**technology, "spec": {"owner": "alice"}, "status": {"level": 3}}
    promoted = {**old, "status": {"level": 9}}
    response = await client.admit("/validate-status", request(
        "MLTechnology", promoted, old=old, operation="UPDATE", resource="mltechnologies",
        sub_resource="status"))
    assert response["allowed"] is False and response["status"]["message"] == (
        "status: Forbidden: only the operator's service account may write "
        "mltechnologies/status (bob may not); the status records what the operator decided"
    )
    policy = {"metadata": {"name": "p"},
              "spec": {"requirements": [{"level": 0}]}}
    response = await client.admit("/validate-mltrlpolicy", request(
        "MLTRLPolicy", policy, resource="mltrlpolicies"))
    assert response["allowed"] is False
    assert "no promotion leads to level 0" in response["status"]["message"]


async def test_delete_is_not_checked(client: Client) -> None:
    body = isvc_request("payments", "scorer", operation="DELETE")
    body["oldObject"], body["object"] = body["object"], None
    assert (await client.admit("/validate-inferenceservice", body))["allowed"] is True


# --- what is not a valid request ---------------------------------------------------------


async def test_malformed_json_is_a_400(client: Client) -> None:
    status, answer = await client.post("/validate-levelreview", None, raw=b"{not json")
    assert status == 400 and answer["error"].startswith("the body is not JSON")


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"[" * 5000 + b"]" * 5000, "nested 5000 levels deep, more than the 64 allowed"),
        (b'{"request": NaN}', "NaN is not a JSON number"),
        (b'{"request": -Infinity}', "-Infinity is not a JSON number"),
        (b'{"kind": "\xff"}', "the body is not UTF-8 (byte 10)"),
        (b'{"kind": "\\ud800"}', "a string holds a lone UTF-16 surrogate"),
    ],
    ids=["deep", "nan", "infinity", "not utf-8", "lone surrogate"],
)
async def test_unparseable_bodies_are_a_400_naming_the_problem(
    client: Client, raw: bytes, problem: str
) -> None:
    for path in ("/validate-levelreview", "/validate-inferenceservice", "/validate-mltechnology"):
        status, answer = await client.post(path, None, raw=raw)
        assert (status, answer) == (400, {"error": f"the body is not JSON: {problem}"}), path


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ([], "the body must be an object"),
        ({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {}},
         "expected a AdmissionReview of admission.k8s.io/v1, got a 'AdmissionReview' of "
         "'admission.k8s.io/v1beta1'"),
        (review({}), "request.kind must be an object"),
        (review({**isvc_request("payments", "x"), "uid": ""}),
         "request.uid must be a non-empty string"),
        (review({**isvc_request("payments", "x"), "operation": "PATCH"}),
         "request.operation 'PATCH' is not one of"),
        (review({**isvc_request("payments", "x"), "object": "no"}),
         "request.object must be an object"),
    ],
)
async def test_what_is_not_an_admission_review_is_a_400(
    client: Client, body: Any, detail: str
) -> None:
    status, answer = await client.post("/validate-inferenceservice", body)
    assert status == 400
    assert answer["error"].startswith("not an AdmissionReview v1 request: " + detail)


async def test_an_unknown_kind_is_refused_with_a_clear_error(client: Client) -> None:
    pod = request("Pod", {"metadata": {"name": "p", "namespace": "payments"}}, group="",
                  version="v1")
    response = await client.admit("/validate-inferenceservice", pod)
    assert response["allowed"] is False
    assert response["status"]["code"] == 400 and response["status"]["reason"] == "BadRequest"
    assert response["status"]["message"] == (
        "/validate-inferenceservice admits InferenceService (serving.kserve.io), not Pod (v1): "
        "the webhook configuration's rules send the wrong resources here"
    )


async def test_a_body_over_the_limit_is_a_413(client: Client) -> None:
    status, _ = await client.post("/validate-levelreview", None, raw=b" " * (65 * 1024))
    assert status == 413


async def test_when_the_cluster_cannot_be_read_the_failure_policy_decides(
    client: Client, cluster: FakeCluster
) -> None:
    cluster.broken = True
    status, answer = await client.post(
        "/validate-inferenceservice", review(isvc_request("payments", "scorer"))
    )
    assert status == 500 and "the API server is unreachable" in answer["error"]


async def test_only_https_and_a_health_check(
    client: Client, certificate: ServingCertificate
) -> None:
    async with client.session.get(client.url + "/healthz") as response:
        assert response.status == 200 and await response.text() == "ok"
    plain = client.url.replace("https://", "http://")
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientError):
            async with session.get(plain + "/healthz") as response:
                await response.read()


# --- configuration -----------------------------------------------------------------------


def test_the_command_line_configuration(certificate: ServingCertificate) -> None:
    assert webhook_config(None, None, None) is None
    with pytest.raises(WebhookConfigError, match="need --webhook-port"):
        webhook_config(None, "tls.crt", None)
    with pytest.raises(WebhookConfigError, match="HTTPS only"):
        webhook_config(9443, None, None)
    with pytest.raises(WebhookConfigError, match="cannot load the webhook certificate"):
        webhook_config(9443, "/nonexistent/tls.crt", "/nonexistent/tls.key")
    config = webhook_config(9443, str(certificate.cert_file), str(certificate.key_file),
                            trusted_groups=[CI_GROUP, ""])
    assert config is not None and config.trusted_groups == frozenset({CI_GROUP})


def test_a_renewed_certificate_is_loaded_into_the_same_context(tmp_path: Path) -> None:
    first = make_serving_certificate(tmp_path)
    files = CertificateFiles(first.cert_file, first.key_file)
    context = files.context
    assert files.reload() is False
    renewed = make_serving_certificate(tmp_path / "renewed")
    first.cert_file.write_bytes(renewed.cert_file.read_bytes())
    first.key_file.write_bytes(renewed.key_file.read_bytes())
    os.utime(first.cert_file, ns=(1, 2))
    assert files.reload() is True and files.context is context


async def test_admission_decisions_are_counted(client: Client) -> None:
    def count(decision: str) -> float:
        value = metrics.REGISTRY.get_sample_value(
            "mltrl_gate_decisions_total", {"source": "admission", "decision": decision}
        )
        return value or 0.0

    before = {decision: count(decision) for decision in ("allow", "warn", "deny")}
    await client.admit("/validate-inferenceservice", isvc_request("payments", "ranker"))
    await client.admit("/validate-inferenceservice", isvc_request("payments", "scorer"))
    await client.admit("/validate-inferenceservice", isvc_request("lab", None))
    assert {d: count(d) - before[d] for d in before} == {"allow": 1, "warn": 1, "deny": 1}


# --- issue 11: a level can only be earned ------------------------------------------------


async def test_the_status_webhook_refuses_everyone_it_sees(client: Client) -> None:
    for kind, resource in (("LevelReview", "levelreviews"), ("MLTRLPolicy", "mltrlpolicies")):
        body = {"metadata": {"name": "x", "namespace": "payments"}, "spec": {},
                "status": {"phase": "Rejected"}}
        response = await client.admit("/validate-status", request(
            kind, body, old=body, operation="UPDATE", resource=resource, sub_resource="status",
            user="mallory"))
        assert response["allowed"] is False and response["status"]["code"] == 403
        assert response["status"]["message"].startswith(
            f"status: Forbidden: only the operator's service account may write {resource}/status"
        )


async def test_the_entry_level_is_immutable(client: Client) -> None:
    old = {"metadata": {"name": "t", "namespace": "payments", "uid": "u"},
           "spec": {"owner": "alice", "entryLevel": 3}}
    new = {**old, "spec": {"owner": "alice", "entryLevel": 9}}
    response = await client.admit("/validate-mltechnology", request(
        "MLTechnology", new, old=old, operation="UPDATE", resource="mltechnologies"))
    assert response["allowed"] is False and response["status"]["reason"] == "Forbidden"
    assert response["status"]["message"].startswith(
        "spec.entryLevel: Forbidden: is immutable once created (was 3)")


async def test_who_set_the_owner_is_written_by_the_webhook_only(client: Client) -> None:
    created = {"metadata": {"name": "t", "namespace": "payments",
                            "annotations": {"mltrl.dev/owner-set-by": "admin"}},
               "spec": {"owner": "alice"}}
    response = await client.admit("/mutate-mltechnology", request(
        "MLTechnology", created, resource="mltechnologies", user="mallory"))
    assert json.loads(base64.b64decode(response["patch"])) == [
        {"op": "add", "path": "/metadata/annotations/mltrl.dev~1owner-set-by",
         "value": "mallory"}]
    stored = {**created, "metadata": {**created["metadata"],
                                      "annotations": {"mltrl.dev/owner-set-by": "alice"}}}
    forged = {**created, "metadata": {**created["metadata"],
                                      "annotations": {"mltrl.dev/owner-set-by": "platform"}}}
    response = await client.admit("/mutate-mltechnology", request(
        "MLTechnology", forged, old=stored, operation="UPDATE", resource="mltechnologies",
        user="mallory"))
    assert json.loads(base64.b64decode(response["patch"])) == [
        {"op": "add", "path": "/metadata/annotations/mltrl.dev~1owner-set-by",
         "value": "alice"}]
