"""API semantics without HTTP: lifecycle, finalizers, garbage collection, CRDs, watches."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from mltrl_sandbox.api import Api, clone, copy_json
from mltrl_sandbox.builtin import builtin_types
from mltrl_sandbox.errors import ApiError
from mltrl_sandbox.resources import Registry, ResourceType
from mltrl_sandbox.store import Store

CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "things.example.com"},
    "spec": {
        "group": "example.com",
        "names": {"kind": "Thing", "plural": "things"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {"n": {"type": "integer", "maximum": 5}},
                            },
                            "status": {"type": "object", "properties": {"ok": {"type": "boolean"}}},
                        },
                    }
                },
            }
        ],
    },
}


class World:
    def __init__(self, history_limit: int = 100) -> None:
        self.registry = Registry()
        for rt in builtin_types():
            self.registry.add(rt)
        self.store = Store(history_limit)
        self.api = Api(self.registry, self.store)

    def rt(self, group_version: str, plural: str) -> ResourceType:
        found = self.registry.get(group_version, plural)
        assert found is not None, plural
        return found

    @property
    def things(self) -> ResourceType:
        return self.rt("example.com/v1", "things")

    @property
    def configmaps(self) -> ResourceType:
        return self.rt("v1", "configmaps")

    async def setup(self) -> World:
        await self.api.create(self.rt("v1", "namespaces"), None, {"metadata": {"name": "default"}})
        await self.api.create(
            self.rt("apiextensions.k8s.io/v1", "customresourcedefinitions"), None, CRD
        )
        return self

    async def thing(self, name: str, **extra: Any) -> dict[str, Any]:
        body = {"metadata": {"name": name, **extra}, "spec": {"n": 1}, "status": {"ok": True}}
        return (await self.api.create(self.things, "default", body)).object

    def exists(self, rt: ResourceType, name: str, namespace: str | None = "default") -> bool:
        return self.store.get(rt.storage, namespace if rt.namespaced else None, name) is not None


@pytest.fixture
async def world() -> World:
    return await World().setup()


async def settle() -> None:
    """Let the background garbage collector run."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_created_crd_is_served_and_established(world: World) -> None:
    crd = world.api.get(
        world.rt("apiextensions.k8s.io/v1", "customresourcedefinitions"), None, "things.example.com"
    )
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    assert crd["spec"]["names"]["singular"] == "thing"
    assert world.things.kind == "Thing" and world.things.status_subresource


async def test_status_is_a_subresource(world: World) -> None:
    created = await world.thing("t")
    assert "status" not in created  # dropped on create
    patch = b'{"spec": {"n": 2}, "status": {"ok": false}}'
    after = (
        await world.api.patch(world.things, "default", "t", "application/merge-patch+json", patch)
    ).object
    assert after["spec"]["n"] == 2 and "status" not in after
    assert after["metadata"]["generation"] == 2
    status = await world.api.patch(
        world.things, "default", "t", "application/merge-patch+json", patch, subresource="status"
    )
    assert status.object["status"] == {"ok": False} and status.object["spec"]["n"] == 2
    assert status.object["metadata"]["generation"] == 2
    with pytest.raises(ApiError) as caught:
        await world.api.patch(
            world.things,
            "default",
            "t",
            "application/merge-patch+json",
            b'{"status": {"ok": 3}}',
            subresource="status",
        )
    assert caught.value.code == 422


async def test_finalizers_hold_deletion_until_removed(world: World) -> None:
    await world.thing("f", finalizers=["example.com/hold"])
    deleting = await world.api.delete(world.things, "default", "f")
    assert deleting["metadata"]["deletionTimestamp"] and world.exists(world.things, "f")
    assert deleting["metadata"]["generation"] == 2
    again = await world.api.delete(world.things, "default", "f")
    assert again["metadata"]["resourceVersion"] == deleting["metadata"]["resourceVersion"]
    with pytest.raises(ApiError) as caught:
        await world.api.patch(
            world.things,
            "default",
            "f",
            "application/merge-patch+json",
            b'{"metadata": {"finalizers": ["example.com/hold", "example.com/more"]}}',
        )
    assert "no new finalizers can be added" in caught.value.message
    await world.api.patch(
        world.things,
        "default",
        "f",
        "application/merge-patch+json",
        b'{"metadata": {"finalizers": null}}',
    )
    assert not world.exists(world.things, "f")


