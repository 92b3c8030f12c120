"""Levels that stay true over time, with real kubectl against the sandbox and the operator
on a clock the test moves by weeks (`mltrl run --clock-file`): a new model waits for its
change review while the approved one keeps serving; a `demote` rule makes a change a
switchback; a level lapses at its instant and a recertify review renews it. And the walk
arounds of an editor who wants a model served without a review."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mltrl_operator.api.review import LevelReviewSpec
from mltrl_operator.api.technology import ModelSpec
from mltrl_operator.domain.approvals import make_stamp, review_content
from tests.integration.harness import (
    BIN,
    MLTRL,
    Operator,
    Sandbox,
    clock_at,
    condition,
    eventually,
    running_on_clock,
    stamp,
)
from tests.integration.operator.scenarios import STAMPED_AT, model, policy, review, technology
from tests.integration.operator.test_reviews import wait_for_level, wait_for_phase

pytestmark = pytest.mark.integration

T0 = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def clock_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return clock_at(tmp_path_factory.mktemp("clock"), T0)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory,
            clock_file: Path) -> Iterator[tuple[Sandbox, Operator]]:
    with running_on_clock(tmp_path_factory.mktemp("lifecycle"), clock_file) as both:
        yield both


def level_keeping_review(
    name: str, namespace: str, technology_name: str, level: int, type_: str, *,
    names: str | None = None, approved_on: str | None = None,
    approvers: tuple[tuple[str, str], ...] = (("bob", "qa"),),
) -> dict[str, Any]:
    """A change (naming model `names`) or recertify review of `level`, its approvals
    stamped as the admission webhook would, on the technology's model `approved_on`."""
    spec: dict[str, Any] = {
        "technology": technology_name, "type": type_, "fromLevel": level, "toLevel": level,
        "evidence": [{"name": "unit-tests", "kind": "check", "passed": True,
                      "uri": "https://ci.example.com/run/2"}],
        "approvals": [{"reviewer": r, "role": role, "decision": "approve"}
                      for r, role in approvers],
    }
    if names is not None:
        spec["model"] = {"version": names,
                         "storageUri": f"s3://models/{technology_name}/{names}"}
    content = review_content(
        LevelReviewSpec.model_validate({**spec, "approvals": []}),
        ModelSpec.model_validate(model(technology_name, approved_on)) if approved_on else None,
    )
    for approval in spec["approvals"]:
        approval["approvedBy"] = make_stamp(approval["reviewer"], [], STAMPED_AT, content)
    return {"apiVersion": "mltrl.dev/v1alpha1", "kind": "LevelReview",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def status_of(sandbox: Sandbox, name: str, namespace: str) -> dict[str, Any]:
    return dict((sandbox.get("mltech", name, namespace) or {}).get("status") or {})


def served_uri(sandbox: Sandbox, name: str, namespace: str) -> str:
    """The InferenceService's storageUri as kubectl shows it."""
    return sandbox.kubectl("get", "isvc", name, "-n", namespace, "-o",
                           "jsonpath={.spec.predictor.model.storageUri}").stdout.strip()


def stopped(sandbox: Sandbox, name: str, namespace: str) -> bool:
    return sandbox.kubectl(
        "get", "isvc", name, "-n", namespace, "-o",
        "jsonpath={.metadata.annotations.serving\\.kserve\\.io/stop}").stdout.strip() == "true"


def serving_at_5(sandbox: Sandbox, name: str, namespace: str) -> dict[str, Any]:
    """Entered at 4 with 1.4.0, promoted to 5 by bob: 1.4.0 serves."""
    sandbox.apply(technology(name, namespace, entry_level=4, model_version="1.4.0"))
    wait_for_level(sandbox, name, namespace, 4)
    sandbox.apply(review(f"{name}-to-5", namespace, name, 4, 5, model_version="1.4.0"))
    promoted = wait_for_level(sandbox, name, namespace, 5)
    eventually(lambda: served_uri(sandbox, name, namespace).endswith("/1.4.0"),
               what=f"{name} to serve 1.4.0")
    return promoted


def ship(sandbox: Sandbox, user: str, name: str, namespace: str, version: str) -> None:
    patch = json.dumps({"spec": {"model": model(name, version)}})
    sandbox.as_user(user, "patch", "mltech", name, "-n", namespace, "--type=merge",
                    "-p", patch, check=True)


def plugin_status(sandbox: Sandbox, name: str, namespace: str, command: str = "status") -> str:
    """`kubectl mltrl status` (or history), found by real kubectl's plugin lookup on PATH."""
    env = {**os.environ, "KUBECONFIG": str(sandbox.kubeconfig),
           "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run([str(BIN / "kubectl"), "mltrl", command, name, "-n", namespace],
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def audit_entries(sandbox: Sandbox, namespace: str, name: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        [str(MLTRL), "audit", "export", f"{namespace}/{name}", "--kubeconfig",
         str(sandbox.kubeconfig)], capture_output=True, text=True, timeout=60)
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def audit_kinds(sandbox: Sandbox, namespace: str, name: str) -> list[str]:
    return [entry["kind"] for entry in audit_entries(sandbox, namespace, name)]


def test_a_new_model_is_held_until_its_change_review_and_the_old_one_serves_meanwhile(
    sandbox: Sandbox, namespace: str
) -> None:
    sandbox.apply(policy(f"{namespace}-prod", namespace))
    promoted = serving_at_5(sandbox, "scorer", namespace)
    assert promoted["approvedModel"]["version"] == "1.4.0"

    # mallory, an editor, ships 1.5.0 without a review: it is held, 1.4.0 keeps serving.
    ship(sandbox, "mallory", "scorer", namespace, "1.5.0")
    held = eventually(lambda: (s := status_of(sandbox, "scorer", namespace)).get(
        "pendingModel") and s, what="1.5.0 to wait for a change review")
    assert held["pendingModel"]["version"] == "1.5.0"
    assert "1.4.0 keeps serving" in held["pendingModel"]["reason"]
    approved = condition({"status": held}, "ModelApproved")
    assert approved is not None
    assert (approved["status"], approved["reason"]) == ("False", "PendingChangeReview")
    sandbox.settle(quiet_for=2.0)
    assert served_uri(sandbox, "scorer", namespace) == "s3://models/scorer/1.4.0"
    events = sandbox.kubectl("get", "events", "-n", namespace, "--field-selector",
                             "reason=ModelChangeHeld", "-o", "name").stdout
    assert events.strip(), "a ModelChangeHeld event"
    told = plugin_status(sandbox, "scorer", namespace)
    assert "Model:    1.5.0 waits for a change review" in told, told
    assert f"kubectl mltrl review new scorer --type change -n {namespace}" in told, told
    # `kubectl get mltech -o wide` shows the approved model serving and the held one.
    wide = sandbox.kubectl("get", "mltech", "scorer", "-n", namespace, "-o", "wide").stdout
    header, row = wide.splitlines()[:2]
    # Columns are aligned under their headers (a level name has spaces in it).
    starts = [m.start() for m in re.finditer(r"\S+", header)]
    shown = {header[a:b].strip(): row[a:b].strip()
             for a, b in zip(starts, [*starts[1:], None], strict=True)}
    assert (shown["APPROVED-MODEL"], shown["PENDING-MODEL"], shown["CERTIFIED"]) == (
        "1.4.0", "1.5.0", "NoExpiry"), wide

    # Walk-arounds: the status is the operator's; the InferenceService is set back.
    cleared = sandbox.as_user("mallory", "patch", "mltech", "scorer", "-n", namespace,
                              "--subresource=status", "--type=merge",
                              "-p", '{"status":{"pendingModel":null}}')
    assert cleared.returncode != 0 and "forbidden" in cleared.stderr.lower(), cleared.stderr
    # mallory may edit InferenceServices (KServe's edit role): the operator sets its own back.
    sandbox.as_user("mallory", "patch", "isvc", "scorer", "-n", namespace, "--type=merge",
                    "-p", json.dumps({"spec": {"predictor": {"model": {
                        "storageUri": "s3://models/scorer/1.5.0"}}}}), check=True)
    eventually(lambda: served_uri(sandbox, "scorer", namespace) == "s3://models/scorer/1.4.0",
               what="the operator to set its InferenceService back to the approved model")
    # Nor may an InferenceService of mallory's own serve the held model for scorer.
    sandbox.as_user("mallory", "apply", "-f", "-", check=True, input=json.dumps({
        "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
        "metadata": {"name": "shadow", "namespace": namespace,
                     "labels": {"mltrl.dev/technology": "scorer"}},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"},
                                         "storageUri": "s3://models/scorer/1.5.0"}}}}))
    eventually(lambda: stopped(sandbox, "shadow", namespace),
               what="the operator to stop a foreign InferenceService serving the held model")
    # A change review naming another model is Invalid, with the reason.
    sandbox.apply(level_keeping_review("scorer-change-1.4.9", namespace, "scorer", 5,
                                       "change", names="1.4.9", approved_on="1.5.0"))
    invalid = wait_for_phase(sandbox, "scorer-change-1.4.9", namespace, "Invalid")
    assert "spec.model: Invalid: 1.4.9 is not the pending model (1.5.0)" in invalid["message"]
    # Approvals given while the technology held 1.4.0 do not approve 1.5.0.
    sandbox.apply(level_keeping_review("scorer-change-stale", namespace, "scorer", 5,
                                       "change", names="1.5.0", approved_on="1.4.0"))
    stale = wait_for_phase(sandbox, "scorer-change-stale", namespace, "Pending")
    assert any("spec.model changed" in d["reason"] for d in stale["dismissedApprovals"]), stale
    sandbox.settle(quiet_for=2.0)
    assert served_uri(sandbox, "scorer", namespace) == "s3://models/scorer/1.4.0"

    # The change review, approved by bob on 1.5.0: applied, 1.5.0 rolls out.
    sandbox.apply(level_keeping_review("scorer-change-1.5.0", namespace, "scorer", 5,
                                       "change", names="1.5.0", approved_on="1.5.0"))
    wait_for_phase(sandbox, "scorer-change-1.5.0", namespace, "Applied")
    eventually(lambda: served_uri(sandbox, "scorer", namespace).endswith("/1.5.0"),
               what="1.5.0 to serve once its change review is applied")
    after = status_of(sandbox, "scorer", namespace)
    assert after["level"] == 5 and "pendingModel" not in after
    assert after["approvedModel"]["version"] == "1.5.0"
    assert [m["version"] for m in after["approvedModels"]] == ["1.4.0"]
    last = after["history"][-1]
    assert (last["kind"], last["from"], last["to"], last["review"]) == (
        "change", 5, 5, "scorer-change-1.5.0")
    # The record also keeps the stale review's dismissed approvals (before the change).
    assert eventually(lambda: "changeApproval" in (k := audit_kinds(sandbox, namespace,
                                                                      "scorer")) and k,
                      what="the change approval in the audit record") == [
        "entry", "promotion", "dismissedApprovals", "changeApproval"]
    (dismissal,) = [e for e in audit_entries(sandbox, namespace, "scorer")
                    if e["kind"] == "dismissedApprovals"]
    assert dismissal["review"] == "scorer-change-stale", dismissal
    history = plugin_status(sandbox, "scorer", namespace, "history")
    assert "change" in history and "scorer-change-1.5.0" in history, history
    # Going back to 1.4.0, approved before, is not a change: it serves at once.
    ship(sandbox, "alice", "scorer", namespace, "1.4.0")
    eventually(lambda: served_uri(sandbox, "scorer", namespace).endswith("/1.4.0"),
               what="the known-good 1.4.0 to serve without a review")
    assert "pendingModel" not in status_of(sandbox, "scorer", namespace)


