"""`mltrl sandbox --webhooks`: the demo path, with the webhooks registered for you."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.admission.conftest import SecureSandbox
from tests.integration.harness import MLTRL, Process, eventually
from tests.integration.operator.scenarios import technology

pytestmark = pytest.mark.integration


def test_sandbox_with_webhooks_gates_kubectl_users(tmp_path: Path) -> None:
    sandbox = SecureSandbox(tmp_path)
    sandbox.process = Process(
        [str(MLTRL), "sandbox", "--port", str(sandbox.port), "--dir", str(tmp_path),
         "--webhooks", "--user", "alice", "--no-kserve"],
        tmp_path / "sandbox.log",
    )
    try:
        sandbox.start()
        eventually(lambda: "Admission webhooks: https://127.0.0.1:" in sandbox.process.output(),
                   timeout=30, what=f"the webhooks\n{sandbox.process.output()}")
        hooks = sandbox.kubectl("get", "validatingwebhookconfigurations", "-o", "json").stdout
        assert [h["name"] for h in json.loads(hooks)["items"][0]["webhooks"]] == [
            "levelreviews.validate.mltrl.dev", "mltechnologies.validate.mltrl.dev",
            "mltrlpolicies.validate.mltrl.dev", "status.validate.mltrl.dev",
            "inferenceservices.validate.mltrl.dev",
            "mltrlauditrecords.validate.mltrl.dev", "mltrlwaivers.validate.mltrl.dev",
        ]
        # As in a cluster, alice may do nothing until bound; the chart's mltrl-editor is
        # aggregated into edit.
        denied = sandbox.as_user("alice", "get", "mltech", "-n", "default")
        assert 'User "alice" cannot list resource "mltechnologies"' in denied.stderr
        sandbox.kubectl("create", "clusterrolebinding", "alice-edit", "--clusterrole=edit",
                        "--user=alice")
        refused = sandbox.as_user("alice", "apply", "-f", "-", input=json.dumps(
            technology("backwards", "default", entry_level=5, target_level=4)))
        assert refused.returncode != 0
        assert "spec.targetLevel: Invalid: must be at least spec.entryLevel (5)" in refused.stderr
        # The operator writes as its service account, which the webhooks let through.
        sandbox.as_user("alice", "apply", "-f", "-", check=True,
                        input=json.dumps(technology("ok", "default")))
        eventually(lambda: ((sandbox.get("mltech", "ok", "default") or {}).get("status") or {})
                   .get("level") == 3, what="the operator's status write")
        whoami = sandbox.as_user("alice", "auth", "whoami", check=True).stdout
        assert "alice" in whoami
    finally:
        sandbox.stop()
