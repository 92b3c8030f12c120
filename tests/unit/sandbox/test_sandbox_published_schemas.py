"""Published schemas, field ownership, strategies and body decoding, without a server."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mltrl_sandbox import fieldmanager, jsonbody, kubeschemas, schema, strategies
from mltrl_sandbox.builtin import builtin_types
from mltrl_sandbox.patch import strategic_merge
from mltrl_sandbox.resources import ResourceType
from mltrl_sandbox.store import Store, TooOld, Watcher

TYPES = {rt.group_resource: rt for rt in builtin_types()}


def _rt(name: str) -> ResourceType:
    return TYPES[name]


def test_the_newest_published_version_is_used_in_openapi_form() -> None:
    assert kubeschemas.kubernetes_version() == "v1.37.0"
    pod_spec = kubeschemas.definition("io.k8s.api.core.v1.PodSpec")
    assert pod_spec is not None
    containers = pod_spec["properties"]["containers"]
    assert containers["type"] == "array"  # not ["array", "null"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    int_or_string = kubeschemas.definition("io.k8s.apimachinery.pkg.util.intstr.IntOrString")
    assert int_or_string is not None and int_or_string["x-kubernetes-int-or-string"] is True
    assert (
        kubeschemas.definition_name("apps", "v1", "Deployment") == "io.k8s.api.apps.v1.Deployment"
    )


def test_every_served_built_in_kind_has_a_published_schema() -> None:
    for rt in TYPES.values():
        published = kubeschemas.definition_name(rt.group, rt.version, rt.kind)
        assert published is not None, rt.group_resource
        if rt.virtual is None:  # access reviews are answered, never validated or stored
            assert rt.value_schema() is not None, rt.group_resource


def test_a_pod_is_pruned_and_validated_against_the_published_schema() -> None:
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "labels": None},
        "spec": {
            "containers": [{"image": "x", "bogus": 1, "ports": [{"containerPort": "80"}]}],
            "nodeName": None,
        },
    }
    rt = _rt("pods")
    unknown = schema.prune(pod, rt.value_schema())
    assert unknown == ["spec.containers[0].bogus"]
    assert "labels" not in pod["metadata"] and "nodeName" not in pod["spec"]
    paths = {e.field for e in schema.validate(pod, rt.value_schema())}
    assert paths == {"spec.containers[0].name", "spec.containers[0].ports[0].containerPort"}


def test_int32_fields_refuse_values_beyond_their_range() -> None:
    service = {"spec": {"ports": [{"port": 2**31}]}}
    errors = schema.validate(service, _rt("services").value_schema())
    assert [e.field for e in errors] == ["spec.ports[0].port"]


def test_job_defaults_then_refuses_restart_always() -> None:
    pod_spec = {"containers": [{"name": "c"}]}
    job: dict[str, Any] = {"metadata": {"name": "j"}, "spec": {"template": {"spec": pod_spec}}}
    strategies.prepare(_rt("jobs.batch"), job, None, "")
    assert job["spec"]["backoffLimit"] == 6 and job["spec"]["completions"] == 1
    (error,) = strategies.validation_errors(_rt("jobs.batch"), job, None)
    assert error.field == "spec.template.spec.restartPolicy" and error.type == "NotSupported"


def test_strategic_merge_follows_patch_strategies() -> None:
    rt = _rt("services")
    live = {"spec": {"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 443}]}}
    patch = {"spec": {"ports": [{"port": 443, "name": "c"}]}}
    patched = strategic_merge(copy.deepcopy(live), patch, None, rt.value_schema())
    assert patched["spec"]["ports"] == [{"name": "a", "port": 80}, {"name": "c", "port": 443}]


def test_apply_owns_removes_and_conflicts() -> None:
    rt = _rt("configmaps")
    live: dict[str, Any] = {"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}}
    live["metadata"]["managedFields"] = [
        fieldmanager.apply_entry(rt, "ci", {("f:data", "f:a"), ("f:data", "f:b")})
    ]
    edited = copy.deepcopy(live)
    edited["data"]["a"] = "x"
    edited["metadata"]["managedFields"] = fieldmanager.updated(rt, live, edited, "human")
    owners = {e["manager"]: e["fieldsV1"] for e in edited["metadata"]["managedFields"]}
    assert owners == {"ci": {"f:data": {"f:b": {}}}, "human": {"f:data": {"f:a": {}}}}

    config = {"metadata": {"name": "c"}, "data": {"a": "1"}}
    with pytest.raises(fieldmanager.Conflicts, match=r'conflict with "human" using v1: \.data\.a'):
        fieldmanager.apply(rt, edited, config, "ci", force=False)
    merged, managed = fieldmanager.apply(rt, edited, config, "ci", force=True)
    assert merged["data"] == {"a": "1"}  # b: applied before, not now, owned by nobody else
    assert [(e["manager"], e["operation"]) for e in managed] == [("ci", "Apply")]


def test_an_update_keeps_the_trees_of_fields_it_did_not_move() -> None:
    """managedFields as if every entry were rebuilt from its fields: an entry whose fields
    stay as they were keeps its tree (the same JSON), and a tree a client wrote in another
    order or form is written afresh, as before."""
    rt = _rt("configmaps")
    live: dict[str, Any] = {"metadata": {"name": "c"}, "data": {"a": "1", "b": "2", "c": "3"}}
    live["metadata"]["managedFields"] = fieldmanager.updated(rt, None, live, "ci")
    ci = live["metadata"]["managedFields"][0]
    edited = copy.deepcopy(live)
    edited["data"]["a"] = "x"
    edited["metadata"]["managedFields"] = fieldmanager.updated(rt, live, edited, "ci")
    again = copy.deepcopy(edited)
    again["data"]["b"] = "y"
    managed = fieldmanager.updated(rt, edited, again, "human")
    trees = {e["manager"]: e["fieldsV1"] for e in managed}
    assert trees == {"ci": {"f:data": {"f:a": {}, "f:c": {}}}, "human": {"f:data": {"f:b": {}}}}
    assert edited["metadata"]["managedFields"][0]["fieldsV1"] is ci["fieldsV1"]  # kept
    assert list(trees["ci"]["f:data"]) == ["f:a", "f:c"]

    # written by a client: keys out of order, a leaf that is not {}
    for odd in ({"f:data": {"f:c": {}, "f:b": {}, "f:a": {}}},
                {"f:data": {"f:a": {}, "f:b": None, "f:c": {}}}):
        client = copy.deepcopy(live)
        client["metadata"]["managedFields"] = [{**ci, "fieldsV1": odd}]
        changed = copy.deepcopy(client)
        changed["data"]["b"] = "z"
        [kept, human] = fieldmanager.updated(rt, client, changed, "human")
        assert kept["fieldsV1"] == {"f:data": {"f:a": {}, "f:c": {}}}
        assert list(kept["fieldsV1"]["f:data"]) == ["f:a", "f:c"]
        assert human["fieldsV1"] == {"f:data": {"f:b": {}}}
        unmoved = copy.deepcopy(client)
        unmoved["metadata"]["labels"] = {"x": "y"}
        [rebuilt, _] = fieldmanager.updated(rt, client, unmoved, "human")
        assert list(rebuilt["fieldsV1"]["f:data"]) == ["f:a", "f:b", "f:c"]
        assert rebuilt["fieldsV1"]["f:data"]["f:b"] == {}


def test_bodies_refuse_what_go_refuses() -> None:
    for text in ('{"a": NaN}', '{"a": Infinity}', '{"a": 18446744073709551616}'):
        with pytest.raises(jsonbody.BodyError):
            jsonbody.loads(text)
    assert jsonbody.loads('{"a": 9223372036854775807, "b": 1.5}') == {
        "a": 9223372036854775807,
        "b": 1.5,
    }


def test_history_older_than_the_compaction_window_is_gone() -> None:
    now = [0.0]
    store = Store(compaction_seconds=300, clock=lambda: now[0])
    first = store.put("configmaps", {"metadata": {"name": "a", "namespace": "n"}}, None)
    since = int(first["metadata"]["resourceVersion"])
    store.put("configmaps", {"metadata": {"name": "b", "namespace": "n"}}, None)
    store.subscribe("configmaps", Watcher(lambda _: True), since)  # within the window
    assert [o["metadata"]["name"] for o in store.snapshot("configmaps", None, since)] == ["a"]
    now[0] = 301.0
    with pytest.raises(TooOld):
        store.subscribe("configmaps", Watcher(lambda _: True), since)
    with pytest.raises(TooOld):
        store.snapshot("configmaps", None, since)
