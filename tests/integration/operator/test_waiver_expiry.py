"""A waiver counts until its expiry and stops at that second: the operator runs on a clock
the test moves by days (`mltrl run --clock-file`), and a timer, not a resync, re-decides."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import MLTRL, Operator, Sandbox, eventually, running
from tests.integration.operator.scenarios import policy, technology
from tests.integration.operator.test_reviews import wait_for_level

pytestmark = pytest.mark.integration

T0 = datetime.now(UTC).replace(microsecond=0)
EXPIRES = T0 + timedelta(days=3)


def stamp(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def clock_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clock") / "now"
    path.write_text(stamp(T0))
    return path


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory,
            clock_file: Path) -> Iterator[tuple[Sandbox, Operator]]:
    def on_fake_time(sandbox: Sandbox) -> Operator:
        operator = Operator(sandbox, sandbox.workdir / "operator.log")
        operator.process.args += ["--clock-file", str(clock_file)]
        return operator

    with running(tmp_path_factory.mktemp("waivers"), operator=on_fake_time) as both:
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
