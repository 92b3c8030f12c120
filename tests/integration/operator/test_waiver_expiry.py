"""A waiver counts until its expiry and stops at that second: the operator runs on a clock
the test moves by days (`mltrl run --clock-file`), and a timer, not a resync, re-decides."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import (
    MLTRL,
    Operator,
    Sandbox,
    clock_at,
    clock_now,
    condition,
    eventually,
    running_on_clock,
    stamp,
)
from tests.integration.operator.scenarios import policy, review, technology
from tests.integration.operator.test_audit_record import exported
from tests.integration.operator.test_reviews import wait_for_level, wait_for_phase

pytestmark = pytest.mark.integration

T0 = datetime.now(UTC).replace(microsecond=0)
EXPIRES = T0 + timedelta(days=3)


@pytest.fixture(scope="module")
def clock_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return clock_at(tmp_path_factory.mktemp("clock"), T0)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory,
            clock_file: Path) -> Iterator[tuple[Sandbox, Operator]]:
    with running_on_clock(tmp_path_factory.mktemp("waivers"), clock_file) as both:
        yield both


def waivers_cli(sandbox: Sandbox, *args: str) -> str:
    result = subprocess.run(
        [str(MLTRL), "waivers", *args, "--kubeconfig", str(sandbox.kubeconfig)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def waiver_status(sandbox: Sandbox, namespace: str) -> dict[str, Any]:
    return dict((sandbox.get("mltrlwaiver", "bias-audit", namespace) or {}).get("status") or {})


def test_a_waiver_applies_until_its_expiry_and_stops_at_that_second(
    sandbox: Sandbox, namespace: str, clock_file: Path
) -> None:
    body = policy(f"{namespace}-prod", namespace)
    body["spec"]["waivers"] = {"maxDuration": "336h", "approvers": [{"users": ["dana"]}]}
    sandbox.apply(body)
    sandbox.apply(technology("scorer", namespace, entry_level=5))
    wait_for_level(sandbox, "scorer", namespace, 5)
    sandbox.apply({
        "apiVersion": "mltrl.dev/v1alpha1", "kind": "MLTRLWaiver",
        "metadata": {"name": "bias-audit", "namespace": namespace},
        "spec": {
            "technology": "scorer", "reason": "the bias audit is booked",
            "ticket": "RISK-12", "expiresAt": stamp(EXPIRES),
            "waives": {"servingMinimum": 4},
            # This sandbox runs without webhooks: the approval is written as stamped.
            "approvals": [{"approver": "dana", "groups": [], "time": stamp(T0)}],
        },
    })
    active = eventually(lambda: (s := waiver_status(sandbox, namespace)).get("active") and s,
                        what="the waiver to apply")
    assert active["message"] == f"approved by dana; counts until {stamp(EXPIRES)}"
    listed = sandbox.kubectl("get", "mltrlwaiver", "-n", namespace).stdout
    assert "bias-audit" in listed and "true" in listed

    # The CLI asks the same decision, now or at any instant.
    now = waivers_cli(sandbox, f"{namespace}/scorer")
    assert f"bias-audit  yes     approved by dana; counts until {stamp(EXPIRES)}" in now
    later = waivers_cli(sandbox, f"{namespace}/scorer", "--at", stamp(EXPIRES))
    assert f"bias-audit  no      expired at {stamp(EXPIRES)}" in later

    clock_file.write_text(stamp(EXPIRES - timedelta(seconds=1)))
    settled = sandbox.settle(quiet_for=3.0)
    assert waiver_status(sandbox, namespace)["active"] is True, settled["writes"]

    clock_file.write_text(stamp(EXPIRES))
    expired = eventually(
        lambda: (s := waiver_status(sandbox, namespace)).get("active") is False and s,
        what="the waiver to stop at its expiry",
    )
    assert expired["message"] == f"expired at {stamp(EXPIRES)}"
    (condition,) = expired["conditions"]
    assert (condition["type"], condition["status"], condition["reason"]) == (
        "Active", "False", "Expired")
    assert condition["lastTransitionTime"] == stamp(EXPIRES)  # at that second, by the timer


# --- what a waiver allows: the serving gate and a review (issue 15, integrated) -------------


def approved_waiver(name: str, namespace: str, technology_name: str, waives: dict[str, Any],
                    *, expires: datetime, approved_at: datetime,
                    approver: str = "dana") -> dict[str, Any]:
    return {
        "apiVersion": "mltrl.dev/v1alpha1", "kind": "MLTRLWaiver",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "technology": technology_name, "reason": "the load test is booked",
            "ticket": "RISK-31", "expiresAt": stamp(expires), "waives": waives,
            # Without webhooks here: the approval as the mutating webhook stamps it.
            "approvals": [{"approver": approver, "groups": [], "time": stamp(approved_at)}],
        },
    }


def serving_of(sandbox: Sandbox, name: str, namespace: str) -> dict[str, Any]:
    return dict(((sandbox.get("mltech", name, namespace) or {}).get("status") or {})
                .get("serving") or {})


def test_a_waiver_lets_a_technology_serve_below_the_minimum_until_the_second_it_expires(
    sandbox: Sandbox, namespace: str, clock_file: Path
) -> None:
    now = clock_now(clock_file)
    expires = now + timedelta(days=2)
    body = policy(f"{namespace}-prod", namespace, minimum_level=6, on_demotion="stop")
    body["spec"]["waivers"] = {"maxDuration": "336h", "approvers": [{"users": ["dana"]}]}
    sandbox.apply(body)
    sandbox.apply(technology("ranker", namespace, entry_level=5, model_version="1.0.0"))
    wait_for_level(sandbox, "ranker", namespace, 5)
    assert eventually(lambda: serving_of(sandbox, "ranker", namespace).get("state") == "Blocked")
    assert sandbox.get("isvc", "ranker", namespace) is None

    # A waiver nobody the policy names approved counts for nothing: still blocked.
    sandbox.apply(approved_waiver("load-test", namespace, "ranker", {"servingMinimum": 5},
                                  expires=expires, approved_at=now, approver="mallory"))
    eventually(lambda: "not approved" in (waiver_status_of(sandbox, "load-test", namespace)
                                          .get("message") or ""), what="the waiver refused")
    sandbox.settle(quiet_for=2.0)
    assert sandbox.get("isvc", "ranker", namespace) is None

    # Approved by dana, whom the policy names: the gate opens at level 5.
    sandbox.apply(approved_waiver("load-test", namespace, "ranker", {"servingMinimum": 5},
                                  expires=expires, approved_at=now))
    isvc = eventually(lambda: sandbox.get("isvc", "ranker", namespace),
                      what="the InferenceService the waiver allows")
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == "s3://models/ranker/1.0.0"
    serving = eventually(lambda: (s := serving_of(sandbox, "ranker", namespace)).get("waiver")
                         and s, what="status.serving.waiver")
    assert serving["allowed"] is True and serving["requiredLevel"] == 5
    assert serving["waiver"] == {"name": "load-test", "waived": ["servingMinimum 6 -> 5"],
                                 "approvedBy": ["dana"], "expiresAt": stamp(expires),
                                 "since": stamp(now)}
    allowed = condition(sandbox.get("mltech", "ranker", namespace), "ServingAllowed")
    assert allowed is not None and allowed["status"] == "True"
    assert (f"serving requires level 5 (policy {namespace}-prod requires 6, lowered by waiver "
            f"load-test until {stamp(expires)})") in allowed["message"]
    shown = sandbox.kubectl("get", "isvc", "ranker", "-n", namespace).stdout
    assert "ranker" in shown
    # A canary someone else runs for ranker passes the same gate, by the same waiver.
    sandbox.apply({
        "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
        "metadata": {"name": "ranker-canary", "namespace": namespace,
                     "labels": {"mltrl.dev/technology": "ranker"}},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"},
                                         "storageUri": "s3://models/ranker/1.0.0"}}},
    })

    # One second before the expiry it still serves.
    clock_file.write_text(stamp(expires - timedelta(seconds=1)))
    sandbox.settle(quiet_for=3.0)
    still = sandbox.get("isvc", "ranker", namespace)
    assert still is not None
    assert still["metadata"].get("annotations", {}).get("serving.kserve.io/stop") != "true"

    canary = sandbox.get("isvc", "ranker-canary", namespace)
    assert canary is not None
    assert canary["metadata"].get("annotations", {}).get("serving.kserve.io/stop") != "true"

    # At the expiry, that very second: the gate closes and onDemotion (stop) stops it.
    clock_file.write_text(stamp(expires))
    stopped = eventually(
        lambda: (i := sandbox.get("isvc", "ranker", namespace)) and
        i["metadata"].get("annotations", {}).get("serving.kserve.io/stop") == "true" and i,
        what="the InferenceService stopped at the waiver's expiry",
    )
    assert stopped
    shown = sandbox.kubectl("get", "isvc", "ranker", "-n", namespace, "-o",
                            "jsonpath={.metadata.annotations.serving\\.kserve\\.io/stop}").stdout
    assert shown == "true"
    eventually(lambda: (sandbox.get("isvc", "ranker-canary", namespace) or {}).get(
        "metadata", {}).get("annotations", {}).get("serving.kserve.io/stop") == "true",
        what="the canary stopped with it")
    closed = condition(sandbox.get("mltech", "ranker", namespace), "ServingAllowed")
    assert closed is not None
    assert (closed["status"], closed["reason"]) == ("False", "LevelBelowServingRequirement")
    assert closed["lastTransitionTime"] == stamp(expires)
    assert "serving requires level 6" in closed["message"]
    final = eventually(lambda: (s := serving_of(sandbox, "ranker", namespace)).get("state")
                       == "Stopped" and s, what="the technology to report Stopped")
    assert "waiver" not in final
    # The record says the waiver was used for serving, once, by whose approval.
    uses = [e for e in exported(sandbox, f"{namespace}/ranker") if e["kind"] == "waiverUse"]
    assert [(e["waiver"], e["details"]["usedFor"], e["by"]) for e in uses] == [
        ("load-test", "serving", ["dana"])]
    assert uses[0]["details"]["expiresAt"] == stamp(expires)
    assert uses[0]["time"] == stamp(now)  # when the waiver started keeping the gate open


def waiver_status_of(sandbox: Sandbox, name: str, namespace: str) -> dict[str, Any]:
    return dict((sandbox.get("mltrlwaiver", name, namespace) or {}).get("status") or {})


def test_a_waiver_of_one_evidence_name_lets_a_review_through_and_an_expired_one_does_not(
    sandbox: Sandbox, namespace: str, clock_file: Path
) -> None:
    now = clock_now(clock_file)
    requirements = [{"level": level, "minApprovals": 1, "requiredRoles": ["qa"],
                     "evidence": [{"name": "unit-tests", "kind": "check"}]}
                    for level in range(1, 10)]
    requirements[5]["evidence"].append({"name": "bias-audit", "kind": "document"})  # level 6
    body = policy(f"{namespace}-prod", namespace, requirements=requirements)
    body["spec"]["waivers"] = {"maxDuration": "336h", "approvers": [{"users": ["dana"]}]}
    sandbox.apply(body)
    for name in ("scorer", "pricer"):
        sandbox.apply(technology(name, namespace, entry_level=5))
        wait_for_level(sandbox, name, namespace, 5)

    # pricer's waiver ran out an hour ago (the clock moved past it).
    sandbox.apply(approved_waiver("pricer-bias", namespace, "pricer",
                                  {"level": 6, "evidence": ["bias-audit"]},
                                  expires=now + timedelta(minutes=10), approved_at=now))
    eventually(lambda: waiver_status_of(sandbox, "pricer-bias", namespace).get("active"),
               what="pricer's waiver to apply")
    later = now + timedelta(hours=1)
    clock_file.write_text(stamp(later))
    eventually(lambda: waiver_status_of(sandbox, "pricer-bias", namespace).get("active") is False,
               what="pricer's waiver to expire")

    for name in ("scorer", "pricer"):
        sandbox.apply(review(f"{name}-to-6", namespace, name, 5, 6))
    for name in ("scorer", "pricer"):
        pending = wait_for_phase(sandbox, f"{name}-to-6", namespace, "Pending")
        assert pending["unmet"] == ["missing document 'bias-audit'"], pending
        assert not pending.get("waivers")

    # The waiver of bias-audit at level 6, approved by dana: scorer's review goes through.
    sandbox.apply(approved_waiver("scorer-bias", namespace, "scorer",
                                  {"level": 6, "evidence": ["bias-audit"]},
                                  expires=later + timedelta(days=3), approved_at=later))
    applied = wait_for_phase(sandbox, "scorer-to-6", namespace, "Applied")
    (use,) = applied["waivers"]
    assert use == {"name": "scorer-bias", "waived": ["evidence bias-audit"],
                   "approvedBy": ["dana"], "expiresAt": stamp(later + timedelta(days=3))}
    status = wait_for_level(sandbox, "scorer", namespace, 6)
    assert status["history"][-1]["review"] == "scorer-to-6"
    assert status["history"][-1]["waivers"] == [use]
    # pricer, with only its expired waiver, still waits for the evidence.
    sandbox.settle(quiet_for=2.0)
    pricer = sandbox.get("levelreview", "pricer-to-6", namespace)
    assert pricer is not None and pricer["status"]["phase"] == "Pending"
    assert pricer["status"]["unmet"] == ["missing document 'bias-audit'"]
    assert (sandbox.get("mltech", "pricer", namespace) or {})["status"]["level"] == 5
    # scorer's record: the promotion, and the waiver's use for it.
    entries = exported(sandbox, f"{namespace}/scorer")
    assert [e["kind"] for e in entries] == ["entry", "promotion", "waiverUse"]
    assert entries[2]["waiver"] == "scorer-bias" and entries[2]["time"] == entries[1]["time"]
    assert entries[2]["reason"] == ("waiver scorer-bias used for review scorer-to-6: "
                                    "evidence bias-audit")


def served_uri(sandbox: Sandbox, name: str, namespace: str) -> str:
    return sandbox.kubectl("get", "isvc", name, "-n", namespace, "-o",
                           "jsonpath={.spec.predictor.model.storageUri}").stdout.strip()


def test_a_technology_serving_by_a_waiver_holds_a_new_model_for_its_change_review(
    sandbox: Sandbox, namespace: str, clock_file: Path
) -> None:
    # The walk-around: level 5 serves only by dana's waiver (the policy asks for 6); mallory,
    # an editor, ships a model nobody reviewed. Below the policy's minimum a new model would
    # inherit the level, but level 5 is where this technology serves: it is held.
    now = clock_now(clock_file)
    body = policy(f"{namespace}-prod", namespace, minimum_level=6)
    body["spec"]["waivers"] = {"maxDuration": "336h", "approvers": [{"users": ["dana"]}]}
    sandbox.apply(body)
    sandbox.apply(technology("pricer", namespace, entry_level=5, model_version="1.0.0"))
    wait_for_level(sandbox, "pricer", namespace, 5)
    sandbox.apply(approved_waiver("pricer-load", namespace, "pricer", {"servingMinimum": 5},
                                  expires=now + timedelta(days=2), approved_at=now))
    eventually(lambda: served_uri(sandbox, "pricer", namespace) == "s3://models/pricer/1.0.0",
               what="1.0.0 served by the waiver")

    sandbox.as_user("mallory", "patch", "mltech", "pricer", "-n", namespace, "--type=merge",
                    "-p", '{"spec": {"model": {"version": "1.1.0", "storageUri": '
                    '"s3://models/pricer/1.1.0", "format": "sklearn"}}}', check=True)
    status = eventually(
        lambda: (s := (sandbox.get("mltech", "pricer", namespace) or {}).get("status") or {})
        .get("pendingModel") and s, what="1.1.0 held for a change review")
    assert status["pendingModel"]["version"] == "1.1.0"
    assert "1.0.0 keeps serving" in status["pendingModel"]["reason"]
    sandbox.settle(quiet_for=2.0)
    assert served_uri(sandbox, "pricer", namespace) == "s3://models/pricer/1.0.0"
    serving = serving_of(sandbox, "pricer", namespace)
    assert serving["allowed"] is True and serving["waiver"]["name"] == "pricer-load"
