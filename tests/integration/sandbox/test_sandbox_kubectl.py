"""The real kubectl against the sandbox, used the way a person would use it."""

from __future__ import annotations

import base64
import itertools
import json
from pathlib import Path

import pytest
import yaml
from conftest import WIDGET_CRD, Kubectl, eventually

from mltrl_sandbox.server import SandboxThread

pytestmark = pytest.mark.integration

_names = itertools.count()


@pytest.fixture(scope="module")
def widgets(kubectl: Kubectl) -> str:
    out = kubectl("apply", "-f", "-", stdin=WIDGET_CRD)
    assert "customresourcedefinition.apiextensions.k8s.io/widgets.example.com created" in out
    return "widgets.example.com"


@pytest.fixture
def ns(kubectl: Kubectl) -> str:
    name = f"t{next(_names)}"
    assert kubectl("create", "namespace", name).strip() == f"namespace/{name} created"
    return name


def widget(name: str, ns: str, **spec: object) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"owner": "team-a", **spec},
        }
    )


def test_applied_crd_is_served_with_printer_columns(
    kubectl: Kubectl, widgets: str, ns: str
) -> None:
    assert kubectl("apply", "-f", "-", stdin=widget("w1", ns, color="red")).strip() == (
        "widget.example.com/w1 created"
    )
    header, row = kubectl("get", "wdg", "-n", ns).splitlines()
    assert header.split() == ["NAME", "OWNER", "SIZE", "READY", "AGE"]
    assert row.split()[:3] == ["w1", "team-a", "3"]  # size defaulted from the schema
    wide_header = kubectl("get", "wdg", "-n", ns, "-o", "wide").splitlines()[0]
    assert wide_header.split() == ["NAME", "OWNER", "SIZE", "READY", "COLOR", "AGE"]
    assert kubectl("get", "widgets", "-n", ns, "-o", "name").strip() == "widget.example.com/w1"
    listed = json.loads(kubectl("get", "widget", "-n", ns, "-o", "json"))
    assert listed["items"][0]["spec"] == {"owner": "team-a", "color": "red", "size": 3}
    assert listed["items"][0]["metadata"]["generation"] == 1
    assert "w1" in kubectl("get", "gadgets", "-n", ns)  # category from discovery
    # applying again with a change is a patch, seen as "configured"
    out = kubectl("apply", "-f", "-", stdin=widget("w1", ns, color="blue"))
    assert out.strip() == "widget.example.com/w1 configured"
    assert (
        kubectl("get", "wdg", "w1", "-n", ns, "-o", "jsonpath={.spec.color} {.metadata.generation}")
        == "blue 2"
    )


def test_invalid_object_is_refused_naming_the_fields(
    kubectl: Kubectl, widgets: str, ns: str
) -> None:
    bad = yaml.safe_dump(
        {
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "metadata": {"name": "bad", "namespace": ns},
            "spec": {"size": 12, "color": "purple"},
        }
    )
    err = kubectl.fails("apply", "-f", "-", stdin=bad)
    assert 'The Widget "bad" is invalid' in err
    assert "spec.owner: Required value" in err
    assert (
        "spec.size: Invalid value: 12: spec.size in body should be less than or equal to 9" in err
    )
    assert (
        'spec.color: Unsupported value: "purple": supported values: "red", "green", "blue"' in err
    )
    assert 'widgets.example.com "bad" not found' in kubectl.fails("get", "wdg", "bad", "-n", ns)


def test_unknown_fields_are_refused_under_strict_validation(
    kubectl: Kubectl, widgets: str, ns: str
) -> None:
    bogus = widget("bogus", ns, bogus=1)
    err = kubectl.fails("apply", "-f", "-", stdin=bogus)
    assert 'strict decoding error: unknown field "spec.bogus"' in err
    # without validation the field is pruned silently, as on a real server
    kubectl("apply", "--validate=false", "-f", "-", stdin=bogus)
    spec = json.loads(kubectl("get", "wdg", "bogus", "-n", ns, "-o", "jsonpath={.spec}"))
    assert spec == {"owner": "team-a", "size": 3}