async def test_garbage_collection_cascades_and_respects_other_owners(world: World) -> None:
    a = await world.thing("a")
    b = await world.thing("b")

    def ref(owner: dict[str, Any]) -> dict[str, Any]:
        m = owner["metadata"]
        return {"apiVersion": "example.com/v1", "kind": "Thing", "name": m["name"], "uid": m["uid"]}

    only_a = (
        await world.api.create(
            world.configmaps,
            "default",
            {"metadata": {"name": "only-a", "ownerReferences": [ref(a)]}},
        )
    ).object
    await world.api.create(
        world.configmaps,
        "default",
        {"metadata": {"name": "both", "ownerReferences": [ref(a), ref(b)]}},
    )
    await world.api.create(
        world.configmaps,
        "default",
        {
            "metadata": {
                "name": "grandchild",
                "ownerReferences": [
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "name": "only-a",
                        "uid": only_a["metadata"]["uid"],
                    }
                ],
            }
        },
    )
    await world.api.delete(world.things, "default", "a")
    await settle()
    assert not world.exists(world.configmaps, "only-a")
    assert not world.exists(world.configmaps, "grandchild")
    assert world.exists(world.configmaps, "both")  # b still owns it
    await world.api.delete(world.things, "default", "b", {"propagationPolicy": "Orphan"})
    await settle()
    both = world.api.get(world.configmaps, "default", "both")
    assert [r["name"] for r in both["metadata"]["ownerReferences"]] == ["a"]


async def test_namespace_deletion_waits_for_finalized_contents(world: World) -> None:
    namespaces = world.rt("v1", "namespaces")
    await world.api.create(namespaces, None, {"metadata": {"name": "team"}})
    await world.api.create(world.configmaps, "team", {"metadata": {"name": "plain"}})
    await world.api.create(
        world.things, "team", {"metadata": {"name": "held", "finalizers": ["x/y"]}}
    )
    terminating = await world.api.delete(namespaces, None, "team")
    assert terminating["status"]["phase"] == "Terminating"
    assert not world.exists(world.configmaps, "plain", "team")
    with pytest.raises(ApiError) as caught:
        await world.api.create(world.configmaps, "team", {"metadata": {"name": "late"}})
    assert caught.value.code == 403 and "is being terminated" in caught.value.message
    await world.api.patch(
        world.things,
        "team",
        "held",
        "application/merge-patch+json",
        b'{"metadata":{"finalizers":[]}}',
    )
    assert not world.exists(namespaces, "team", None)


async def test_deleting_a_crd_removes_its_objects_and_api(world: World) -> None:
    await world.thing("doomed")
    crds = world.rt("apiextensions.k8s.io/v1", "customresourcedefinitions")
    watcher = world.api.watch(world.things, "default", None, None, None)
    await world.api.delete(crds, None, "things.example.com")
    assert world.registry.get("example.com/v1", "things") is None
    assert world.store.list("things.example.com") == []
    events = []
    while (event := watcher.queue.get_nowait()) is not None:
        events.append((event.type, event.object["metadata"]["name"]))
    assert events == [("ADDED", "doomed"), ("DELETED", "doomed")]


async def test_updating_a_crd_changes_validation(world: World) -> None:
    crds = world.rt("apiextensions.k8s.io/v1", "customresourcedefinitions")
    current = world.api.get(crds, None, "things.example.com")
    current["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"][
        "n"
    ]["maximum"] = 50
    await world.api.update(crds, None, "things.example.com", current)
    body = {"metadata": {"name": "big"}, "spec": {"n": 40}}
    assert (await world.api.create(world.things, "default", body)).object["spec"]["n"] == 40


