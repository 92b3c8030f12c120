"""Drive the sandbox and the operator as a user would: real processes, real kubectl."""

from __future__ import annotations

import base64
import contextlib
import functools
import itertools
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import yaml

# What KServe's install gives namespace editors and viewers (the sandbox's own copy).
from mltrl_sandbox.kserve import USER_ROLES as KSERVE_USER_ROLES

BIN = Path(sys.executable).parent
KUBECTL = BIN / "kubectl"
MLTRL = BIN / "mltrl"
REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "manifests" / "examples"

# The operator's service account, as the chart creates it (release mltrl-operator).
OPERATOR_USER = "system:serviceaccount:mltrl-system:mltrl-operator"
RBAC_KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
# People, bound as a platform team binds the chart's user roles: mltrl-viewer and
# mltrl-editor through the aggregation into view and edit; the others directly.
USER_ROLES: dict[str, tuple[str, ...]] = {
    "vera": ("view",),
    "alice": ("edit",),
    "mallory": ("edit",),
    "bob": ("edit", "mltrl-reviewer"),
    "carol": ("mltrl-reviewer",),
    "system:serviceaccount:ci:approver": ("mltrl-reviewer",),
    "paula": ("mltrl-policy-admin",),
    # The integrity suite's policy admin, who also hands technologies over (edit).
    "platform": ("edit", "mltrl-policy-admin"),
}


@functools.cache
def chart_rbac(values_json: str = "{}") -> list[dict[str, Any]]:
    """The chart's ServiceAccount, ClusterRoles and bindings, rendered by the real Helm
    engine (tools/render_manifests.py) with these values: the RBAC the operator and the
    users get in a cluster, not a copy of it."""
    from tests.delivery.support import tool

    rendered = tool("render_manifests").render_chart(json.loads(values_json))
    return [
        document
        for path, text in sorted(rendered.items())
        if not path.endswith("NOTES.txt")
        for document in yaml.safe_load_all(text)
        if document and document.get("kind") in RBAC_KINDS
    ]


