"""The real kubectl with `kind: List` documents, as `kubectl get -o yaml` writes them.

kubectl validates a List's items itself, from /openapi/v2 in gnostic protobuf: each item
against its kind's definition, refusing unknown fields, wrong types and missing required
fields before it sends anything, with the same texts as against kube-apiserver.
"""

from __future__ import annotations

import itertools
import json
import re
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import Kubectl

from mltrl_sandbox.server import SandboxThread

pytestmark = pytest.mark.integration

_names = itertools.count()


@pytest.fixture
def ns(kubectl: Kubectl) -> str:
    name = f"l{next(_names)}"
    assert kubectl("create", "namespace", name).strip() == f"namespace/{name} created"
    return name


def config_map(name: str, ns: str, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns},
        "data": {"threshold": "0.7"},
        **extra,
    }


def technology(name: str, ns: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "mltrl.dev/v1alpha1",
        "kind": "MLTechnology",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"owner": "alice", "targetLevel": 4, **spec},
    }


def listed(*items: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "items": list(items)}


def test_apply_a_list_of_a_config_map_and_a_technology(
    kubectl: Kubectl, ns: str, tmp_path: Path
) -> None:
    path = tmp_path / "list.json"
    # a predictor template keeps unknown fields: kubectl must not refuse what is in it
    serving = {"predictor": {"minReplicas": 1, "containers": [{"name": "kserve-container"}]}}
    path.write_text(
        json.dumps(listed(config_map("settings", ns), technology("fraud", ns, serving=serving)))
    )
    assert kubectl("apply", "-f", str(path)).splitlines() == [
        "configmap/settings created",
        "mltechnology.mltrl.dev/fraud created",
    ]
    assert kubectl("get", "configmap", "settings", "-n", ns, "-o", "jsonpath={.data}") == (
        '{"threshold":"0.7"}'
    )
    header, row = kubectl("get", "mltech", "-n", ns).splitlines()
    assert header.split()[0] == "NAME"
    assert row.split()[0] == "fraud"
    predictor = kubectl("get", "mltech", "fraud", "-n", ns, "-o", "jsonpath={.spec.serving}")
    assert json.loads(predictor)["predictor"] == serving["predictor"]
    # the same List again changes nothing
    assert kubectl("apply", "-f", str(path)).splitlines() == [
        "configmap/settings unchanged",
        "mltechnology.mltrl.dev/fraud unchanged",
    ]


def test_create_a_list(kubectl: Kubectl, ns: str) -> None:
    document = yaml.safe_dump(listed(technology("a", ns), technology("b", ns, targetLevel=6)))
    assert kubectl("create", "-f", "-", stdin=document).splitlines() == [
        "mltechnology.mltrl.dev/a created",
        "mltechnology.mltrl.dev/b created",
    ]
    names = kubectl("get", "mltech", "-n", ns, "-o", "jsonpath={.items[*].spec.targetLevel}")
    assert names == "4 6"
    err = kubectl.fails("create", "-f", "-", stdin=document)
    assert 'mltechnologies.mltrl.dev "a" already exists' in err
    assert 'mltechnologies.mltrl.dev "b" already exists' in err


def test_get_yaml_applies_back(kubectl: Kubectl, ns: str) -> None:
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump(technology("one", ns)))
    kubectl("create", "-f", "-", stdin=yaml.safe_dump(technology("two", ns, team="risk")))
    exported = kubectl("get", "mltech", "-n", ns, "-o", "yaml")
    assert yaml.safe_load(exported)["kind"] == "List"
    out = kubectl("apply", "-f", "-", stdin=exported).splitlines()
    assert len(out) == 2
    for line, name in zip(out, ["one", "two"], strict=True):
        assert re.fullmatch(rf"mltechnology\.mltrl\.dev/{name} (configured|unchanged)", line)
    spec = kubectl("get", "mltech", "two", "-n", ns, "-o", "jsonpath={.spec.owner} {.spec.team}")
    assert spec == "alice risk"
    # and once more, from what the first round trip left
    again = kubectl("get", "mltech", "-n", ns, "-o", "yaml")
    out = kubectl("apply", "-f", "-", stdin=again).splitlines()
    assert all(re.fullmatch(r"\S+ (configured|unchanged)", line) for line in out), out