def test_a_demote_rule_makes_a_new_model_an_embedded_switchback(
    sandbox: Sandbox, namespace: str
) -> None:
    body = policy(f"{namespace}-prod", namespace)
    body["spec"]["modelChange"] = [{"fromLevel": 5, "action": "demote", "toLevel": 4}]
    sandbox.apply(body)
    serving_at_5(sandbox, "ranker", namespace)
    ship(sandbox, "alice", "ranker", namespace, "2.0.0")
    demoted = wait_for_level(sandbox, "ranker", namespace, 4)
    last = demoted["history"][-1]
    assert (last["kind"], last["switchbackType"], last["from"], last["to"]) == (
        "switchback", "embedded", 5, 4)
    assert "material change" in last["reason"]
    assert demoted["approvedModel"]["version"] == "2.0.0"
    eventually(lambda: stopped(sandbox, "ranker", namespace),
               what="serving to stop below the serving level")
    assert eventually(lambda: "switchback" in (k := audit_kinds(sandbox, namespace,
                                                                 "ranker")) and k,
                      what="the switchback in the audit record") == [
        "entry", "promotion", "switchback"]


def test_a_level_lapses_at_its_instant_and_a_recertify_review_renews_it(
    sandbox: Sandbox, namespace: str, clock_file: Path
) -> None:
    body = policy(f"{namespace}-prod", namespace)
    for requirement in body["spec"]["requirements"]:
        if requirement["level"] == 5:
            requirement.update(validFor="720h", warnBefore="48h", onExpiry="stop")
    sandbox.apply(body)
    promoted = serving_at_5(sandbox, "churn", namespace)
    reviewed = datetime.strptime(promoted["history"][-1]["at"], "%Y-%m-%dT%H:%M:%SZ")
    lapse = reviewed.replace(tzinfo=UTC) + timedelta(hours=720)
    certified = condition({"status": promoted}, "Certified")
    assert certified is not None and (certified["status"], certified["reason"]) == (
        "True", "Current")
    assert stamp(lapse) in certified["message"]

    # 47 hours before: a warning, still certified.
    clock_file.write_text(stamp(lapse - timedelta(hours=47)))
    warned = eventually(
        lambda: (c := condition({"status": status_of(sandbox, "churn", namespace)},
                                "Certified")) and c["reason"] == "ExpiringSoon" and c,
        what="the warning before the lapse")
    assert warned["status"] == "True"
    assert sandbox.kubectl("get", "events", "-n", namespace, "--field-selector",
                           "reason=CertificationExpiring", "-o", "name").stdout.strip()
    # One second before: nothing changes.
    clock_file.write_text(stamp(lapse - timedelta(seconds=1)))
    sandbox.settle(quiet_for=3.0)
    before = condition({"status": status_of(sandbox, "churn", namespace)}, "Certified")
    assert before is not None and before["status"] == "True"
    assert not stopped(sandbox, "churn", namespace)
    # At the instant, by the timer: Certified=False, Expired, and onExpiry stop.
    clock_file.write_text(stamp(lapse))
    expired = eventually(
        lambda: (c := condition({"status": status_of(sandbox, "churn", namespace)},
                                "Certified")) and c["status"] == "False" and c,
        what="the level to lapse at its instant")
    assert expired["reason"] == "Expired"
    assert expired["lastTransitionTime"] == stamp(lapse)
    eventually(lambda: stopped(sandbox, "churn", namespace), what="onExpiry stop")
    status = status_of(sandbox, "churn", namespace)
    gate = condition({"status": status}, "ServingAllowed")
    assert gate is not None and (gate["status"], gate["reason"]) == (
        "False", "CertificationLapsed")
    assert (status["history"][-1]["kind"], status["history"][-1]["at"]) == (
        "lapse", stamp(lapse))
    assert status["level"] == 5
    told = plugin_status(sandbox, "churn", namespace)
    assert "Certified: NO (Expired): level 5 lapsed at" in told, told
    assert f"kubectl mltrl review new churn --type recertify -n {namespace}" in told, told

    # A recertify review renews it, and serving resumes.
    clock_file.write_text(stamp(lapse + timedelta(hours=2)))
    sandbox.apply(level_keeping_review("churn-recertify-5", namespace, "churn", 5,
                                       "recertify", approved_on="1.4.0"))
    wait_for_phase(sandbox, "churn-recertify-5", namespace, "Applied")
    renewed = eventually(
        lambda: (c := condition({"status": status_of(sandbox, "churn", namespace)},
                                "Certified")) and c["status"] == "True" and c,
        what="the recertify review to renew level 5")
    assert renewed["reason"] == "Current"
    assert stamp(lapse + timedelta(hours=2 + 720)) in renewed["message"]
    eventually(lambda: not stopped(sandbox, "churn", namespace), what="serving to resume")
    assert status_of(sandbox, "churn", namespace)["history"][-1]["kind"] == "recertification"
    assert eventually(lambda: "recertification" in (k := audit_kinds(sandbox, namespace,
                                                                      "churn")) and k,
                      what="the record") == ["entry", "promotion", "lapse", "recertification"]
