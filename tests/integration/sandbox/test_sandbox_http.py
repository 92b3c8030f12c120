"""The sandbox's HTTP surface: discovery, OpenAPI, tables, errors, auth, admission, stats."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from conftest import GIZMO_CRD, WIDGET_CRD, crd

from mltrl_sandbox.admission import AdmissionDenied, AdmissionRequest
from mltrl_sandbox.auth import UserInfo
from mltrl_sandbox.server import SandboxServer

BASE = "/apis/example.com/v1/namespaces/default/widgets"
KUBECTL_TABLE = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,"
    "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
)
TOKENS = {"alice-token": ("alice", ["devs"]), "root-token": ("root", ["system:masters"])}


@pytest.fixture
async def server() -> AsyncIterator[SandboxServer]:
    async with SandboxServer([crd(WIDGET_CRD), crd(GIZMO_CRD)]) as sandbox:
        yield sandbox


@pytest.fixture
async def http(server: SandboxServer) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=server.url) as session:
        yield session


def widget(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"owner": "o", **spec},
    }


async def call(
    http: aiohttp.ClientSession, method: str, path: str, body: Any = None, **kw: Any
) -> tuple[int, Any]:
    headers = dict(kw.pop("headers", {}))
    data = None
    if body is not None:
        data = body if isinstance(body, str | bytes) else json.dumps(body)
        headers.setdefault("Content-Type", "application/json")
    async with http.request(method, path, data=data, headers=headers, **kw) as resp:
        text = await resp.text()
        return resp.status, json.loads(text) if text.startswith(("{", "[")) else text


async def test_discovery_documents(http: aiohttp.ClientSession) -> None:
    status, api = await call(http, "GET", "/api", headers={"Accept": "application/json"})
    assert status == 200 and api["kind"] == "APIVersions" and api["versions"] == ["v1"]
    kubectl_accept = (
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
    )
    _, groups = await call(http, "GET", "/apis", headers={"Accept": kubectl_accept})
    assert groups["kind"] == "APIGroupList"
    names = {g["name"]: g["preferredVersion"]["version"] for g in groups["groups"]}
    assert names["example.com"] == "v1" and names["apiextensions.k8s.io"] == "v1"
    _, resources = await call(http, "GET", "/apis/example.com/v1")
    by_name = {r["name"]: r for r in resources["resources"]}
    assert by_name["widgets"]["shortNames"] == ["wdg"]
    assert by_name["widgets"]["categories"] == ["gadgets"]
    assert by_name["widgets"]["namespaced"] is True
    assert by_name["gizmos"]["namespaced"] is False
    assert "widgets/status" in by_name and "gizmos/status" not in by_name
    assert "watch" in by_name["widgets"]["verbs"]
    _, core = await call(http, "GET", "/api/v1")
    assert {"namespaces", "configmaps", "secrets", "events", "namespaces/status"} <= {
        r["name"] for r in core["resources"]
    }
    _, version = await call(http, "GET", "/version")
    assert version["major"] == "1"


async def test_openapi_v3_offers_field_validation_and_descriptions(
    http: aiohttp.ClientSession,
) -> None:
    _, index = await call(http, "GET", "/openapi/v3")
    url = index["paths"]["apis/example.com/v1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/apis/example.com/v1?hash=")
    assert "api/v1" in index["paths"]
    _, doc = await call(http, "GET", url)
    patch = doc["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": "example.com",
        "version": "v1",
        "kind": "Widget",
    }
    assert {"name": "fieldValidation", "in": "query"}.items() <= next(
        p for p in patch["parameters"] if p["name"] == "fieldValidation"
    ).items()
    schema = doc["components"]["schemas"]["com.example.v1.Widget"]
    assert schema["x-kubernetes-group-version-kind"] == [
        {"group": "example.com", "version": "v1", "kind": "Widget"}
    ]
    assert (
        schema["properties"]["spec"]["properties"]["owner"]["description"]
        == "The team that owns the widget."
    )


async def test_tables_follow_printer_columns(http: aiohttp.ClientSession) -> None:
    await call(http, "POST", BASE, widget("t", size=5, color="green"))
    status, table = await call(http, "GET", BASE, headers={"Accept": KUBECTL_TABLE})
    assert status == 200 and table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    columns = [(c["name"], c["priority"]) for c in table["columnDefinitions"]]
    assert columns == [
        ("Name", 0),
        ("Owner", 0),
        ("Size", 0),
        ("Ready", 0),
        ("Color", 1),
        ("Age", 0),
    ]
    (row,) = table["rows"]
    assert row["cells"][:5] == ["t", "o", 5, None, "green"]
    assert row["cells"][5].endswith("s")
    assert row["object"]["kind"] == "PartialObjectMetadata"
    assert table["metadata"]["resourceVersion"]
    _, full = await call(
        http, "GET", BASE, headers={"Accept": KUBECTL_TABLE}, params={"includeObject": "Object"}
    )
    assert full["rows"][0]["object"]["spec"]["color"] == "green"
    _, ns_table = await call(http, "GET", "/api/v1/namespaces", headers={"Accept": KUBECTL_TABLE})
    assert [c["name"] for c in ns_table["columnDefinitions"]] == ["Name", "Status", "Age"]
    assert ns_table["rows"][0]["cells"][:2] == ["default", "Active"]


async def test_error_statuses_use_the_real_texts(http: aiohttp.ClientSession) -> None:
    status, body = await call(http, "GET", f"{BASE}/missing")
    assert (status, body["reason"], body["message"]) == (
        404,
        "NotFound",
        'widgets.example.com "missing" not found',
    )
    assert body["details"] == {"name": "missing", "group": "example.com", "kind": "widgets"}
    await call(http, "POST", BASE, widget("dup"))
    status, body = await call(http, "POST", BASE, widget("dup"))
    assert (status, body["reason"], body["message"]) == (
        409,
        "AlreadyExists",
        'widgets.example.com "dup" already exists',
    )
    bad = widget("bad", size=0, tags=["a", "b", "c", "d"])
    del bad["spec"]["owner"]
    status, body = await call(http, "POST", BASE, bad)
    assert status == 422 and body["reason"] == "Invalid"
    assert body["message"] == (
        'Widget.example.com "bad" is invalid: [spec.owner: Required value, '
        "spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1, "
        "spec.tags: Too many: 4: must have at most 3 items]"
    )
    assert body["details"]["kind"] == "Widget"
    assert [c["field"] for c in body["details"]["causes"]] == [
        "spec.owner",
        "spec.size",
        "spec.tags",
    ]
    assert body["details"]["causes"][0]["reason"] == "FieldValueRequired"
    status, body = await call(
        http, "POST", "/api/v1/namespaces/ghost/configmaps", {"metadata": {"name": "c"}}
    )
    assert (status, body["message"]) == (404, 'namespaces "ghost" not found')
    status, body = await call(http, "GET", "/apis/nothing.io/v1/things")
    assert (status, body["message"]) == (404, "the server could not find the requested resource")
    status, body = await call(
        http, "POST", BASE, {"metadata": {"name": "Bad_Name"}, "spec": {"owner": "o"}}
    )
    assert (
        status == 422
        and 'metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123' in body["message"]
    )


async def test_unknown_fields_strict_warn_and_ignore(http: aiohttp.ClientSession) -> None:
    body = widget("u", bogus=True)
    status, err = await call(http, "POST", BASE, body, params={"fieldValidation": "Strict"})
    assert status == 400 and err["reason"] == "BadRequest"
    assert err["message"].endswith('strict decoding error: unknown field "spec.bogus"')
    async with http.post(BASE, json=body, params={"fieldValidation": "Warn"}) as resp:
        assert resp.status == 201
        assert resp.headers.getall("Warning") == ['299 - "unknown field \\"spec.bogus\\""']
        assert "bogus" not in (await resp.json())["spec"]
    async with http.post(BASE, json=widget("u2", bogus=True)) as resp:
        assert resp.status == 201  # the server's default is Warn
        assert resp.headers.getall("Warning") == ['299 - "unknown field \\"spec.bogus\\""']
    async with http.post(
        BASE, json=widget("u3", bogus=True), params={"fieldValidation": "Ignore"}
    ) as resp:
        assert resp.status == 201 and "Warning" not in resp.headers
    patch = {"spec": {"alsoBogus": 1}}
    status, err = await call(
        http,
        "PATCH",
        f"{BASE}/u",
        patch,
        headers={"Content-Type": "application/merge-patch+json"},
        params={"fieldValidation": "Strict"},
    )
    assert (status, err["message"]) == (
        400,
        'strict decoding error: unknown field "spec.alsoBogus"',
    )


async def test_writes_generation_conflicts_and_noops(http: aiohttp.ClientSession) -> None:
    _, created = await call(http, "POST", BASE, widget("g"))
    rv = created["metadata"]["resourceVersion"]
    merge = {"Content-Type": "application/merge-patch+json"}
    _, same = await call(http, "PATCH", f"{BASE}/g", {"spec": {"size": 3}}, headers=merge)
    assert same["metadata"]["resourceVersion"] == rv  # a no-op write changes nothing
    _, changed = await call(
        http, "PATCH", f"{BASE}/g", {"metadata": {"labels": {"a": "b"}}}, headers=merge
    )
    assert changed["metadata"]["generation"] == 1 and changed["metadata"]["resourceVersion"] != rv
    status, conflict = await call(
        http,
        "PATCH",
        f"{BASE}/g",
        {"metadata": {"resourceVersion": rv}, "spec": {"size": 4}},
        headers=merge,
    )
    assert status == 409 and conflict["reason"] == "Conflict"
    stale = {**created, "spec": {"owner": "x"}}
    status, _ = await call(http, "PUT", f"{BASE}/g", stale)
    assert status == 409
    current = {**changed, "spec": {"owner": "x", "size": 3}}
    status, replaced = await call(http, "PUT", f"{BASE}/g", current)
    assert status == 200 and replaced["metadata"]["generation"] == 2
    no_rv = {**replaced, "metadata": {"name": "g"}}
    status, body = await call(http, "PUT", f"{BASE}/g", no_rv)
    assert (
        status == 422
        and "metadata.resourceVersion: Invalid value: 0: must be specified" in body["message"]
    )
    status, dry = await call(http, "POST", BASE, widget("dry"), params={"dryRun": "All"})
    assert status == 201 and dry["metadata"]["name"] == "dry"
    assert (await call(http, "GET", f"{BASE}/dry"))[0] == 404


async def test_patch_flavours(http: aiohttp.ClientSession) -> None:
    cms = "/api/v1/namespaces/default/configmaps"
    await call(
        http, "POST", cms, {"metadata": {"name": "c", "finalizers": ["a"]}, "data": {"x": "1"}}
    )
    smp = {"Content-Type": "application/strategic-merge-patch+json"}
    _, body = await call(
        http,
        "PATCH",
        f"{cms}/c",
        {"data": {"y": "2"}, "metadata": {"finalizers": ["b"]}},
        headers=smp,
    )
    assert body["data"] == {"x": "1", "y": "2"} and body["metadata"]["finalizers"] == ["a", "b"]
    jp = {"Content-Type": "application/json-patch+json"}
    status, err = await call(
        http, "PATCH", f"{cms}/c", [{"op": "test", "path": "/data/x", "value": "9"}], headers=jp
    )
    assert status == 422 and "test failed" in err["message"]
    apply = {"Content-Type": "application/apply-patch+yaml"}
    text = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: ssa\nspec:\n  owner: me\n"
    status, made = await call(
        http, "PATCH", f"{BASE}/ssa", text, headers=apply, params={"fieldManager": "t"}
    )
    assert status == 201 and made["spec"] == {"owner": "me", "size": 3}
    status, err = await call(http, "PATCH", f"{BASE}/ssa", text, headers=apply)
    assert status == 400 and "fieldManager is required" in err["message"]
    status, err = await call(
        http, "PATCH", f"{BASE}/ssa", "{}", headers={"Content-Type": "text/plain"}
    )
    assert status == 415


async def test_lists_select_and_page(http: aiohttp.ClientSession) -> None:
    for i in range(5):
        body = widget(f"l{i}")
        body["metadata"]["labels"] = {"parity": "even" if i % 2 == 0 else "odd", "n": str(i)}
        await call(http, "POST", BASE, body)
    await call(http, "POST", "/api/v1/namespaces", {"metadata": {"name": "other"}})
    await call(http, "POST", "/apis/example.com/v1/namespaces/other/widgets", widget("elsewhere"))

    async def names(path: str = BASE, **params: str) -> list[str]:
        _, body = await call(http, "GET", path, params=params)
        return [i["metadata"]["name"] for i in body["items"]]

    assert await names(labelSelector="parity=even") == ["l0", "l2", "l4"]
    assert await names(labelSelector="parity in (odd),n notin (3)") == ["l1"]
    assert await names(labelSelector="!parity") == []
    assert await names(labelSelector="parity,n!=0") == ["l1", "l2", "l3", "l4"]
    assert await names(fieldSelector="metadata.name=l3") == ["l3"]
    assert await names(fieldSelector="metadata.name!=l3,metadata.namespace=default") == [
        "l0",
        "l1",
        "l2",
        "l4",
    ]
    assert await names("/apis/example.com/v1/widgets") == [
        "l0",
        "l1",
        "l2",
        "l3",
        "l4",
        "elsewhere",
    ]
    status, err = await call(http, "GET", BASE, params={"fieldSelector": "spec.owner=o"})
    assert status == 400 and err["message"] == "field label not supported: spec.owner"
    _, page = await call(http, "GET", BASE, params={"limit": "2"})
    assert [i["metadata"]["name"] for i in page["items"]] == ["l0", "l1"]
    assert page["metadata"]["remainingItemCount"] == 3
    _, rest = await call(
        http, "GET", BASE, params={"limit": "10", "continue": page["metadata"]["continue"]}
    )
    assert [i["metadata"]["name"] for i in rest["items"]] == ["l2", "l3", "l4"]
    assert "continue" not in rest["metadata"]
    # With a selector, pages are cut from the matches; kube-apiserver leaves
    # remainingItemCount unset (it counts an etcd range, which a selector filters).
    _, page = await call(http, "GET", BASE, params={"limit": "2", "labelSelector": "parity=even"})
    assert [i["metadata"]["name"] for i in page["items"]] == ["l0", "l2"]
    assert "remainingItemCount" not in page["metadata"]
    _, rest = await call(http, "GET", BASE, params={
        "limit": "2", "labelSelector": "parity=even", "continue": page["metadata"]["continue"]})
    assert [i["metadata"]["name"] for i in rest["items"]] == ["l4"]
    assert "continue" not in rest["metadata"]


async def test_tokens_impersonation_and_admission_hooks() -> None:
    seen: list[UserInfo] = []

    async def label_everything(request: AdmissionRequest) -> dict[str, Any] | None:
        assert request.object is not None
        obj = request.object
        return {**obj, "metadata": {**obj["metadata"], "labels": {"admitted": "yes"}}}

    async def refuse_red(request: AdmissionRequest) -> None:
        seen.append(request.user)
        if request.object and request.object.get("spec", {}).get("color") == "red":
            raise AdmissionDenied(
                'admission webhook "colors.example.com" denied the request: no red'
            )

    async with SandboxServer([crd(WIDGET_CRD)], tokens=TOKENS) as server:
        server.mutating_admission.append(label_everything)
        server.validating_admission.append(refuse_red)
        await server.grant("widget-editor", groups=["devs", "qa"], rules=[
            {"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["*"]}])
        async with aiohttp.ClientSession(base_url=server.url) as http:
            status, body = await call(http, "GET", BASE)
            assert (status, body["reason"]) == (401, "Unauthorized")
            status, _ = await call(http, "GET", BASE, headers={"Authorization": "Bearer wrong"})
            assert status == 401
            alice = {"Authorization": "Bearer alice-token"}
            status, made = await call(http, "POST", BASE, widget("w", color="blue"), headers=alice)
            assert status == 201 and made["metadata"]["labels"] == {"admitted": "yes"}
            assert seen[-1].username == "alice" and "devs" in seen[-1].groups
            status, denied = await call(http, "POST", BASE, widget("r", color="red"), headers=alice)
            assert (status, denied["message"]) == (
                400,
                'admission webhook "colors.example.com" denied the request: no red',
            )
            as_bob = {"Authorization": "Bearer alice-token", "Impersonate-User": "bob"}
            status, _ = await call(http, "POST", BASE, widget("x"), headers=as_bob)
            assert status == 403  # impersonation needs the impersonate verb
            root_as_bob = {
                "Authorization": "Bearer root-token",
                "Impersonate-User": "bob",
                "Impersonate-Group": "qa",
            }
            status, _ = await call(http, "POST", BASE, widget("y"), headers=root_as_bob)
            assert status == 201
            assert seen[-1].username == "bob" and "qa" in seen[-1].groups
            assert (
                seen[-1].impersonated_by is not None and seen[-1].impersonated_by.username == "root"
            )


async def test_request_accounting(server: SandboxServer, http: aiohttp.ClientSession) -> None:
    server.stats.reset()
    await call(http, "POST", BASE, widget("s"))
    await call(http, "GET", BASE)
    await call(http, "GET", f"{BASE}/s")
    merge = {"Content-Type": "application/merge-patch+json"}
    await call(http, "PATCH", f"{BASE}/s/status", {"status": {"phase": "Ready"}}, headers=merge)
    await call(http, "PATCH", f"{BASE}/s", {"spec": {"size": 2}}, headers=merge)
    await call(http, "GET", "/apis")
    assert server.stats.count("create", "widgets.example.com") == 1
    assert server.stats.count("list", "widgets.example.com") == 1
    assert server.stats.count("patch", "widgets.example.com/status") == 1
    assert server.stats.write_count(part="status") == 1
    assert server.stats.write_count(part="main") == 2
    _, snap = await call(http, "GET", "/sandbox/stats")
    assert snap["requests"]["get widgets.example.com"] == 1
    assert snap["writes"]["patch widgets.example.com status"] == 1
    assert snap["total_writes"] == 3
    status, before = await call(http, "POST", "/sandbox/stats/reset")
    assert status == 200 and before["total_writes"] == 3
    assert server.stats.snapshot()["total_requests"] == 0


async def test_ten_thousand_objects(server: SandboxServer, http: aiohttp.ClientSession) -> None:
    rt = server.registry.get("example.com/v1", "widgets")
    assert rt is not None
    started = time.monotonic()
    for i in range(10_000):
        await server.api.create(rt, "default", widget(f"bulk-{i:05d}"))
    created = time.monotonic() - started
    started = time.monotonic()
    _, listing = await call(http, "GET", BASE)
    listed = time.monotonic() - started
    assert len(listing["items"]) == 10_000
    started = time.monotonic()
    merge = {"Content-Type": "application/merge-patch+json"}
    for i in range(100):
        status, _ = await call(
            http, "PATCH", f"{BASE}/bulk-{i:05d}", {"spec": {"size": 5}}, headers=merge
        )
        assert status == 200
        status, _ = await call(http, "GET", f"{BASE}/bulk-{9999 - i:05d}")
        assert status == 200
    single = (time.monotonic() - started) / 200
    # generous bounds: they catch O(n) per-request work, not machine speed
    assert created < 20 and listed < 5 and single < 0.02, (created, listed, single)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/apis/coordination.k8s.io/v1/namespaces/default/leases",
            {"metadata": {"name": "leader"}, "spec": {"holderIdentity": "me"}},
        ),
        (
            "/apis/batch/v1/namespaces/default/jobs",
            {
                "metadata": {"name": "j"},
                "spec": {
                    "template": {
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [{"name": "c", "image": "busybox:1"}],
                        }
                    }
                },
            },
        ),
        ("/api/v1/namespaces/default/serviceaccounts", {"metadata": {"name": "sa"}}),
        (
            "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
            {"metadata": {"name": "v"}, "webhooks": []},
        ),
        (
            "/apis/events.k8s.io/v1/namespaces/default/events",
            {"metadata": {"name": "ev"}, "note": "n", "regarding": {"name": "x"}},
        ),
    ],
)
async def test_builtin_kinds_are_stored(
    http: aiohttp.ClientSession, path: str, body: dict[str, Any]
) -> None:
    status, made = await call(http, "POST", path, body)
    assert status == 201, made
    name = body["metadata"]["name"]
    status, got = await call(http, "GET", f"{path}/{name}")
    assert status == 200 and got["metadata"]["uid"] == made["metadata"]["uid"]
    merge = {"Content-Type": "application/merge-patch+json"}
    status, patched = await call(
        http, "PATCH", f"{path}/{name}", {"metadata": {"labels": {"a": "b"}}}, headers=merge
    )
    assert status == 200 and patched["metadata"]["labels"] == {"a": "b"}
    status, _ = await call(http, "DELETE", f"{path}/{name}")
    assert status == 200
    assert (await call(http, "GET", f"{path}/{name}"))[0] == 404
