"""Subprocesses the benchmark starts (sandbox, operator, bare kopf), and what they cost.

Each runs in a session of its own, so stopping it takes its whole process group; every
caller stops them in `finally`. Memory comes from /proc: VmHWM is the peak resident set.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
MLTRL = str(Path(PYTHON).parent / "mltrl")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_LIVE: set[Proc] = set()


@atexit.register
def _kill_leftovers() -> None:
    """A last resort: whatever a failed run did not stop, goes with the interpreter."""
    for proc in list(_LIVE):
        proc.stop(timeout=2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _status_kib(pid: int, field: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def mib(kib: int | None) -> float | None:
    return None if kib is None else round(kib / 1024, 1)


class Proc:
    """One child process in its own session; `stop()` ends its whole process group."""

    def __init__(self, name: str, args: list[str], log: Path) -> None:
        self.name = name
        self.args = args
        self.log = log
        self.popen: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    def start(self) -> Proc:
        handle = self.log.open("ab")
        try:
            self.started_at = time.perf_counter()
            self.popen = subprocess.Popen(
                self.args, stdout=handle, stderr=subprocess.STDOUT, cwd=REPO,
                start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        finally:
            handle.close()
        _LIVE.add(self)
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} was not started"
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def check_alive(self) -> None:
        if self.popen is not None and self.popen.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with {self.popen.returncode}:\n{self.tail()}"
            )

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def peak_rss_kib(self) -> int | None:
        return _status_kib(self.pid, "VmHWM") if self.alive() else None

    def rss_kib(self) -> int | None:
        return _status_kib(self.pid, "VmRSS") if self.alive() else None

    def cpu_seconds(self) -> float | None:
        """User + system CPU time so far."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError, AssertionError):
            return None
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def stop(self, timeout: float = 15.0) -> None:
        _LIVE.discard(self)
        if self.popen is None:
            return
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)
            except ProcessLookupError:
                pass
        # Anything the child left behind in its group goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)


async def wait_for(
    probe_ready: object, proc: Proc, *, timeout: float, what: str, interval: float = 0.05
) -> None:
    """Poll an async probe until it returns True; fail early if the process died."""
    assert callable(probe_ready)
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        proc.check_alive()
        if await probe_ready():
            return
        await asyncio.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}\n{proc.tail()}")