def test_stale_replace_gets_a_conflict(kubectl: Kubectl, widgets: str, ns: str) -> None:
    kubectl("apply", "-f", "-", stdin=widget("w", ns))
    stale = kubectl("get", "wdg", "w", "-n", ns, "-o", "yaml")
    kubectl("patch", "wdg", "w", "-n", ns, "--type=merge", "-p", '{"spec":{"size":5}}')
    err = kubectl.fails("replace", "-f", "-", stdin=stale)
    assert (
        'Operation cannot be fulfilled on widgets.example.com "w": the object has been modified; '
        "please apply your changes to the latest version and try again"
    ) in err
    fresh = kubectl("get", "wdg", "w", "-n", ns, "-o", "yaml").replace("size: 5", "size: 6")
    assert "replaced" in kubectl("replace", "-f", "-", stdin=fresh)
    assert kubectl("get", "wdg", "w", "-n", ns, "-o", "jsonpath={.spec.size}") == "6"


def test_explain_prints_field_descriptions(kubectl: Kubectl, widgets: str) -> None:
    out = kubectl("explain", "wdg.spec.owner")
    assert "FIELD: owner <string>" in out
    assert "The team that owns the widget." in out
    assert "Desired state of the widget." in kubectl("explain", "widgets.spec")


def test_patches_status_subresource_and_labels(kubectl: Kubectl, widgets: str, ns: str) -> None:
    kubectl("apply", "-f", "-", stdin=widget("p", ns))
    kubectl(
        "patch",
        "wdg",
        "p",
        "-n",
        ns,
        "--type=merge",
        "-p",
        '{"spec":{"size":4},"status":{"phase":"Ready"}}',
    )
    got = json.loads(kubectl("get", "wdg", "p", "-n", ns, "-o", "json"))
    assert got["spec"]["size"] == 4
    assert "status" not in got  # the main resource never writes status
    kubectl(
        "patch",
        "wdg",
        "p",
        "-n",
        ns,
        "--type=json",
        "-p",
        '[{"op":"add","path":"/spec/tags","value":["a","b"]}]',
    )
    kubectl(
        "patch",
        "wdg",
        "p",
        "-n",
        ns,
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"status":{"conditions":[{"type":"Ready","status":"True"}]}, "spec":{"size":9}}',
    )
    got = json.loads(kubectl("get", "wdg", "p", "-n", ns, "-o", "json"))
    assert got["spec"] == {
        "owner": "team-a",
        "size": 4,
        "tags": ["a", "b"],
    }  # status writes skip spec
    assert got["status"]["conditions"] == [{"type": "Ready", "status": "True"}]
    assert got["metadata"]["generation"] == 3  # two spec changes, no bump for status
    assert kubectl("get", "wdg", "p", "-n", ns).splitlines()[1].split()[3] == "True"
    err = kubectl.fails(
        "patch",
        "wdg",
        "p",
        "-n",
        ns,
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"status":{"phase":"Exploded"}}',
    )
    assert 'status.phase: Unsupported value: "Exploded"' in err
    assert "labeled" in kubectl("label", "wdg", "p", "-n", ns, "tier=gold")
    assert (
        kubectl("get", "wdg", "-n", ns, "-l", "tier=gold", "-o", "name").strip()
        == "widget.example.com/p"
    )
    assert kubectl("get", "wdg", "-n", ns, "-l", "tier!=gold", "-o", "name").strip() == ""


def test_delete_waits_for_finalizers(kubectl: Kubectl, widgets: str, ns: str) -> None:
    body = yaml.safe_load(widget("f", ns))
    body["metadata"]["finalizers"] = ["example.com/cleanup"]
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump(body))
    kubectl("delete", "wdg", "f", "-n", ns, "--wait=false")
    assert kubectl("get", "wdg", "f", "-n", ns, "-o", "jsonpath={.metadata.deletionTimestamp}")
    kubectl(
        "patch",
        "wdg",
        "f",
        "-n",
        ns,
        "--type=json",
        "-p",
        '[{"op":"remove","path":"/metadata/finalizers"}]',
    )
    assert 'widgets.example.com "f" not found' in kubectl.fails("get", "wdg", "f", "-n", ns)


def test_owner_references_are_garbage_collected(kubectl: Kubectl, widgets: str, ns: str) -> None:
    kubectl("apply", "-f", "-", stdin=widget("owner", ns))
    uid = kubectl("get", "wdg", "owner", "-n", ns, "-o", "jsonpath={.metadata.uid}")
    child = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "child",
            "namespace": ns,
            "ownerReferences": [
                {"apiVersion": "example.com/v1", "kind": "Widget", "name": "owner", "uid": uid}
            ],
        },
    }
    grandchild = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "grandchild", "namespace": ns},
    }
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump(child))
    child_uid = kubectl("get", "cm", "child", "-n", ns, "-o", "jsonpath={.metadata.uid}")
    grandchild["metadata"]["ownerReferences"] = [  # type: ignore[index]
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "child", "uid": child_uid}
    ]
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump(grandchild))
    kubectl("delete", "wdg", "owner", "-n", ns)
    eventually(
        lambda: kubectl.run("get", "secret", "grandchild", "-n", ns, check=False).returncode != 0
    )
    assert 'configmaps "child" not found' in kubectl.fails("get", "cm", "child", "-n", ns)


