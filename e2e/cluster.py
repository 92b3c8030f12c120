"""Where the end-to-end scenarios run: a throwaway real cluster, or the sandbox.

`MLTRL_E2E=cluster` selects the cluster in the current kubeconfig context. Only contexts
that look throwaway (kind-*, k3d-*, or one named in MLTRL_E2E_ALLOWED_CONTEXT) are accepted,
so the suite can never be pointed at a shared cluster by accident. The operator must already
be installed there (the CI workflow installs it with Helm). Without MLTRL_E2E the scenarios
run against the sandbox with the operator started locally.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

import yaml
from tests.integration.harness import KUBECTL, running

T = TypeVar("T")
THROWAWAY_PREFIXES = ("kind-", "k3d-")


class Cluster(Protocol):
    timeout: float

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 30) -> subprocess.CompletedProcess[str]: ...


class KubectlCluster:
    """kubectl against a kubeconfig; `timeout` is how long a scenario waits for convergence.

    `real` clusters enforce RBAC, so the people a scenario acts as are given the chart's
    user roles in its namespace first.
    """

    def __init__(self, kubeconfig: Path | None, timeout: float, *, real: bool = False) -> None:
        self.real = real
        self._env = {**os.environ}
        if kubeconfig is not None:
            self._env["KUBECONFIG"] = str(kubeconfig)
        self.timeout = timeout

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([os.environ.get("KUBECTL", str(KUBECTL)), *args], input=input,
                                capture_output=True, text=True, timeout=timeout, env=self._env)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {result.stderr}")
        return result

    def apply(self, *documents: dict[str, Any], as_user: str | None = None) -> None:
        """kubectl apply; `as_user` acts as that user, as a reviewer would (the admission
        webhook binds approvals to whoever sends them)."""
        identity = ["--as", as_user] if as_user else []
        self.kubectl(*identity, "apply", "-f", "-", input=yaml.safe_dump_all(documents))

    def get(self, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        result = self.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
        if result.returncode != 0:
            return None
        document: dict[str, Any] = json.loads(result.stdout)
        return document

    def eventually(self, probe: Callable[[], T | None], what: str) -> T:
        deadline = time.monotonic() + self.timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = probe()
            if last:
                return last
            time.sleep(0.5)
        raise AssertionError(f"timed out after {self.timeout}s waiting for {what}; saw {last!r}")


def current_context() -> str:
    result = subprocess.run([os.environ.get("KUBECTL", str(KUBECTL)), "config", "current-context"],
                            capture_output=True, text=True, check=False)
    return result.stdout.strip()


def refuse_unless_throwaway(context: str) -> None:
    allowed = os.environ.get("MLTRL_E2E_ALLOWED_CONTEXT")
    if context == allowed or context.startswith(THROWAWAY_PREFIXES):
        return
    raise SystemExit(
        f"refusing to run the e2e suite against kube context {context!r}: only throwaway "
        "clusters (kind-*, k3d-*, or MLTRL_E2E_ALLOWED_CONTEXT) are accepted"
    )


@contextmanager
def target(workdir: Path) -> Iterator[KubectlCluster]:
    if os.environ.get("MLTRL_E2E") == "cluster":
        refuse_unless_throwaway(current_context())
        yield KubectlCluster(
            None, timeout=float(os.environ.get("MLTRL_E2E_TIMEOUT", "300")), real=True
        )
        return
    with running(workdir) as (sandbox, _operator):
        yield KubectlCluster(sandbox.kubeconfig, timeout=30)