async def test_watch_replays_history_and_expires(world: World) -> None:
    small = await World(history_limit=3).setup()
    rv = small.store.rv
    for i in range(2):
        await small.thing(f"w{i}")
    watcher = small.api.watch(small.things, "default", None, None, str(rv))
    assert [watcher.queue.get_nowait().object["metadata"]["name"] for _ in range(2)] == ["w0", "w1"]
    for i in range(2, 6):
        await small.thing(f"w{i}")
    with pytest.raises(ApiError) as caught:
        small.api.watch(small.things, "default", None, None, str(rv))
    assert caught.value.code == 410 and caught.value.message.startswith(
        f"too old resource version: {rv} ("
    )


async def test_events_have_two_views_of_one_storage(world: World) -> None:
    core = world.rt("v1", "events")
    modern = world.rt("events.k8s.io/v1", "events")
    body = {
        "metadata": {"name": "e"},
        "involvedObject": {"kind": "Thing", "name": "t"},
        "message": "hi",
    }
    await world.api.create(core, "default", body)
    viewed = world.api.get(modern, "default", "e")
    assert viewed["apiVersion"] == "events.k8s.io/v1"
    assert viewed["note"] == "hi" and viewed["regarding"]["name"] == "t"
    await world.api.create(
        modern, "default", {"metadata": {"name": "e2"}, "note": "yo", "regarding": {"name": "u"}}
    )
    assert world.api.get(core, "default", "e2")["message"] == "yo"


async def test_generate_name_and_secret_string_data(world: World) -> None:
    made = await world.api.create(world.things, "default", {"metadata": {"generateName": "thing-"}})
    assert (
        made.object["metadata"]["name"].startswith("thing-")
        and len(made.object["metadata"]["name"]) == 11
    )
    secrets = world.rt("v1", "secrets")
    secret = await world.api.create(
        secrets, "default", {"metadata": {"name": "s"}, "stringData": {"k": "v"}}
    )
    assert secret.object["data"] == {"k": "dg=="} and secret.object["type"] == "Opaque"
    assert "generation" not in secret.object["metadata"]  # like real Secrets
    assert made.object["metadata"]["generation"] == 1
    assert "stringData" not in secret.object


async def test_crd_versions_share_storage(world: World) -> None:
    crds = world.rt("apiextensions.k8s.io/v1", "customresourcedefinitions")
    schema = {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}
    two = {
        "metadata": {"name": "dials.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"kind": "Dial", "plural": "dials"},
            "scope": "Cluster",
            "versions": [
                {"name": "v1beta1", "served": True, "storage": False, "schema": schema},
                {"name": "v1", "served": True, "storage": True, "schema": schema},
                {"name": "v1alpha1", "served": False, "storage": False, "schema": schema},
            ],
        },
    }
    await world.api.create(crds, None, two)
    assert world.registry.groups()["example.com"] == ["v1", "v1beta1"]
    beta = world.rt("example.com/v1beta1", "dials")
    await world.api.create(beta, None, {"metadata": {"name": "d"}, "spec": {"x": 1}})
    viewed = world.api.get(world.rt("example.com/v1", "dials"), None, "d")
    assert viewed["apiVersion"] == "example.com/v1" and viewed["spec"] == {"x": 1}
    invalid = {**two, "metadata": {"name": "wrong.example.com"}}
    with pytest.raises(ApiError) as caught:
        await world.api.create(crds, None, invalid)
    rule = 'must be spec.names.plural+"."+spec.group'
    assert f'metadata.name: Invalid value: "wrong.example.com": {rule}' in caught.value.message