def test_namespaces_hold_and_delete_their_objects(kubectl: Kubectl, widgets: str) -> None:
    err = kubectl.fails("create", "configmap", "c", "-n", "nowhere", "--from-literal=a=1")
    assert 'namespaces "nowhere" not found' in err
    kubectl("create", "namespace", "doomed")
    kubectl(
        "create",
        "configmap",
        "settings",
        "-n",
        "doomed",
        "--from-literal=a=1",
        "--from-literal=b=2",
    )
    kubectl(
        "create", "secret", "generic", "creds", "-n", "doomed", "--from-literal=password=hunter2"
    )
    kubectl("apply", "-f", "-", stdin=widget("w", "doomed"))
    assert kubectl("get", "cm", "settings", "-n", "doomed").splitlines()[1].split()[:2] == [
        "settings",
        "2",
    ]
    encoded = kubectl("get", "secret", "creds", "-n", "doomed", "-o", "jsonpath={.data.password}")
    assert base64.b64decode(encoded) == b"hunter2"
    assert kubectl("get", "ns", "doomed").splitlines()[1].split()[:2] == ["doomed", "Active"]
    kubectl("delete", "namespace", "doomed", "--timeout=20s")
    assert 'namespaces "doomed" not found' in kubectl.fails("get", "ns", "doomed")
    assert "No resources found" in kubectl.run("get", "cm,secret,wdg", "-n", "doomed").stderr


def test_events_are_listed(kubectl: Kubectl, ns: str) -> None:
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "e1", "namespace": ns},
        "involvedObject": {"kind": "Widget", "name": "w1", "namespace": ns},
        "reason": "Promoted",
        "message": "level 4 reached",
        "type": "Normal",
    }
    kubectl("create", "-f", "-", stdin=yaml.safe_dump(event))
    header, row = kubectl("get", "events", "-n", ns).splitlines()
    assert header.split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert row.split()[1:] == ["Normal", "Promoted", "widget/w1", "level", "4", "reached"]
    viewed = json.loads(kubectl("get", "events.v1.events.k8s.io", "-n", ns, "-o", "json"))
    assert (
        viewed["items"][0]["note"] == "level 4 reached"
    )  # the events.k8s.io view of the same event


def test_get_watch_sees_changes_in_order(kubectl: Kubectl, widgets: str, ns: str) -> None:
    kubectl("apply", "-f", "-", stdin=widget("a", ns))
    watch = kubectl.popen(
        "get", "wdg", "-n", ns, "-w", "--output-watch-events", "--request-timeout=30s"
    )
    try:
        first = watch.read_until(lambda line: " a " in f" {line} ")
        assert first[0].split()[:2] == ["EVENT", "NAME"]
        kubectl("patch", "wdg", "a", "-n", ns, "--type=merge", "-p", '{"spec":{"size":8}}')
        kubectl("apply", "-f", "-", stdin=widget("b", ns))
        kubectl("delete", "wdg", "a", "-n", ns)
        seen = watch.read_until(lambda line: line.startswith("DELETED"))
        events = [(line.split()[0], line.split()[1], line.split()[3]) for line in seen]
        assert events == [("MODIFIED", "a", "8"), ("ADDED", "b", "3"), ("DELETED", "a", "8")]
    finally:
        watch.stop()


def test_server_side_apply(kubectl: Kubectl, widgets: str, ns: str) -> None:
    out = kubectl("apply", "--server-side", "-f", "-", stdin=widget("ssa", ns, size=2))
    assert out.strip() == "widget.example.com/ssa serverside-applied"
    kubectl("apply", "--server-side", "-f", "-", stdin=widget("ssa", ns, size=7))
    assert kubectl("get", "wdg", "ssa", "-n", ns, "-o", "jsonpath={.spec.size}") == "7"


def test_cluster_scoped_custom_resources(kubectl: Kubectl) -> None:
    gizmo = {
        "apiVersion": "example.com/v1",
        "kind": "Gizmo",
        "metadata": {"name": "g1"},
        "spec": {},
    }
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump(gizmo))
    assert kubectl("get", "gizmo", "g1", "-o", "jsonpath={.spec.level}") == "1"
    assert kubectl("get", "gizmos").splitlines()[0].split() == ["NAME", "AGE"]


