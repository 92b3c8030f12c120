"""Issue 2's promises, checked with real kubectl against the sandbox and our own CRDs."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator

import pytest

from tests.integration.harness import EXAMPLES, KUBECTL, Sandbox, eventually

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    cluster = Sandbox(tmp_path_factory.mktemp("foundation"), kserve=False).start()
    yield cluster
    cluster.stop()


def _technology(name: str, **spec: object) -> str:
    body = {"owner": "alice", **spec}
    return json.dumps({
        "apiVersion": "mltrl.dev/v1alpha1", "kind": "MLTechnology",
        "metadata": {"name": name, "namespace": "default"}, "spec": body,
    })


def test_the_examples_apply_cleanly(sandbox: Sandbox) -> None:
    output = sandbox.kubectl("apply", "-f", str(EXAMPLES)).stdout
    assert "mltechnology.mltrl.dev/fraud-detection created" in output
    assert "mltrlpolicy.mltrl.dev/production created" in output
    assert "levelreview.mltrl.dev/fraud-detection-to-7 created" in output
    again = sandbox.kubectl("apply", "-f", str(EXAMPLES)).stdout
    assert "fraud-detection unchanged" in again


def test_an_invalid_technology_is_refused_naming_the_field(sandbox: Sandbox) -> None:
    too_high = sandbox.kubectl("apply", "-f", "-", input=_technology("x", targetLevel=12),
                               check=False)
    assert too_high.returncode != 0
    assert "spec.targetLevel: Invalid value: 12" in too_high.stderr
    assert "less than or equal to 9" in too_high.stderr

    no_owner = json.loads(_technology("y"))
    del no_owner["spec"]["owner"]
    missing = sandbox.kubectl("apply", "-f", "-", input=json.dumps(no_owner), check=False)
    assert missing.returncode != 0
    assert "spec.owner: Required value" in missing.stderr

    bogus = sandbox.kubectl("apply", "-f", "-", input=_technology("z", bogus=1), check=False)
    assert bogus.returncode != 0 and 'unknown field "spec.bogus"' in bogus.stderr
    assert sandbox.get("mltech", "x", "default") is None


def test_get_mltech_prints_the_printer_columns(sandbox: Sandbox) -> None:
    sandbox.apply(_technology("columns", entryLevel=3, targetLevel=5))
    sandbox.kubectl("patch", "mltech", "columns", "--subresource=status", "--type=merge", "-p",
                    json.dumps({"status": {"level": 3, "phase": "Prototyping",
                                           "serving": {"state": "Disabled"}}}))
    lines = sandbox.kubectl("get", "mltech", "columns").stdout.splitlines()
    assert lines[0].split() == ["NAME", "LEVEL", "PHASE", "TARGET", "SERVING", "READY", "AGE"]
    assert lines[1].split()[:5] == ["columns", "3", "Prototyping", "5", "Disabled"]
    wide = sandbox.kubectl("get", "mltech", "columns", "-o", "wide").stdout.splitlines()[0]
    assert "OWNER" in wide and "LEVEL-NAME" in wide
    categories = sandbox.kubectl("get", "mltrl", "-A").stdout
    assert "mltechnology.mltrl.dev/columns" in categories


def test_a_stale_update_gets_409(sandbox: Sandbox) -> None:
    sandbox.apply(_technology("stale", description="first"))
    old = sandbox.get("mltech", "stale", "default")
    assert old is not None
    sandbox.kubectl("patch", "mltech", "stale", "--type=merge", "-p",
                    '{"spec":{"description":"second"}}')
    old["spec"]["description"] = "third"
    replaced = sandbox.kubectl("replace", "-f", "-", input=json.dumps(old), check=False)
    assert replaced.returncode != 0
    assert "the object has been modified" in replaced.stderr
    assert sandbox.get("mltech", "stale", "default")["spec"]["description"] == "second"


def test_explain_prints_the_models_docstrings(sandbox: Sandbox) -> None:
    owner = sandbox.kubectl("explain", "mltech.spec.owner").stdout
    assert "Who is accountable for the technology" in owner
    review = sandbox.kubectl("explain", "lvlreview.spec.evidence").stdout
    assert "evidence" in review.lower()


def test_a_watch_sees_changes_in_order(sandbox: Sandbox) -> None:
    sandbox.apply(_technology("watched", description="v0"))
    watcher = subprocess.Popen(
        [str(KUBECTL), "get", "mltech", "watched", "-w", "-o",
         "jsonpath={.spec.description}{\"\\n\"}", "--request-timeout=20s"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "KUBECONFIG": str(sandbox.kubeconfig)},
    )
    try:
        assert watcher.stdout is not None
        assert watcher.stdout.readline().strip() == "v0"
        for version in ("v1", "v2", "v3"):
            sandbox.kubectl("patch", "mltech", "watched", "--type=merge", "-p",
                            json.dumps({"spec": {"description": version}}))
        seen = [watcher.stdout.readline().strip() for _ in range(3)]
        assert seen == ["v1", "v2", "v3"]
    finally:
        watcher.kill()
        watcher.wait(timeout=10)


def test_generation_moves_with_spec_only(sandbox: Sandbox) -> None:
    sandbox.apply(_technology("generations"))
    first = sandbox.get("mltech", "generations", "default")
    sandbox.kubectl("patch", "mltech", "generations", "--subresource=status", "--type=merge",
                    "-p", '{"status":{"level":0}}')
    sandbox.kubectl("label", "mltech", "generations", "team=x")
    after_status = sandbox.get("mltech", "generations", "default")
    assert after_status["metadata"]["generation"] == first["metadata"]["generation"]
    sandbox.kubectl("patch", "mltech", "generations", "--type=merge",
                    "-p", '{"spec":{"targetLevel":5}}')
    eventually(lambda: sandbox.get("mltech", "generations", "default")["metadata"]["generation"]
               == first["metadata"]["generation"] + 1)


