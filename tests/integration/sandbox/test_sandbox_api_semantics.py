"""API semantics kube-apiserver has and clients rely on, each tried with the real kubectl."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from conftest import WIDGET_CRD, Kubectl

from mltrl_sandbox.server import SandboxThread

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", autouse=True)
def widgets(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", stdin=WIDGET_CRD)
    kubectl("wait", "--for=condition=Established", "crd/widgets.example.com")


def _yaml(doc: dict[str, Any]) -> str:
    return json.dumps(doc)  # JSON is YAML; PyYAML would leave a string "y" unquoted


def _get(kubectl: Kubectl, *args: str) -> Any:
    return json.loads(kubectl("get", *args, "-o", "json", "--show-managed-fields"))


def _managers(obj: dict[str, Any]) -> dict[tuple[str, str], Any]:
    return {(e["manager"], e["operation"]): e["fieldsV1"] for e in obj["metadata"]["managedFields"]}


def _raw(kubectl: Kubectl, verb: str, path: str, body: str, tmp_path: Path) -> str:
    """`kubectl create|replace --raw`: the bytes go to the server exactly as written."""
    file = tmp_path / "body.json"
    file.write_text(body)
    done = kubectl.run(verb, "--raw", path, "-f", str(file), check=False)
    return done.stdout + done.stderr


# server-side apply


DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "ssa", "labels": {"team": "a"}},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "ssa"}},
        "template": {
            "metadata": {"labels": {"app": "ssa"}},
            "spec": {
                "containers": [
                    {"name": "web", "image": "nginx:1.27", "env": [{"name": "A", "value": "1"}]},
                    {"name": "sidecar", "image": "busybox:1"},
                ]
            },
        },
    },
}


def test_server_side_apply_records_ownership_and_removes_what_is_no_longer_applied(
    kubectl: Kubectl,
) -> None:
    kubectl("apply", "--server-side", "--field-manager=ci", "-f", "-", stdin=_yaml(DEPLOYMENT))
    shown = _get(kubectl, "deployment", "ssa")
    owned = _managers(shown)[("ci", "Apply")]
    containers = owned["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert set(containers) == {'k:{"name":"sidecar"}', 'k:{"name":"web"}'}
    assert "f:replicas" in owned["f:spec"]
    assert "f:progressDeadlineSeconds" not in owned["f:spec"]  # defaults are nobody's

    # The next apply leaves out the sidecar, the env and the label: they go.
    smaller = json.loads(json.dumps(DEPLOYMENT))
    del smaller["metadata"]["labels"]
    smaller["spec"]["template"]["spec"]["containers"] = [{"name": "web", "image": "nginx:1.28"}]
    kubectl("apply", "--server-side", "--field-manager=ci", "-f", "-", stdin=_yaml(smaller))
    shown = _get(kubectl, "deployment", "ssa")
    (container,) = shown["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "nginx:1.28" and "env" not in container
    assert "labels" not in shown["metadata"]
    assert shown["spec"]["progressDeadlineSeconds"] == 600  # kept: not the applier's


def test_server_side_apply_conflicts_with_another_manager_until_forced(kubectl: Kubectl) -> None:
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owned"},
              "data": {"a": "1", "b": "2"}}  # fmt: skip
    kubectl("apply", "--server-side", "--field-manager=ci", "-f", "-", stdin=_yaml(config))
    kubectl("patch", "configmap", "owned", "-p", '{"data": {"a": "hand-edited"}}')
    shown = _get(kubectl, "configmap", "owned")
    assert _managers(shown)[("kubectl-patch", "Update")] == {"f:data": {"f:a": {}}}

    error = kubectl.fails(
        "apply", "--server-side", "--field-manager=ci", "-f", "-", stdin=_yaml(config)
    )
    assert 'Apply failed with 1 conflict: conflict with "kubectl-patch" using v1: .data.a' in error
    assert kubectl("get", "configmap", "owned", "-o", "jsonpath={.data.a}") == "hand-edited"

    # Applying the value the other manager set is no conflict: the field is shared.
    same = {**config, "data": {"a": "hand-edited", "b": "2"}}
    kubectl("apply", "--server-side", "--field-manager=ci", "-f", "-", stdin=_yaml(same))

    kubectl(
        "apply", "--server-side", "--field-manager=ci", "--force-conflicts", "-f", "-",
        stdin=_yaml(config),
    )  # fmt: skip
    shown = _get(kubectl, "configmap", "owned")
    assert shown["data"] == {"a": "1", "b": "2"}
    assert ("kubectl-patch", "Update") not in _managers(shown)


def test_server_side_apply_on_a_custom_resource(kubectl: Kubectl) -> None:
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "applied"},
              "spec": {"owner": "team-a", "tags": ["x", "y"], "color": "red"}}  # fmt: skip
    kubectl("apply", "--server-side", "--field-manager=ci", "-f", "-", stdin=_yaml(widget))
    kubectl("patch", "widget", "applied", "--type=merge", "-p", '{"spec": {"size": 5}}')
    widget["spec"].pop("color")
    kubectl("apply", "--server-side", "--field-manager=ci", "-f", "-", stdin=_yaml(widget))
    spec = _get(kubectl, "widget", "applied")["spec"]
    assert spec == {"owner": "team-a", "tags": ["x", "y"], "size": 5}


# patches


def test_strategic_merge_is_refused_for_custom_resources(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", stdin=_yaml({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "smp"}, "spec": {"owner": "o"}}))  # fmt: skip
    error = kubectl.fails("patch", "widget", "smp", "-p", '{"spec": {"size": 4}}')
    assert "UnsupportedMediaType" in error or "unknown format" in error
    kubectl("patch", "widget", "smp", "--type=merge", "-p", '{"spec": {"size": 4}}')


def test_strategic_merge_uses_the_schemas_merge_keys(kubectl: Kubectl) -> None:
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ports"},
               "spec": {"ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}],
                        "selector": {"app": "x"}}}  # fmt: skip
    kubectl("apply", "-f", "-", stdin=_yaml(service))
    # Service ports merge by `port` (x-kubernetes-patch-merge-key), not by name.
    kubectl("patch", "service", "ports", "-p",
            '{"spec": {"ports": [{"port": 443, "name": "tls", "targetPort": 8443}]}}')  # fmt: skip
    ports = _get(kubectl, "service", "ports")["spec"]["ports"]
    assert [(p["port"], p["name"], p["targetPort"]) for p in ports] == [
        (80, "http", 80),
        (443, "tls", 8443),
    ]
    # A list without a patch strategy (a container's args) is replaced, not merged.
    deployment = json.loads(json.dumps(DEPLOYMENT))
    deployment["metadata"]["name"] = "smp-args"
    deployment["spec"]["template"]["spec"]["containers"][0]["args"] = ["a", "b"]
    kubectl("apply", "-f", "-", stdin=_yaml(deployment))
    kubectl("patch", "deployment", "smp-args", "-p", json.dumps({"spec": {"template": {"spec": {
        "containers": [{"name": "web", "args": ["c"]}]}}}}))  # fmt: skip
    containers = _get(kubectl, "deployment", "smp-args")["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c.get("args")) for c in containers] == [("web", ["c"]), ("sidecar", None)]


# preconditions and deletion


def test_an_update_carrying_another_objects_uid_is_refused(kubectl: Kubectl) -> None:
    kubectl("create", "configmap", "reborn", "--from-literal=v=1")
    first = _get(kubectl, "configmap", "reborn")
    kubectl("delete", "configmap", "reborn")
    kubectl("create", "configmap", "reborn", "--from-literal=v=2")
    stale = {k: v for k, v in first.items() if k != "status"}
    stale["metadata"] = {"name": "reborn", "uid": first["metadata"]["uid"]}  # no resourceVersion
    error = kubectl.fails("replace", "-f", "-", stdin=json.dumps(stale))
    assert "Precondition failed: UID in precondition" in error
    assert kubectl("get", "configmap", "reborn", "-o", "jsonpath={.data.v}") == "2"


# numbers, nulls and sizes


def test_numbers_and_nulls_are_decoded_as_kube_apiserver_does(
    kubectl: Kubectl, tmp_path: Path
) -> None:
    path = "/apis/example.com/v1/namespaces/default/widgets"
    body = '{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"n"},' \
           '"spec":{"owner":"o","size":%s}}'  # fmt: skip
    for bad in ("NaN", "Infinity", "-Infinity", str(2**64)):
        out = _raw(kubectl, "create", path, body % bad, tmp_path)
        assert "BadRequest" in out or "invalid character" in out or "int64" in out, (bad, out)
    out = _raw(kubectl, "create", path, body % "null", tmp_path)
    created = json.loads(out)
    assert created["spec"] == {"owner": "o", "size": 3}  # null dropped, then defaulted
    config = '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"nulls",' \
             '"labels":null},"data":null}'  # fmt: skip
    created = json.loads(_raw(kubectl, "create", "/api/v1/namespaces/default/configmaps",
                              config, tmp_path))  # fmt: skip
    assert "data" not in created and "labels" not in created["metadata"]
    arrays = '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"arr","annotations":[]}}'
    out = _raw(kubectl, "create", "/api/v1/namespaces/default/configmaps", arrays, tmp_path)
    assert "cannot unmarshal array into Go struct field ObjectMeta.metadata.annotations" in out


def test_size_limits(kubectl: Kubectl, tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text("x" * (1024 * 1024 + 1))
    error = kubectl.fails("create", "configmap", "too-big", f"--from-file=big={big}")
    assert "Too long: may not be more than 1048576 bytes" in error
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "huge"},
              "spec": {"owner": "o", "extra": {"blob": "x" * (1600 * 1024)}}}  # fmt: skip
    error = kubectl.fails("create", "-f", "-", stdin=json.dumps(widget))
    assert "request is too large" in error
    widget["spec"]["extra"]["blob"] = "x" * (4 * 1024 * 1024)
    error = kubectl.fails("create", "-f", "-", stdin=json.dumps(widget))
    assert "Request entity too large: limit is 3145728" in error


# watches and lists


def test_a_watch_from_an_evicted_resource_version_is_told_410(
    kubectl: Kubectl, sandbox: SandboxThread
) -> None:
    kubectl("create", "namespace", "churn")
    first = kubectl("create", "configmap", "churn", "-n", "churn", "-o",
                    "jsonpath={.metadata.resourceVersion}")  # fmt: skip
    for i in range(110):  # the module's sandbox keeps 100 events per resource
        kubectl("label", "configmap", "churn", "-n", "churn", f"n={i}", "--overwrite")
    watch = f"/api/v1/namespaces/churn/configmaps?watch=1&resourceVersion={first}"
    out = kubectl("get", "--raw", watch)
    event = json.loads(out.splitlines()[0])
    assert event["type"] == "ERROR" and event["object"]["code"] == 410
    assert "too old resource version" in event["object"]["message"]


def test_a_watch_from_a_version_the_server_never_reached_is_refused(kubectl: Kubectl) -> None:
    current = json.loads(kubectl("get", "--raw", "/api/v1/namespaces"))["metadata"]
    ahead = int(current["resourceVersion"]) + 1000
    done = kubectl.run(
        "get", "--raw", f"/api/v1/namespaces?watch=1&resourceVersion={ahead}", check=False
    )
    assert done.returncode != 0
    assert "Too large resource version" in done.stderr


def test_a_continued_list_serves_the_first_pages_snapshot(kubectl: Kubectl) -> None:
    kubectl("create", "namespace", "pages")
    for name in ("a", "b", "c", "d"):
        kubectl("create", "configmap", name, "-n", "pages")
    base = "/api/v1/namespaces/pages/configmaps?limit=2"
    first = json.loads(kubectl("get", "--raw", base))
    assert [o["metadata"]["name"] for o in first["items"]] == ["a", "b"]
    kubectl("delete", "configmap", "c", "-n", "pages")
    kubectl("create", "configmap", "e", "-n", "pages")
    kubectl("label", "configmap", "d", "-n", "pages", "late=yes")
    token = urllib.parse.quote(first["metadata"]["continue"])
    rest = json.loads(kubectl("get", "--raw", f"{base}&continue={token}"))
    assert [o["metadata"]["name"] for o in rest["items"]] == ["c", "d"]
    assert "labels" not in rest["items"][1]["metadata"]
    assert rest["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]


def test_an_object_leaving_the_selector_is_deleted_as_it_was(kubectl: Kubectl) -> None:
    kubectl("create", "namespace", "leaving")
    kubectl("create", "configmap", "mover", "-n", "leaving")
    kubectl("label", "configmap", "mover", "-n", "leaving", "team=a")
    watch = kubectl.popen("get", "configmaps", "-n", "leaving", "-l", "team=a", "--watch",
                          "--output-watch-events", "-o", "json")  # fmt: skip
    try:
        watch.read_until(lambda line: '"ADDED"' in line)
        kubectl("label", "configmap", "mover", "-n", "leaving", "team=b", "--overwrite")
        lines = watch.read_until(lambda line: '"DELETED"' in line)
    finally:
        watch.stop()
    event = json.loads(lines[-1])
    assert event["type"] == "DELETED"
    assert event["object"]["metadata"]["labels"] == {"team": "a"}  # the state it left in
    current = kubectl("get", "configmap", "mover", "-n", "leaving",
                      "-o", "jsonpath={.metadata.resourceVersion}")  # fmt: skip
    assert event["object"]["metadata"]["resourceVersion"] == current


# the scale subresource


SCALED_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: pools.example.com}
spec:
  group: example.com
  names: {kind: Pool, plural: pools, singular: pool}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      subresources:
        status: {}
        scale:
          specReplicasPath: .spec.size
          statusReplicasPath: .status.ready
          labelSelectorPath: .status.selector
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec: {type: object, properties: {size: {type: integer}}}
            status:
              type: object
              properties: {ready: {type: integer}, selector: {type: string}}
"""


