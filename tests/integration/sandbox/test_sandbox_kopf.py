"""A real kopf operator (kopf run, in a subprocess) against the sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import WIDGET_CRD, Kubectl, crd, eventually

from mltrl_sandbox.server import SandboxThread

pytestmark = pytest.mark.integration

OPERATOR = """
import kopf

@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_):
    settings.watching.server_timeout = 5
    settings.persistence.finalizer = "example.com/kopf"

@kopf.on.create("example.com", "v1", "widgets")
def created(body, spec, patch, **_):
    patch.status["phase"] = "Ready"
    kopf.info(body, reason="Seen", message=f"size {spec['size']}")

@kopf.on.delete("example.com", "v1", "widgets")
def deleted(**_):
    pass

@kopf.on.update("example.com", "v1", "widgets", field="spec.size")
def resized(body, new, patch, **_):
    patch.status["phase"] = "Pending"
    kopf.info(body, reason="Resized", message=f"size {new}")
"""


def test_kopf_operator_reacts_to_changes(tmp_path: Path) -> None:
    with SandboxThread([crd(WIDGET_CRD)]) as sandbox:
        kubeconfig = sandbox.kubeconfig(tmp_path / "kubeconfig")
        kubectl = Kubectl(kubeconfig, tmp_path / "cache")
        (tmp_path / "operator.py").write_text(OPERATOR)
        env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
        log = (tmp_path / "kopf.log").open("w")
        kopf = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kopf",
                "run",
                "--standalone",
                "-A",
                str(tmp_path / "operator.py"),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            widget = {
                "apiVersion": "example.com/v1",
                "kind": "Widget",
                "metadata": {"name": "k"},
                "spec": {"owner": "o"},
            }
            kubectl("apply", "-f", "-", stdin=yaml.safe_dump(widget))

            def status() -> dict[str, object]:
                out = kubectl("get", "wdg", "k", "-o", "jsonpath={.status}")
                return dict(json.loads(out)) if out else {}

            eventually(lambda: status().get("phase") == "Ready", timeout=20)
            assert (
                kubectl("get", "wdg", "k", "-o", "jsonpath={.metadata.finalizers}")
                == '["example.com/kopf"]'
            )
            kubectl("patch", "wdg", "k", "--type=merge", "-p", '{"spec":{"size":6}}')
            eventually(lambda: status().get("phase") == "Pending", timeout=20)
            reasons = eventually(
                lambda: (
                    (r := kubectl("get", "events", "-o", "jsonpath={.items[*].reason}").split())
                    and "Resized" in r
                    and r
                ),
                timeout=20,
            )
            assert sorted(reasons) == ["Resized", "Seen"]  # listed by (random) name
            kubectl("delete", "wdg", "k", "--timeout=20s")  # kopf removes its finalizer
            assert 'widgets.example.com "k" not found' in kubectl.fails("get", "wdg", "k")
            assert sandbox.server.stats.count("watch", "widgets.example.com") >= 1
        finally:
            kopf.terminate()
            kopf.wait(timeout=20)
            log.close()
