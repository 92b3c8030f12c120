"""The README's tour works as written: the same commands, against `make sandbox`'s setup
(the Makefile's SANDBOX_FLAGS: webhooks on, the story's users). A command whose comment
says `refused:` must be refused by an admission webhook; every other one must succeed."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.integration.harness import BIN, MLTRL, REPO, Process, eventually, free_port

pytestmark = pytest.mark.integration


def tour_commands() -> list[tuple[str, str]]:
    """(command, comment) for each command of the tour's bash blocks."""
    readme = (REPO / "README.md").read_text()
    tour = readme.split("## A 60-second tour", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", tour, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            command, _, comment = line.partition("  #")
            command = command.strip()
            if command and not command.startswith(("export ", "#")):
                commands.append((command, comment.strip()))
    return commands


def sandbox_flags() -> list[str]:
    """`make sandbox`'s own flags, read from the Makefile."""
    makefile = (REPO / "Makefile").read_text().replace("\\\n", " ")
    line = next(row for row in makefile.splitlines() if row.startswith("SANDBOX_FLAGS :="))
    return line.split(":=", 1)[1].split()


def test_the_readme_tour(tmp_path: Path) -> None:
    commands = tour_commands()
    assert any("example-alert.json" in c for c, _ in commands), "the tour shows a rollback"
    refusals = [c for c, comment in commands if comment.startswith("refused:")]
    assert len(refusals) >= 5, "the tour shows what the webhooks refuse"
    flags = sandbox_flags()
    assert "--webhooks" in flags and flags.count("--user") >= 5
    port, alerts = free_port(), free_port()
    sandbox_dir = tmp_path / ".sandbox"
    process = Process(
        [str(MLTRL), "sandbox", "--port", str(port), "--dir", str(sandbox_dir),
         "--alerts-port", str(alerts), "--metrics-port", str(free_port()), *flags],
        tmp_path / "sandbox.log",
    ).start()
    env = {**os.environ, "KUBECONFIG": str(sandbox_dir / "kubeconfig"),
           "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}

    def run(command: str) -> subprocess.CompletedProcess[str]:
        command = (command.replace("http://127.0.0.1:9091", f"http://127.0.0.1:{alerts}")
                   .replace(".sandbox/", f"{sandbox_dir}/"))
        return subprocess.run(["bash", "-c", command], cwd=REPO, env=env, timeout=60,
                              capture_output=True, text=True)

    def sh(command: str) -> str:
        result = run(command)
        assert result.returncode == 0, f"{command}\n{result.stderr}"
        return result.stdout

    def isvc_model() -> str:
        return sh("kubectl get isvc fraud-detection -n payments "
                  "-o jsonpath='{.spec.predictor.model.storageUri}'")

    try:
        eventually(lambda: "Press Ctrl-C" in process.output(), timeout=30,
                   what=f"the sandbox to start\n{process.output()}")
        outputs: dict[str, str] = {}
        for command, comment in commands:
            if comment.startswith("refused:"):
                refused = run(command)
                assert refused.returncode != 0, f"{command} was admitted: {refused.stdout}"
                assert "denied the request" in refused.stderr, refused.stderr
                outputs[command] = refused.stderr
                continue
            if command.startswith("kubectl mltrl status"):
                eventually(lambda c=command: "role 'qa'" in sh(c),
                           what="the plugin to show what fraud-detection-to-7 needs")
            if "EntryApproved" in command:
                eventually(lambda c=command: "EntryReviewRequired" in sh(c),
                           what="shortcut held at its entry cap")
            if command.startswith("kubectl get isvc -n payments"):
                eventually(lambda c=command: "True" in sh(c), what="fraud-detection to serve")
            if "pendingModel" in command:
                eventually(lambda c=command: "1.4.0 keeps serving" in sh(c),
                           what="1.5.0 to wait for its change review")
            if "knownGood" in command:
                eventually(lambda c=command: "1.5.0" in sh(c), what="1.5.0 to be known-good")
            if "status.unmet" in command:
                eventually(lambda c=command: "research-plan" in sh(c), what="the unmet list")
            if command.startswith("curl"):
                eventually(lambda: "1.5.0" in isvc_model(), what="1.5.0 to serve")
            if command.startswith("kubectl get isvc fraud-detection"):
                eventually(lambda: isvc_model().endswith("/1.4.0"), what="the rollback")
            if command.startswith("kubectl get events"):
                eventually(lambda c=command: "RolledBack" in sh(c), what="the rollback event")
            if command.startswith("mltrl audit export"):
                eventually(lambda c=command: '"kind": "rollback"' in sh(c)
                           and '"kind": "changeApproval"' in sh(c),
                           what="the rollback in the audit record")
            outputs[command] = sh(command)
        table = next(v for k, v in outputs.items() if k.startswith("kubectl get mltech -A"))
        assert table.splitlines()[0].split()[:4] == ["NAMESPACE", "NAME", "LEVEL", "PHASE"]
        unmet = next(v for k, v in outputs.items() if "status.unmet" in k)
        assert "research-plan" in unmet
        posted = next(v for k, v in outputs.items() if k.startswith("curl"))
        assert '"recorded"' in posted
        assert "Who is accountable" in next(v for k, v in outputs.items() if "explain" in k)
        # the review steps are the plugin's, as each reviewer (issue 16)
        approvals = [c for c, _ in commands if c.startswith("kubectl mltrl approve")]
        assert [c.split("--context ")[1] for c in approvals] == ["bob", "carol"] * 2
        # 1.5.0 waited for its change review, and 1.4.0 served meanwhile (issue 15)
        pending = next(v for k, v in outputs.items() if "pendingModel" in k)
        assert "1.5.0 waits for a change review of level 7" in pending, pending
        held_uri = next(v for k, v in outputs.items()
                        if k.startswith("kubectl get isvc fraud-detection") and "\\n" in k)
        assert held_uri.strip().endswith("/1.4.0"), held_uri
        opened = next(v for k, v in outputs.items() if "--type change" in k)
        assert "fraud-detection-change-1.5.0" in opened, opened
        needs = next(v for k, v in outputs.items() if k.startswith("kubectl mltrl status"))
        assert "needs an approval from a reviewer with role 'qa'" in needs, needs
        history = next(v for k, v in outputs.items() if k.startswith("kubectl mltrl history"))
        assert "promotion" in history and "fraud-detection-to-7" in history, history
        stamped = next(v for k, v in outputs.items() if "approvedBy.username" in k)
        assert stamped.split() == ["bob", "carol"]
        held = next(v for k, v in outputs.items() if "EntryApproved" in k)
        assert held.split() == ["6", "EntryReviewRequired"]
        messages = [outputs[c] for c in refusals]
        assert "spec.entryLevel: Forbidden" in messages[0]
        assert "status: Forbidden" in messages[1]
        assert "mallory owns mltech shortcut" in messages[2]
        assert "bob does not hold role product-owner" in messages[3]
        assert "serves s3://models/anything" in messages[4]
        assert "serves s3://models/fraud-detection/1.6.0" in messages[5]
        record = next(v for k, v in outputs.items() if k.startswith("mltrl audit export"))
        assert [json.loads(line)["kind"] for line in record.splitlines()] == [
            "entry", "promotion", "changeApproval", "rollback"]
        assert "intact" in next(v for k, v in outputs.items() if k.startswith("mltrl audit ver"))
    finally:
        process.stop()