def user_bindings() -> list[dict[str, Any]]:
    bindings = []
    for user, roles in USER_ROLES.items():
        account = user.split(":") if user.startswith("system:serviceaccount:") else None
        subject = ({"kind": "ServiceAccount", "namespace": account[2], "name": account[3]}
                   if account else
                   {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": user})
        for role in roles:
            bindings.append({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "metadata": {"name": f"{role}-{user.replace(':', '-')}"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                            "name": role},
                "subjects": [subject],
            })
    return bindings

T = TypeVar("T")


class Timeout(AssertionError):
    pass


def eventually(
    probe: Callable[[], T | None], *, timeout: float = 20.0, interval: float = 0.1, what: str = ""
) -> T:
    """Poll `probe` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise Timeout(f"timed out after {timeout}s waiting for {what or probe}; last saw {last!r}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Process:
    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.log = log
        self._env = {**os.environ, **(env or {})}
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        handle = self.log.open("ab")
        self.popen = subprocess.Popen(
            self.args, stdout=handle, stderr=subprocess.STDOUT, env=self._env,
            start_new_session=True,
        )
        return self

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to tidy up, as in a crash."""
        if self.popen and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)

    def stop(self) -> None:
        if self.popen and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class Sandbox:
    """`mltrl sandbox --no-operator` in a subprocess, plus kubectl against it.

    With `rbac`, it is a cluster with users: HTTPS, a token for the operator's service
    account and for each of USER_ROLES's people, and, once started, exactly the chart's
    RBAC (rendered with `chart_values`) and the people's bindings. `users` adds token
    users of its own (the sandbox then serves HTTPS too). kubectl acts as the admin
    (system:masters) unless told `as_user`.
    """

    def __init__(self, workdir: Path, *, kserve: bool = True, rbac: bool = False,
                 chart_values: dict[str, Any] | None = None,
                 users: tuple[str, ...] = ()) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.rbac = rbac
        self.chart_values = chart_values or {}
        args = [str(MLTRL), "sandbox", "--port", str(self.port), "--dir", str(workdir),
                "--no-operator"]
        if not kserve:
            args.append("--no-kserve")
        token_users = [*((OPERATOR_USER, *USER_ROLES) if rbac else ()), *users]
        for user in dict.fromkeys(token_users):
            args += ["--user", user]
        self.process = Process(args, workdir / "sandbox.log")
        self.kubeconfig = workdir / "kubeconfig"
        self.url = f"{'https' if token_users else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> Sandbox:
        self.process.start()
        eventually(
            lambda: self.kubeconfig.exists() and self._answers(), timeout=30,
            what=f"the sandbox to listen\n{self.process.output()}",
        )
        if self.rbac:
            self.install_rbac()
        return self

    def install_rbac(self) -> None:
        """What a platform team does: install the chart's RBAC, bind the people."""
        self.namespace("mltrl-system")
        self.apply([*chart_rbac(json.dumps(self.chart_values, sort_keys=True)),
                    *KSERVE_USER_ROLES, *user_bindings()])
        # ClusterRole aggregation is a controller: wait until edit carries the chart's rules
        eventually(lambda: self.as_user("alice", "auth", "can-i", "create", "mltechnologies",
                                        "-n", "default").stdout.strip() == "yes",
                   what="the chart's mltrl-editor to be aggregated into edit")

    def _context(self) -> ssl.SSLContext | None:
        if not self.url.startswith("https"):
            return None
        config = yaml.safe_load(self.kubeconfig.read_text())
        ca = base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"])
        return ssl.create_default_context(cadata=ca.decode())

    def _answers(self) -> bool:
        try:
            headers = {}
            if self.url.startswith("https"):
                token = yaml.safe_load(self.kubeconfig.read_text())["users"][0]["user"]["token"]
                headers["Authorization"] = f"Bearer {token}"
            request = urllib.request.Request(f"{self.url}/version", headers=headers)
            with urllib.request.urlopen(request, timeout=1, context=self._context()) as response:
                return bool(response.status == 200)
        except (OSError, ValueError, KeyError, TypeError):
            return False

    def stop(self) -> None:
        self.process.stop()

    # --- kubectl ------------------------------------------------------------------------
    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(KUBECTL), *args], input=input, capture_output=True, text=True,
            timeout=timeout, env={**os.environ, "KUBECONFIG": str(self.kubeconfig)},
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
            )
        return result

    def as_user(self, user: str, *args: str, input: str | None = None, check: bool = False
                ) -> subprocess.CompletedProcess[str]:
        """kubectl with that user's own token (its kubeconfig context)."""
        return self.kubectl("--context", user, *args, input=input, check=check)

    def apply(self, manifest: str | dict[str, Any] | list[dict[str, Any]]) -> str:
        if not isinstance(manifest, str):
            documents = manifest if isinstance(manifest, list) else [manifest]
            manifest = yaml.safe_dump_all(documents)
        return self.kubectl("apply", "-f", "-", input=manifest).stdout

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        args = ["get", kind, name, "-o", "json"]
        if namespace:
            args += ["-n", namespace]
        result = self.kubectl(*args, check=False)
        if result.returncode != 0:
            if "NotFound" in result.stderr or "not found" in result.stderr:
                return None
            raise AssertionError(result.stderr)
        document: dict[str, Any] = json.loads(result.stdout)
        return document

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(
            f"{self.url}/sandbox/stats", timeout=5, context=self._context()
        ) as response:
            payload: dict[str, Any] = json.loads(response.read())
            return payload

    def reset_stats(self) -> dict[str, Any]:
        request = urllib.request.Request(f"{self.url}/sandbox/stats/reset", method="POST")
        with urllib.request.urlopen(request, timeout=5, context=self._context()) as response:
            payload: dict[str, Any] = json.loads(response.read())
            return payload

    def settle(self, *, quiet_for: float = 2.0, timeout: float = 30.0) -> dict[str, Any]:
        """Wait until nobody has written for `quiet_for` seconds; return the stats then."""
        deadline = time.monotonic() + timeout
        last = self.stats()["total_writes"]
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.2)
            now = self.stats()["total_writes"]
            if now != last:
                last, quiet_since = now, time.monotonic()
            elif time.monotonic() - quiet_since >= quiet_for:
                return self.stats()
        raise Timeout(f"writes did not stop within {timeout}s: {self.stats()['writes']}")

    def namespace(self, name: str, labels: dict[str, str] | None = None) -> str:
        self.apply({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": name, "labels": labels or {}}})
        return name


class Operator:
    """`mltrl run` against the sandbox in a subprocess, so a test can kill and restart it;
    on a sandbox with RBAC, as its service account with the chart's RBAC."""

    def __init__(self, sandbox: Sandbox, log: Path) -> None:
        self.sandbox = sandbox
        self.health_port = free_port()
        identity = ["--context", OPERATOR_USER] if sandbox.rbac else []
        self.process = Process(
            [str(MLTRL), "run", "--kubeconfig", str(sandbox.kubeconfig), *identity,
             "--liveness", f"http://127.0.0.1:{self.health_port}/healthz"],
            log,
        )

    def start(self) -> Operator:
        self.process.start()
        eventually(self._alive, timeout=30, what=f"the operator to start\n{self.process.output()}")
        return self

    def _alive(self) -> bool:
        try:
            url = f"http://127.0.0.1:{self.health_port}/healthz"
            with urllib.request.urlopen(url, timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def restart(self, *, crash: bool = True) -> None:
        if crash:
            self.process.kill()
        else:
            self.process.stop()
        self.start()

    def stop(self) -> None:
        self.process.stop()


@contextlib.contextmanager
def running(
    workdir: Path,
    *,
    kserve: bool = True,
    operator: Callable[[Sandbox], Operator] | None = None,
) -> Iterator[tuple[Sandbox, Operator]]:
    """The sandbox with an operator in it (`mltrl run`, unless `operator` builds another),
    running as its service account with exactly the chart's RBAC, as in a cluster."""
    sandbox = Sandbox(workdir, kserve=kserve, rbac=True).start()
    started = (operator or (lambda s: Operator(s, workdir / "operator.log")))(sandbox)
    try:
        started.start()
        yield sandbox, started
    finally:
        started.stop()
        sandbox.stop()


# --- a clock the test moves (`mltrl run --clock-file`): days pass in a second -----------

CLOCK_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def stamp(instant: datetime) -> str:
    """An instant as the clock file and the operator's timestamps write it."""
    return instant.strftime(CLOCK_FORMAT)


def clock_now(clock_file: Path) -> datetime:
    return datetime.strptime(clock_file.read_text().strip(), CLOCK_FORMAT).replace(tzinfo=UTC)


def clock_at(workdir: Path, instant: datetime) -> Path:
    """A clock file set to `instant`; writing another time to it moves the operator's now."""
    path = workdir / "now"
    path.write_text(stamp(instant))
    return path


def running_on_clock(workdir: Path, clock_file: Path) -> contextlib.AbstractContextManager[
        tuple[Sandbox, Operator]]:
    """`running`, with the operator's now read from `clock_file`."""
    def on_fake_time(sandbox: Sandbox) -> Operator:
        operator = Operator(sandbox, sandbox.workdir / "operator.log")
        operator.process.args += ["--clock-file", str(clock_file)]
        return operator

    return running(workdir, operator=on_fake_time)


_namespaces = itertools.count()


def fresh_namespace(sandbox: Sandbox, request: Any, prefix: str) -> str:
    """A fresh namespace for one test, labelled so the test's own policy selects only it."""
    name = f"{prefix}{next(_namespaces)}-{request.node.name.replace('_', '-')}"
    name = name[:50].rstrip("-").lower()
    return sandbox.namespace(name, {"mltrl-test": name})


def condition(body: dict[str, Any] | None, kind: str) -> dict[str, Any] | None:
    for entry in ((body or {}).get("status") or {}).get("conditions") or []:
        if entry.get("type") == kind:
            return dict(entry)
    return None


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:50]