def test_bundled_inference_service_columns(kubectl: Kubectl, ns: str) -> None:
    isvc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "fraud", "namespace": ns},
        "spec": {
            "predictor": {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": "s3://m"}}
        },
    }
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump(isvc))
    status = {
        "status": {
            "url": "http://fraud.example.com",
            "conditions": [
                {"type": "PredictorReady", "status": "True"},
                {"type": "Ready", "status": "True"},
            ],
            "components": {
                "predictor": {
                    "traffic": [
                        {"tag": "prev", "percent": 10, "revisionName": "fraud-00001"},
                        {"latestRevision": True, "percent": 90, "revisionName": "fraud-00002"},
                    ]
                }
            },
        }
    }
    kubectl(
        "patch",
        "isvc",
        "fraud",
        "-n",
        ns,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(status),
    )
    header, row = kubectl("get", "isvc", "-n", ns).splitlines()
    assert header.split() == [
        "NAME",
        "URL",
        "READY",
        "PREV",
        "LATEST",
        "PREVROLLEDOUTREVISION",
        "LATESTREADYREVISION",
        "AGE",
    ]
    assert row.split()[:7] == [
        "fraud",
        "http://fraud.example.com",
        "True",
        "10",
        "90",
        "fraud-00001",
        "fraud-00002",
    ]
    preserved = json.loads(
        kubectl("get", "isvc", "fraud", "-n", ns, "-o", "jsonpath={.spec.predictor}")
    )
    assert preserved["model"]["storageUri"] == "s3://m"


def test_project_crds_give_the_real_servers_texts(kubectl: Kubectl, ns: str) -> None:
    tech = {
        "apiVersion": "mltrl.dev/v1alpha1",
        "kind": "MLTechnology",
        "metadata": {"name": "x", "namespace": ns},
        "spec": {"owner": "alice", "targetLevel": 12},
    }
    err = kubectl.fails("apply", "-f", "-", stdin=yaml.safe_dump(tech))
    expected = "spec.targetLevel in body should be less than or equal to 9"
    assert f"spec.targetLevel: Invalid value: 12: {expected}" in err
    assert 'The MLTechnology "x" is invalid' in err
    del tech["spec"]["owner"]  # type: ignore[attr-defined]
    tech["spec"]["targetLevel"] = 5  # type: ignore[index]
    assert "spec.owner: Required value" in kubectl.fails(
        "apply", "-f", "-", stdin=yaml.safe_dump(tech)
    )
    assert "Who is accountable" in kubectl("explain", "mltech.spec.owner")
    assert 'mltechnologies.mltrl.dev "nope" not found' in kubectl.fails(
        "get", "mltech", "nope", "-n", ns
    )


def test_identity_and_impersonation(kubectl: Kubectl) -> None:
    lines = kubectl("auth", "whoami").splitlines()
    assert lines[1].split() == ["Username", "admin"]
    lines = kubectl("auth", "whoami", "--as=bob", "--as-group=qa").splitlines()
    assert lines[1].split() == ["Username", "bob"]
    assert lines[2].split() == ["Groups", "[qa", "system:authenticated]"]
    assert kubectl("auth", "can-i", "delete", "widgets").strip() == "yes"
    # RBAC: bob has no binding, so he may do nothing (kubectl exits 1 for "no")
    answer = kubectl.run("auth", "can-i", "delete", "widgets", "--as=bob", check=False)
    assert (answer.returncode, answer.stdout.strip()) == (1, "no")


def test_tokens_are_checked(tmp_path: Path) -> None:
    tokens = {"good": ("carol", ["devs"])}
    with SandboxThread(
        [], tokens=tokens, tls=True
    ) as sandbox:  # kubectl sends tokens over https only
        assert sandbox.url.startswith("https://127.0.0.1:")
        carol = Kubectl(
            sandbox.kubeconfig(tmp_path / "carol", token="good", user="carol"), tmp_path / "c1"
        )
        assert carol("auth", "whoami").splitlines()[1].split() == ["Username", "carol"]
        mallory = Kubectl(sandbox.kubeconfig(tmp_path / "mallory", token="bad"), tmp_path / "c2")
        err = mallory.fails("get", "namespaces")
        assert "You must be logged in to the server" in err
        err = carol.fails("get", "namespaces", "--as=admin")
        assert "Error from server (Forbidden)" in err  # carol may not impersonate
