"""The sandbox API server calls admission webhooks as Kubernetes does."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from mltrl_sandbox.cel import CelError, evaluate
from mltrl_sandbox.certs import ServingCertificate, make_serving_certificate
from mltrl_sandbox.server import SandboxServer

Answer = Callable[[dict[str, Any]], dict[str, Any]]
TOKENS = {
    "admin-token": ("admin", ["system:masters"]),
    "bob-token": ("bob", ["qa"]),
}


def allow(request: dict[str, Any]) -> dict[str, Any]:
    return {"uid": request["uid"], "allowed": True}


class FakeWebhook:
    """An HTTPS webhook that records what it is sent and answers with `answer`."""

    def __init__(self, certificate: ServingCertificate) -> None:
        self.certificate = certificate
        self.received: list[dict[str, Any]] = []
        self.answer: Answer = allow
        self.delay = 0.0
        self.status = 200
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        review = await request.json()
        self.received.append(review["request"])
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.status != 200:
            return web.Response(status=self.status, text="nope")
        return web.json_response({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "response": self.answer(review["request"]),
        })

    async def start(self) -> None:
        import ssl

        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.certificate.cert_file, self.certificate.key_file)
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        self.port = next(a[1] for a in self._runner.addresses if isinstance(a, tuple))

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> ServingCertificate:
    return make_serving_certificate(Path(tmp_path_factory.mktemp("hook-tls")))


@pytest.fixture
async def hook(certificate: ServingCertificate) -> AsyncIterator[FakeWebhook]:
    webhook = FakeWebhook(certificate)
    await webhook.start()
    yield webhook
    await webhook.stop()


class Api:
    def __init__(self, server: SandboxServer, session: aiohttp.ClientSession) -> None:
        self.server, self.session = server, session

    async def call(
        self, method: str, path: str, body: Any = None, *, token: str = "bob-token",
        headers: dict[str, str] | None = None, content_type: str = "application/json",
    ) -> tuple[int, Any, list[str]]:
        all_headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type,
                       **(headers or {})}
        async with self.session.request(
            method, self.server.url + path, data=json.dumps(body) if body is not None else None,
            headers=all_headers,
        ) as response:
            return response.status, await response.json(), response.headers.getall("Warning", [])

    async def configure(self, hook: FakeWebhook, certificate: ServingCertificate | None,
                        kind: str = "ValidatingWebhookConfiguration", **webhook: Any) -> None:
        client: dict[str, Any] = {"url": f"https://127.0.0.1:{hook.port}/hook"}
        if certificate is not None:
            client["caBundle"] = base64.b64encode(certificate.ca_pem).decode()
        body = {
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
            "metadata": {"name": "test"},
            "webhooks": [{
                "name": "configmaps.test.example.com",
                "clientConfig": client,
                "rules": [{"apiGroups": [""], "apiVersions": ["v1"],
                           "operations": ["CREATE", "UPDATE"], "resources": ["configmaps"]}],
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "timeoutSeconds": 2,
                **webhook,
            }],
        }
        plural = kind.lower() + "s"
        status, answer, _ = await self.call(
            "POST", f"/apis/admissionregistration.k8s.io/v1/{plural}", body, token="admin-token"
        )
        assert status == 201, answer

    async def create_configmap(self, name: str = "cm", namespace: str = "default",
                               labels: dict[str, str] | None = None,
                               **kw: Any) -> tuple[int, Any, list[str]]:
        body = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "labels": labels or {}}, "data": {"a": "1"}}
        return await self.call("POST", f"/api/v1/namespaces/{namespace}/configmaps", body, **kw)


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    async with SandboxServer(tokens=TOKENS) as server, aiohttp.ClientSession() as session:
        await server.grant("edit", users=["bob"], groups=["ci"])  # RBAC: they edit everywhere
        yield Api(server, session)


async def test_the_request_carries_the_requester_and_the_object(
    api: Api, hook: FakeWebhook, certificate: ServingCertificate
) -> None:
    await api.configure(hook, certificate)
    status, _, _ = await api.create_configmap()
    assert status == 201
    (request,) = hook.received
    assert request["operation"] == "CREATE" and request["namespace"] == "default"
    assert request["kind"] == {"group": "", "version": "v1", "kind": "ConfigMap"}
    assert request["resource"] == {"group": "", "version": "v1", "resource": "configmaps"}
    assert request["userInfo"] == {"username": "bob",
                                   "groups": ["qa", "system:authenticated"]}
    assert request["object"]["data"] == {"a": "1"} and request["oldObject"] is None
    assert request["options"] == {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
    # kubectl --as: the impersonated user is the requester.
    await api.create_configmap("cm2", token="admin-token",
                               headers={"Impersonate-User": "carol", "Impersonate-Group": "ci"})
    assert hook.received[-1]["userInfo"] == {
        "username": "carol", "groups": ["ci", "system:authenticated"],
    }


async def test_a_refusal_carries_the_webhooks_code_reason_and_message(
    api: Api, hook: FakeWebhook, certificate: ServingCertificate
) -> None:
    hook.answer = lambda r: {"uid": r["uid"], "allowed": False,
                             "status": {"code": 403, "reason": "Forbidden", "message": "no"}}
    await api.configure(hook, certificate)
    status, answer, _ = await api.create_configmap()
    assert (status, answer["reason"]) == (403, "Forbidden")
    assert answer["message"] == (
        'admission webhook "configmaps.test.example.com" denied the request: no'
    )
    status, answer, _ = await api.call("GET", "/api/v1/namespaces/default/configmaps/cm")
    assert status == 404  # nothing was stored


async def test_warnings_reach_the_client_and_patches_are_applied(
    api: Api, hook: FakeWebhook, certificate: ServingCertificate
) -> None:
    patch = [{"op": "add", "path": "/data/stamped", "value": "yes"}]
    hook.answer = lambda r: {
        "uid": r["uid"], "allowed": True, "warnings": ["mind the gap"],
        "patchType": "JSONPatch", "patch": base64.b64encode(json.dumps(patch).encode()).decode(),
    }
    await api.configure(hook, certificate, kind="MutatingWebhookConfiguration")
    status, answer, warnings = await api.create_configmap()
    assert status == 201 and answer["data"] == {"a": "1", "stamped": "yes"}
    assert warnings == ['299 - "mind the gap"']


@pytest.mark.parametrize(
    ("webhook", "called"),
    [
        ({"namespaceSelector": {"matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["default"]}]}},
         False),
        ({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "default"}}},
         True),
        ({"objectSelector": {"matchLabels": {"gated": "yes"}}}, False),
        ({"rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["UPDATE"],
                     "resources": ["configmaps"]}]}, False),
        ({"rules": [{"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["*"],
                     "resources": ["*"], "scope": "Namespaced"}]}, True),
        ({"rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["*"],
                     "resources": ["configmaps"], "scope": "Cluster"}]}, False),
        ({"rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["*"],
                     "resources": ["configmaps/status"]}]}, False),
        ({"matchConditions": [{"name": "not-bob",
                               "expression": 'request.userInfo.username != "bob"'}]}, False),
        ({"matchConditions": [{"name": "alive",
                               "expression": "!has(object.metadata.deletionTimestamp)"}]}, True),
    ],
)
async def test_which_requests_a_webhook_sees(
    api: Api, hook: FakeWebhook, certificate: ServingCertificate, webhook: dict[str, Any],
    called: bool,
) -> None:
    await api.configure(hook, certificate, **webhook)
    status, _, _ = await api.create_configmap()
    assert status == 201
    assert bool(hook.received) is called


async def test_a_call_that_fails_follows_the_failure_policy(
    api: Api, hook: FakeWebhook, certificate: ServingCertificate
) -> None:
    hook.status = 400
    await api.configure(hook, certificate)
    status, answer, _ = await api.create_configmap()
    assert (status, answer["reason"]) == (500, "InternalError")
    assert answer["message"].startswith(
        'Internal error occurred: failed calling webhook "configmaps.test.example.com": '
        "failed to call webhook: Post"
    )
    assert "the server responded with status 400: nope" in answer["message"]


@pytest.mark.parametrize(
    ("setup", "detail"),
    [
        ({"status": 200, "answer": lambda r: {"uid": "other", "allowed": True}},
         "expected response.uid="),
        ({"delay": 3.0}, "context deadline exceeded"),
        ({"wrong_ca": True}, "CERTIFICATE_VERIFY_FAILED"),
        ({"matchConditions": [{"name": "x", "expression": "authorizer.group('')"}]},
         "matchCondition 'x' cannot be evaluated"),
        ({"service": True}, "the sandbox cannot reach Service"),
    ],
)
async def test_failures_refuse_under_fail_and_pass_under_ignore(
    api: Api, hook: FakeWebhook, certificate: ServingCertificate, tmp_path: Path,
    setup: dict[str, Any], detail: str,
) -> None:
    hook.delay = setup.get("delay", 0.0)
    if "answer" in setup:
        hook.answer = setup["answer"]
    ca = make_serving_certificate(tmp_path) if setup.get("wrong_ca") else certificate
    extra: dict[str, Any] = {}
    if "matchConditions" in setup:
        extra["matchConditions"] = setup["matchConditions"]
    if setup.get("service"):
        extra["clientConfig"] = {"service": {"name": "svc", "namespace": "ns", "path": "/hook"}}
    extra["timeoutSeconds"] = 1
    await api.configure(hook, ca, **extra)
    status, answer, _ = await api.create_configmap()
    assert status == 500 and detail in answer["message"], answer
    # The same webhook with failurePolicy Ignore lets the request through.
    status, _, _ = await api.call(
        "DELETE", "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/test",
        token="admin-token",
    )
    await api.configure(hook, ca, failurePolicy="Ignore", **extra)
    status, _, _ = await api.create_configmap()
    assert status == 201


async def test_dry_run_reaches_only_webhooks_without_side_effects(
    api: Api, hook: FakeWebhook, certificate: ServingCertificate
) -> None:
    await api.configure(hook, certificate, sideEffects="Some")
    status, answer, _ = await api.call(
        "POST", "/api/v1/namespaces/default/configmaps?dryRun=All",
        {"metadata": {"name": "cm"}, "data": {}},
    )
    assert status == 400 and "does not support dry run" in answer["message"]


def test_the_cel_subset() -> None:
    variables = {
        "request": {"userInfo": {"username": "bob", "groups": ["qa"]}},
        "object": {"metadata": {"name": "x", "labels": {"a": "b"}}},
        "oldObject": None,
    }
    assert evaluate('request.userInfo.username != "mltrl"', variables) is True
    assert evaluate("!has(object.metadata.deletionTimestamp)", variables) is True
    assert evaluate("has(object.metadata.labels) && object.metadata.labels['a'] == 'b'",
                    variables) is True
    assert evaluate('"qa" in request.userInfo.groups || object.nope', variables) is True
    assert evaluate("false && object.nope", variables) is False
    assert evaluate("size(request.userInfo.groups) == 1", variables) is True
    assert evaluate("(1 == 1) && !(2 == 3)", variables) is True
    for broken in ("object.nope == 1", "oldObject.metadata", "authorizer", "1 +", "f(x)",
                   "'x' && true"):
        with pytest.raises(CelError):
            evaluate(broken, variables)