def test_the_scale_subresource_of_a_crd_that_asks(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", stdin=SCALED_CRD)
    kubectl("wait", "--for=condition=Established", "crd/pools.example.com")
    pool = {"apiVersion": "example.com/v1", "kind": "Pool", "metadata": {"name": "p"},
            "spec": {"size": 1}}  # fmt: skip
    kubectl("apply", "-f", "-", stdin=json.dumps(pool))
    kubectl("scale", "pool", "p", "--replicas=4")
    assert kubectl("get", "pool", "p", "-o", "jsonpath={.spec.size}") == "4"
    scale = json.loads(
        kubectl("get", "--raw", "/apis/example.com/v1/namespaces/default/pools/p/scale")
    )
    assert scale["kind"] == "Scale" and scale["spec"] == {"replicas": 4}
    # Widgets did not ask for one.
    assert "widgets/scale" not in kubectl("get", "--raw", "/apis/example.com/v1")
    error = kubectl.fails("scale", "widget", "smp", "--replicas=2")
    assert "NotFound" in error or "not found" in error


# CEL validation rules

RULED_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: ranges.example.com}
spec:
  group: example.com
  names: {kind: Range, plural: ranges, singular: range}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              x-kubernetes-validations:
                - rule: self.min <= self.max
                  message: min must not exceed max
                - rule: self.unit == oldSelf.unit
                  message: unit is immutable
                - rule: self.unit.lowerAscii() == self.unit
                  messageExpression: "'unit ' + self.unit + ' must be lower case'"
              properties:
                min: {type: integer}
                max: {type: integer}
                unit: {type: string}
                steps:
                  type: array
                  items: {type: integer}
                  x-kubernetes-validations:
                    - rule: self.isSorted()
                      message: steps must be sorted
