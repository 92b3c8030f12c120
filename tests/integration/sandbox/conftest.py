"""Fixtures for driving the sandbox with the real kubectl, as a user would."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mltrl_sandbox.crds import default_crd_documents
from mltrl_sandbox.server import SandboxThread

KUBECTL = Path(sys.executable).parent / "kubectl"
REPO = Path(__file__).resolve().parents[3]

WIDGET_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names:
    kind: Widget
    plural: widgets
    singular: widget
    shortNames: [wdg]
    categories: [gadgets]
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      subresources:
        status: {}
      additionalPrinterColumns:
        - {name: Owner, type: string, jsonPath: .spec.owner}
        - {name: Size, type: integer, jsonPath: .spec.size}
        - {name: Ready, type: string, jsonPath: ".status.conditions[?(@.type=='Ready')].status"}
        - {name: Color, type: string, jsonPath: .spec.color, priority: 1}
        - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
      schema:
        openAPIV3Schema:
          type: object
          description: A Widget is a test gadget.
          properties:
            spec:
              type: object
              description: Desired state of the widget.
              required: [owner]
              properties:
                owner: {type: string, minLength: 1, description: The team that owns the widget.}
                size: {type: integer, minimum: 1, maximum: 9, default: 3}
                color: {type: string, enum: [red, green, blue]}
                tags: {type: array, maxItems: 3, items: {type: string}}
                labels: {type: object, additionalProperties: {type: string}}
                parts:
                  type: array
                  items:
                    type: object
                    properties:
                      name: {type: string}
                      count: {type: integer, default: 1}
                extra: {type: object, x-kubernetes-preserve-unknown-fields: true}
            status:
              type: object
              properties:
                phase: {type: string, enum: [Pending, Ready]}
                conditions:
                  type: array
                  items:
                    type: object
                    properties:
                      type: {type: string}
                      status: {type: string}
"""

GIZMO_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gizmos.example.com
spec:
  group: example.com
  names: {kind: Gizmo, plural: gizmos, singular: gizmo}
  scope: Cluster
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                level: {type: integer, default: 1}
"""


def crd(text: str) -> dict[str, Any]:
    loaded = yaml.safe_load(text)
    assert isinstance(loaded, dict)
    return loaded


class Kubectl:
    """Runs the real kubectl against one sandbox, with its own discovery cache."""

    def __init__(self, kubeconfig: Path, cache: Path) -> None:
        self.env = {**os.environ, "KUBECONFIG": str(kubeconfig), "KUBECACHEDIR": str(cache)}

    def run(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(KUBECTL), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({done.returncode}): {done.stderr}"
            )
        return done

    def __call__(self, *args: str, stdin: str | None = None) -> str:
        return self.run(*args, stdin=stdin).stdout

    def fails(self, *args: str, stdin: str | None = None) -> str:
        done = self.run(*args, stdin=stdin, check=False)
        assert done.returncode != 0, (
            f"kubectl {' '.join(args)} unexpectedly succeeded: {done.stdout}"
        )
        return done.stderr

    def popen(self, *args: str) -> LineReader:
        process = subprocess.Popen(
            [str(KUBECTL), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )
        return LineReader(process)


class LineReader:
    """Reads a long-running kubectl's output line by line, each read with a deadline."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def read_until(self, predicate: Any, timeout: float = 15.0) -> list[str]:
        """Lines up to and including the first one satisfying `predicate`."""
        deadline = time.monotonic() + timeout
        seen: list[str] = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching line within {timeout}s; saw {seen}")
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"kubectl exited before a matching line; saw {seen}")
            seen.append(line)
            if predicate(line):
                return seen

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxThread]:
    documents = [*default_crd_documents(REPO / "crds"), crd(GIZMO_CRD)]
    with SandboxThread(documents, history_limit=100) as running:
        yield running


@pytest.fixture(scope="module")
def kubectl(sandbox: SandboxThread, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    home = tmp_path_factory.mktemp("kube")
    return Kubectl(sandbox.kubeconfig(home / "config"), home / "cache")


def eventually(probe: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s; last saw {last!r}")