def test_an_invalid_item_fails_the_list_naming_the_field(
    kubectl: Kubectl, ns: str, tmp_path: Path
) -> None:
    bad_tech = technology("bad", ns, targetLevel="high")
    del bad_tech["spec"]["owner"]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(listed(config_map("cm", ns, bogus=1), bad_tech)))
    err = kubectl.fails("apply", "-f", str(path))
    assert f'error validating "{path}": error validating data: ' in err
    unknown = 'ValidationError(ConfigMap): unknown field "bogus" in io.k8s.api.core.v1.ConfigMap'
    assert unknown in err
    assert (
        "ValidationError(MLTechnology.spec.targetLevel): invalid type for "
        'dev.mltrl.v1alpha1.MLTechnology.spec.targetLevel: got "string", expected "integer"'
    ) in err
    assert (
        "ValidationError(MLTechnology.spec): missing required field "
        '"owner" in dev.mltrl.v1alpha1.MLTechnology.spec'
    ) in err
    assert "turn validation off with --validate=false" in err
    # nothing was sent: kubectl refuses the whole List before it writes any item
    assert 'configmaps "cm" not found' in kubectl.fails("get", "configmap", "cm", "-n", ns)
    assert kubectl("get", "mltech", "-n", ns, "-o", "name") == ""
    # create validates the same way
    assert 'unknown field "bogus"' in kubectl.fails("create", "-f", str(path))


def test_without_validation_the_server_drops_unknown_fields(
    kubectl: Kubectl, ns: str, tmp_path: Path
) -> None:
    path = tmp_path / "loose.yaml"
    path.write_text(yaml.safe_dump(listed(config_map("loose", ns, bogus=1))))
    assert 'unknown field "bogus"' in kubectl.fails("apply", "-f", str(path))
    assert kubectl("apply", "--validate=false", "-f", str(path)).strip() == (
        "configmap/loose created"
    )
    stored = json.loads(kubectl("get", "configmap", "loose", "-n", ns, "-o", "json"))
    assert "bogus" not in stored
    assert stored["data"] == {"threshold": "0.7"}


def test_openapi_v2_answers_client_go_in_protobuf(sandbox: SandboxThread) -> None:
    """What client-go's OpenAPISchema() sends, and what kube-apiserver answers it."""
    request = urllib.request.Request(
        f"{sandbox.url}/openapi/v2",
        headers={
            "Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
            "Authorization": "Bearer admin-token",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200
        assert answer.headers["Content-Type"] == (
            "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
        )
        body = answer.read()
    assert body.startswith(b"\x0a\x032.0")  # field 1 (swagger), "2.0"


def test_what_kubectl_lets_through_the_server_checks(kubectl: Kubectl, ns: str) -> None:
    """kubectl's own validation knows types, fields and required ones, not ranges: those
    are the server's, item by item, as on a real cluster (the items before stay)."""
    document = json.dumps(listed(config_map("first", ns), technology("high", ns, targetLevel=12)))
    done = kubectl.run("apply", "-f", "-", stdin=document, check=False)
    assert done.returncode == 1
    assert done.stdout.strip() == "configmap/first created"
    assert (
        'The MLTechnology "high" is invalid: spec.targetLevel: Invalid value: 12: '
        "spec.targetLevel in body should be less than or equal to 9"
    ) in done.stderr
    assert kubectl("get", "configmap", "first", "-n", ns, "-o", "name") == "configmap/first\n"
    assert kubectl("get", "mltech", "-n", ns, "-o", "name") == ""