"""


def _range(**spec: Any) -> str:
    return json.dumps({"apiVersion": "example.com/v1", "kind": "Range",
                       "metadata": {"name": "r"}, "spec": spec})  # fmt: skip


def test_crd_validation_rules_are_enforced_with_cel(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", stdin=RULED_CRD)
    kubectl("wait", "--for=condition=Established", "crd/ranges.example.com")
    error = kubectl.fails("apply", "-f", "-", stdin=_range(min=5, max=1, unit="s"))
    assert 'The Range "r" is invalid: spec: Invalid value: "object": min must not exceed max' in (
        error
    )
    error = kubectl.fails("apply", "-f", "-", stdin=_range(min=1, max=5, unit="S"))
    assert "unit S must be lower case" in error
    error = kubectl.fails("apply", "-f", "-", stdin=_range(min=1, max=5, unit="s", steps=[3, 1]))
    assert 'spec.steps: Invalid value: "array": steps must be sorted' in error
    kubectl("apply", "-f", "-", stdin=_range(min=1, max=5, unit="s", steps=[1, 3]))
    # A transition rule judges updates against the stored object.
    error = kubectl.fails("apply", "-f", "-", stdin=_range(min=1, max=5, unit="ms"))
    assert "unit is immutable" in error
    kubectl("apply", "-f", "-", stdin=_range(min=2, max=5, unit="s"))


def test_a_crd_whose_rule_does_not_compile_is_refused(kubectl: Kubectl) -> None:
    broken = (
        RULED_CRD.replace("ranges", "brokens")
        .replace("Range", "Broken")
        .replace("range}", "broken}")
        .replace("self.min <= self.max", "self.min <=")
    )
    error = kubectl.fails("apply", "-f", "-", stdin=broken)
    assert "x-kubernetes-validations[0].rule: Invalid value" in error
    assert "compilation failed" in error


def test_moving_from_client_side_to_server_side_apply(kubectl: Kubectl) -> None:
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "moved"},
              "data": {"a": "1"}}  # fmt: skip
    kubectl("apply", "-f", "-", stdin=json.dumps(config))
    changed = {**config, "data": {"a": "2"}}
    error = kubectl.fails("apply", "--server-side", "-f", "-", stdin=json.dumps(changed))
    assert 'conflict with "kubectl-client-side-apply"' in error  # as on a real cluster
    # Applying the same values succeeds, and kubectl then rewrites managedFields (a JSON
    # patch) so that its server-side manager owns what client-side apply owned.
    kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps(config))
    managers = _managers(_get(kubectl, "configmap", "moved"))
    assert ("kubectl-client-side-apply", "Update") not in managers
    kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps(changed))
    shown = _get(kubectl, "configmap", "moved")
    assert shown["data"] == {"a": "2"}
    version = shown["metadata"]["resourceVersion"]
    # The same configuration again changes nothing, not even the resourceVersion.
    kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps(changed))
    assert _get(kubectl, "configmap", "moved")["metadata"]["resourceVersion"] == version