async def test_writes_whose_admission_overlaps_are_applied_one_on_the_other(world: World) -> None:
    """A webhook takes time: two patches admitted at once must not store over each other
    (kube-apiserver's GuaranteedUpdate). A merge patch is applied again on the newer object;
    a JSON patch's `test` of the resourceVersion it read then fails, as on a cluster."""
    thing = await world.thing("t", labels={})
    gate = asyncio.Event()

    async def slow_webhook(request: Any) -> None:
        await gate.wait()  # both writes wait here, each holding the object it read

    world.api.mutating_admission.append(slow_webhook)
    label = "application/merge-patch+json"
    first = asyncio.create_task(world.api.patch(
        world.things, "default", "t", label, b'{"metadata": {"labels": {"a": "1"}}}'))
    second = asyncio.create_task(world.api.patch(
        world.things, "default", "t", label, b'{"metadata": {"labels": {"b": "2"}}}'))
    rv = thing["metadata"]["resourceVersion"]
    guarded = asyncio.create_task(world.api.patch(
        world.things, "default", "t", "application/json-patch+json",
        f'[{{"op": "test", "path": "/metadata/resourceVersion", "value": "{rv}"}},'
        ' {"op": "add", "path": "/metadata/labels/c", "value": "3"}]'.encode()))
    await settle()
    gate.set()
    await asyncio.gather(first, second)
    with pytest.raises(ApiError) as caught:
        await guarded
    assert caught.value.code == 422
    labels = world.api.get(world.things, "default", "t")["metadata"]["labels"]
    assert labels == {"a": "1", "b": "2"}


@pytest.mark.parametrize("value", [
    {"a": 1, "b": [1, 2.5, True, None, "x", {"c": [], "d": {}}], "é": "ü"},
    {"inf": float("inf"), "zero": -0.0},
    {1: "int key", "s": "str"},  # not plain: keys become strings, as JSON makes them
    {"t": (1, [2])},  # a tuple becomes a list
    {"flag": {True: None}},
    [[["deep"]]],
    "text",
    7,
    None,
])
def test_writes_copy_json_as_the_round_trip_does(value: Any) -> None:
    """copy_json is clone (a JSON round trip) made faster for plain JSON: the same result
    in every case, and a copy (changing it leaves the original as it was)."""
    copied = copy_json(value)
    assert json.dumps(copied) == json.dumps(clone(value))
    assert type(copied) is type(clone(value))
    if isinstance(copied, dict):
        before = json.dumps(value)
        copied["new"] = 1
        for child in copied.values():
            if isinstance(child, list):
                child.append("new")
        assert json.dumps(value) == before


async def test_a_paginated_list_is_cut_from_one_snapshot_not_rebuilt_per_page(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kopf lists 500 a page: rebuilding the snapshot for each page made a list of n
    objects cost n**2/500 (issue 17's 50,000). The pages still show the first page's
    snapshot, and a compacted one still answers 410."""
    for n in range(7):
        await world.thing(f"t{n}")
    rebuilt: list[int] = []
    snapshot = world.store.snapshot

    def counted(storage: str, namespace: str | None, rv: int) -> list[dict[str, Any]]:
        rebuilt.append(rv)
        return snapshot(storage, namespace, rv)

    monkeypatch.setattr(world.store, "snapshot", counted)
    page = world.api.list_objects(world.things, "default", limit=2)
    names = [o["metadata"]["name"] for o in page.items]
    await world.api.delete(world.things, "default", "t5")  # after the first page
    while page.continue_token:
        page = world.api.list_objects(world.things, "default", limit=2,
                                      continue_token=page.continue_token)
        names += [o["metadata"]["name"] for o in page.items]
    assert names == [f"t{n}" for n in range(7)]  # t5 too: the first page's snapshot
    assert rebuilt == []
    # A listing the server no longer keeps is rebuilt once from history, then kept.
    fresh = Api(world.registry, world.store)
    first = world.api.list_objects(world.things, "default", limit=2)
    second = fresh.list_objects(world.things, "default", limit=2,
                                continue_token=first.continue_token)
    third = fresh.list_objects(world.things, "default", limit=2,
                               continue_token=second.continue_token)
    assert [o["metadata"]["name"] for o in second.items + third.items] == [
        "t2", "t3", "t4", "t6"]
    assert (second.remaining, third.remaining, third.continue_token) == (2, None, "")
    assert len(rebuilt) == 1


async def test_a_continued_list_past_compaction_is_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    small = await World(history_limit=3).setup()
    for n in range(4):
        await small.thing(f"t{n}")
    page = small.api.list_objects(small.things, "default", limit=2)
    for n in range(4, 8):  # more writes than the history keeps
        await small.thing(f"t{n}")
    with pytest.raises(ApiError) as gone:
        small.api.list_objects(small.things, "default", limit=2,
                               continue_token=page.continue_token)
    assert gone.value.code == 410
