"""A pod that does not stop on SIGTERM holds its peering until SIGKILL and delays every
rollout: `mltrl run` and `mltrl sandbox` stop within 5 s of SIGTERM or SIGINT, sign out of
the peering, print no traceback, and a second signal ends them at once. Ports already taken
are one line naming the flag."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.harness import MLTRL, Operator, Process, Sandbox, eventually, free_port
from tests.integration.operator.test_high_availability import (
    PEERING,
    peer_priorities,
    with_peering,
)

pytestmark = pytest.mark.integration

STOP_WITHIN = 5.0
REPETITIONS = 20


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    started = Sandbox(tmp_path_factory.mktemp("sandbox"), kserve=False)
    try:  # stopped even if it never answers
        with_peering(started.start())
        yield started
    finally:
        started.stop()


def stop_with(process: subprocess.Popen[bytes], sig: signal.Signals) -> float:
    """Send `sig` to the process alone (as the kubelet does to a container's PID 1) and
    return how long it took to exit."""
    started = time.monotonic()
    process.send_signal(sig)
    try:
        process.wait(timeout=STOP_WITHIN * 3)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError(f"still running {STOP_WITHIN * 3}s after {sig.name}") from None
    return time.monotonic() - started


@pytest.mark.parametrize("round_", range(REPETITIONS))
def test_sigterm_stops_mltrl_run_within_5s_and_signs_out_of_the_peering(
    sandbox: Sandbox, tmp_path: Path, round_: int
) -> None:
    operator = Operator(sandbox, tmp_path / "operator.log")
    name = f"replica-{round_}"
    operator.process = Process(
        [str(MLTRL), "run", "--kubeconfig", str(sandbox.kubeconfig),
         "--liveness", f"http://127.0.0.1:{operator.health_port}/healthz",
         f"--peering={PEERING}", "--priority", str(100 + round_)],
        tmp_path / "operator.log", env={"POD_ID": name},
    )
    operator.start()
    eventually(lambda: name in peer_priorities(sandbox), what=f"{name} in the peering")
    assert operator.process.popen is not None
    took = stop_with(operator.process.popen, signal.SIGTERM if round_ % 4 else signal.SIGINT)
    output = operator.process.output()
    assert took < STOP_WITHIN, f"took {took:.1f}s to stop\n{output}"
    assert operator.process.popen.returncode == 0, output
    assert "Traceback" not in output, output
    assert name not in peer_priorities(sandbox), "it left without signing out of the peering"


def test_a_second_signal_ends_it_at_once(sandbox: Sandbox, tmp_path: Path) -> None:
    operator = Operator(sandbox, tmp_path / "operator.log").start()
    popen = operator.process.popen
    assert popen is not None
    popen.send_signal(signal.SIGTERM)
    # Two signals sent back to back can reach a busy process as one (a signal pending is
    # not queued twice): the second goes once the first was taken.
    eventually(lambda: "SIGTERM received: stopping" in operator.process.output(),
               interval=0.01, what=f"the first SIGTERM taken\n{operator.process.output()}")
    popen.send_signal(signal.SIGTERM)
    popen.wait(timeout=STOP_WITHIN)
    output = operator.process.output()
    assert "Traceback" not in output and "InvalidStateError" not in output, output


@pytest.mark.parametrize(("sig", "when"), [
    (signal.SIGTERM, "Admission webhooks: https://"),
    (signal.SIGINT, "Admission webhooks: https://"),
    # While kopf is still starting its watches: the moment a full run once caught.
    (signal.SIGTERM, "Press Ctrl-C to stop."),
    (signal.SIGTERM, "cache primed"),
], ids=["sigterm", "sigint", "sigterm-while-starting", "sigterm-as-it-starts-watching"])
def test_the_sandbox_with_webhooks_stops_within_5s(
    tmp_path: Path, sig: signal.Signals, when: str
) -> None:
    port = free_port()
    process = Process([str(MLTRL), "sandbox", "--webhooks", "--port", str(port),
                       "--dir", str(tmp_path)], tmp_path / "sandbox.log").start()
    assert process.popen is not None
    try:
        eventually(lambda: when in process.output(), timeout=60, interval=0.01,
                   what=f"{when!r} in the output\n{process.output()}")
        took = stop_with(process.popen, sig)
    finally:
        process.kill()
    output = process.output()
    assert took < STOP_WITHIN, f"took {took:.1f}s to stop\n{output}"
    assert process.popen.returncode == 0, output
    assert "Traceback" not in output and "InvalidStateError" not in output, output


@pytest.mark.parametrize("command,flag", [
    (["run", "--kubeconfig", "{kubeconfig}", "--metrics-port"], "--metrics-port"),
    (["run", "--kubeconfig", "{kubeconfig}", "--alerts-token-file", "{token}",
      "--alerts-port"], "--alerts-port"),
    (["sandbox", "--dir", "{dir}", "--port"], "--port"),
])
def test_a_port_in_use_is_one_line_naming_the_flag(
    sandbox: Sandbox, tmp_path: Path, command: list[str], flag: str
) -> None:
    (tmp_path / "token").write_text("a-token\n")
    values = {"kubeconfig": str(sandbox.kubeconfig), "dir": str(tmp_path),
              "token": str(tmp_path / "token")}
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = [part.format(**values) for part in command] + [str(port)]
        result = subprocess.run([str(MLTRL), *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"mltrl {command[0]}: {flag} {port}: the port is in use; "
                               f"choose another with {flag}"), lines


def test_help_shows_the_defaults() -> None:
    result = subprocess.run([str(MLTRL), "run", "--help"], capture_output=True, text=True,
                            timeout=30, check=True)
    text = " ".join(result.stdout.split())
    assert "--qps QPS" in text and "(default: 0.0)" in text
    assert "--burst BURST" in text and "(default: 100)" in text
    result = subprocess.run([str(MLTRL), "sandbox", "--help"], capture_output=True, text=True,
                            timeout=30, check=True)
    assert "(default: 8001)" in " ".join(result.stdout.split())
