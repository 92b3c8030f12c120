"""The audit record as an auditor meets it: `mltrl audit export` and `mltrl audit verify`
against the sandbox, after the technology and its reviews are gone, and after someone
edited the stored record by hand."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest

from tests.integration.harness import MLTRL, Operator, Sandbox, eventually
from tests.integration.operator.scenarios import policy, review, technology
from tests.integration.operator.test_reviews import wait_for_level, wait_for_phase

pytestmark = pytest.mark.integration


def mltrl_audit(sandbox: Sandbox, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(MLTRL), "audit", *args, "--kubeconfig", str(sandbox.kubeconfig)],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "KUBECONFIG": str(sandbox.kubeconfig)},
    )


def exported(sandbox: Sandbox, target: str) -> list[dict[str, Any]]:
    result = mltrl_audit(sandbox, "export", target)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def kinds(entries: list[dict[str, Any]]) -> list[tuple[str, int | None, int | None]]:
    return [(e["kind"], e.get("fromLevel"), e.get("toLevel")) for e in entries]


def promote(sandbox: Sandbox, namespace: str, name: str, level: int) -> None:
    sandbox.apply(review(f"{name}-to-{level + 1}", namespace, name, level, level + 1))
    wait_for_phase(sandbox, f"{name}-to-{level + 1}", namespace, "Applied")
    wait_for_level(sandbox, name, namespace, level + 1)


def test_a_recreated_technology_shows_its_old_record(sandbox: Sandbox, namespace: str) -> None:
    sandbox.apply(policy(f"{namespace}-policy", namespace))
    sandbox.apply(technology("ranker", namespace, entry_level=3))
    wait_for_level(sandbox, "ranker", namespace, 3)
    promote(sandbox, namespace, "ranker", 3)
    first_uid = sandbox.get("mltech", "ranker", namespace)["metadata"]["uid"]  # type: ignore[index]
    target = f"{namespace}/ranker"
    eventually(lambda: len(exported(sandbox, target)) == 2, what="entry and promotion recorded")

    # The technology and every review go; the record stays.
    sandbox.kubectl("delete", "lvlreview", "--all", "-n", namespace)
    sandbox.kubectl("delete", "mltech", "ranker", "-n", namespace)
    eventually(lambda: sandbox.get("mltech", "ranker", namespace) is None, what="deleted")
    eventually(lambda: kinds(exported(sandbox, target)) == [
        ("entry", None, 3), ("promotion", 3, 4), ("deletion", 4, None)], what="the deletion")

    sandbox.apply(technology("ranker", namespace, entry_level=3))
    wait_for_level(sandbox, "ranker", namespace, 3)
    entries = eventually(
        lambda: (e := exported(sandbox, target)) and len(e) == 4 and e, what="the new entry"
    )
    assert kinds(entries) == [("entry", None, 3), ("promotion", 3, 4), ("deletion", 4, None),
                              ("entry", None, 3)]
    assert [e["sequence"] for e in entries] == [0, 1, 2, 3]
    assert {e["technologyUid"] for e in entries[:3]} == {first_uid}
    assert entries[3]["technologyUid"] != first_uid
    # The deleted review's evidence and approvals were copied into the record.
    promotion = entries[1]
    assert promotion["review"] == "ranker-to-4"
    assert promotion["evidence"] == [{"name": "unit-tests", "kind": "check", "passed": True,
                                      "uri": "https://ci.example.com/run/1"}]
    assert [(a["reviewer"], a["role"], a["decision"]) for a in promotion["approvals"]] == [
        ("bob", "qa", "approve")]
    assert promotion["by"] == ["bob"]
    assert promotion["details"]["debrief.learned"] == "a lesson"
    assert all(e["namespace"] == namespace and e["technology"] == "ranker" for e in entries)

    verified = mltrl_audit(sandbox, "verify", target)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"audit record of {target}: 1 chunk(s), 4 entries, head {entries[3]['hash']}" in (
        verified.stdout)
    assert "intact" in verified.stdout

    # Listed by auditors as a cluster-scoped kind.
    listed = sandbox.kubectl("get", "mltrlaudit").stdout
    assert f"{namespace}.ranker.0000" in listed and "ranker" in listed


def test_verify_catches_an_entry_edited_in_the_stored_object(
    sandbox: Sandbox, namespace: str
) -> None:
    sandbox.apply(policy(f"{namespace}-policy", namespace))
    sandbox.apply(technology("scorer", namespace, entry_level=3))
    wait_for_level(sandbox, "scorer", namespace, 3)
    promote(sandbox, namespace, "scorer", 3)
    promote(sandbox, namespace, "scorer", 4)
    target = f"{namespace}/scorer"
    eventually(lambda: len(exported(sandbox, target)) == 3, what="three entries")
    head = mltrl_audit(sandbox, "verify", target).stdout.split("head ")[1].split()[0]

    # A cluster admin (this sandbox runs without the webhooks) rewrites who approved.
    chunk = f"{namespace}.scorer.0000"
    edit = [{"op": "replace", "path": "/spec/entries/1/by", "value": ["mallory"]}]
    sandbox.kubectl("patch", "mltrlaudit", chunk, "--type=json", "-p", json.dumps(edit))

    result = mltrl_audit(sandbox, "verify", target)
    assert result.returncode == 1
    assert "TAMPERED: 1 finding(s)" in result.stdout
    assert "chunk 0, entry 1, sequence 1: content does not match its hash (edited after it " \
        "was recorded" in result.stdout

    # Removing an entry outright is caught too, and so is a whole chain rewritten, given
    # the head noted before.
    removal = [{"op": "remove", "path": "/spec/entries/1"}]
    sandbox.kubectl("patch", "mltrlaudit", chunk, "--type=json", "-p", json.dumps(removal))
    result = mltrl_audit(sandbox, "verify", target, "--expect-head", head)
    assert result.returncode == 1
    assert "chunk 0, entry 1, sequence 2: previousHash does not match the entry before it" in (
        result.stdout)
    assert "expected sequence 1: 1 entries missing before it" in result.stdout

    everything = mltrl_audit(sandbox, "verify", "--all")
    assert everything.returncode == 1 and "NOT all intact" in everything.stdout
    assert f"audit record of {target}: 1 chunk(s), 2 entries" in everything.stdout

    exported_anyway = mltrl_audit(sandbox, "export", target)
    assert exported_anyway.returncode == 1 and "TAMPERED" in exported_anyway.stderr
    assert len(exported_anyway.stdout.splitlines()) == 2


def test_no_record_is_an_error_an_auditor_sees(sandbox: Sandbox, namespace: str) -> None:
    result = mltrl_audit(sandbox, "verify", f"{namespace}/never-existed")
    assert result.returncode == 1
    assert f"no audit record for {namespace}/never-existed" in result.stdout
    bad = mltrl_audit(sandbox, "verify", "a/b/c")
    assert bad.returncode == 2 and "expected [NAMESPACE/]TECHNOLOGY" in bad.stderr


def test_a_restarted_operator_records_what_it_stored_but_had_not_recorded(
    sandbox: Sandbox, operator: Operator, namespace: str
) -> None:
    sandbox.apply(policy(f"{namespace}-policy", namespace))
    sandbox.apply(technology("tagger", namespace, entry_level=3))
    wait_for_level(sandbox, "tagger", namespace, 3)
    promote(sandbox, namespace, "tagger", 3)
    target = f"{namespace}/tagger"
    eventually(lambda: len(exported(sandbox, target)) == 2, what="two entries")

    # What a crash between the status write and the append leaves: the transitions in
    # status, not in the record (simulated by removing the record as a cluster admin).
    sandbox.kubectl("delete", "mltrlaudit", f"{namespace}.tagger.0000")
    assert "no audit record" in mltrl_audit(sandbox, "export", target).stderr
    operator.restart(crash=True)
    entries = eventually(
        lambda: mltrl_audit(sandbox, "export", target).returncode == 0
        and len(e := exported(sandbox, target)) == 2 and e, what="the record caught up")
    assert [e["kind"] for e in entries] == ["entry", "promotion"]
    assert entries[1]["evidence"][0]["name"] == "unit-tests"
    assert mltrl_audit(sandbox, "verify", target).returncode == 0
