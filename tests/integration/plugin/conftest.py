"""`mltrl sandbox` with the operator, its admission webhooks and token users alice, bob,
carol and a CI service account: every plugin command runs as `kubectl mltrl` (real
kubectl finding the `kubectl-mltrl` console script on PATH) as one of them."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import (
    BIN,
    EXAMPLES,
    KUBECTL,
    MLTRL,
    Process,
    Sandbox,
    eventually,
    fresh_namespace,
)

# Bound as the harness binds people to the chart's roles (USER_ROLES).
CI = "system:serviceaccount:ci:approver"
# An auditor, bound to the chart's mltrl-auditor role as its comment says (a
# ClusterRoleBinding): the one person here who may read the cluster-scoped audit records.
AUDITOR = "audrey"
USERS = ("alice", "bob", "carol", CI, AUDITOR)


class PluginSandbox(Sandbox):
    """The sandbox as `mltrl sandbox --user ... --webhooks` starts it for a person."""

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        args = [str(MLTRL), "sandbox", "--port", str(self.port), "--dir", str(workdir),
                "--webhooks"]
        for user in USERS:
            args += ["--user", user]
        self.process = Process(args, workdir / "sandbox.log")
        self.url = f"https://127.0.0.1:{self.port}"

    def start(self) -> PluginSandbox:
        self.process.start()
        eventually(
            lambda: "Admission webhooks:" in self.process.output() and self.kubeconfig.exists()
            and self.kubectl("get", "namespaces", check=False).returncode == 0,
            timeout=60, what=f"the sandbox and its webhooks\n{self.process.output()}",
        )
        # People act with the chart's user roles, as a platform team binds them.
        self.install_rbac()
        self.apply([{
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": f"mltrl-auditor-{AUDITOR}"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "mltrl-auditor"},
            "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io",
                          "name": AUDITOR}],
        }])
        return self

    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig),
                "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}

    def plugin(self, user: str | None, *args: str, check: bool = True,
               timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """`kubectl mltrl ARGS --context USER`, through real kubectl's plugin lookup."""
        context = ["--context", user] if user else []
        result = subprocess.run(
            [str(KUBECTL), "mltrl", *args, *context], capture_output=True, text=True,
            timeout=timeout, env=self.env(),
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl mltrl {' '.join(args)} as {user} failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    def plugin_json(self, user: str | None, *args: str) -> Any:
        return json.loads(self.plugin(user, *args, "-o", "json").stdout)


@pytest.fixture(scope="package")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PluginSandbox]:
    started = PluginSandbox(tmp_path_factory.mktemp("plugin"))
    try:
        yield started.start()
    finally:
        started.stop()


@pytest.fixture(scope="package")
def examples(sandbox: PluginSandbox) -> PluginSandbox:
    """The README's examples, except the review: reviewers write that with the plugin."""
    for path in sorted(EXAMPLES.glob("*.yaml")):
        if "review-fraud-detection" not in path.name:
            sandbox.kubectl("apply", "-f", str(path))
    eventually(lambda: (sandbox.get("mltech", "fraud-detection", "payments") or {})
               .get("status", {}).get("level") == 6, timeout=60, what="fraud-detection at 6")
    return sandbox


def level_of(sandbox: Sandbox, name: str, namespace: str) -> int | None:
    body = sandbox.get("mltech", name, namespace) or {}
    level = (body.get("status") or {}).get("level")
    return int(level) if level is not None else None


@pytest.fixture(scope="package")
def fraud_detection_at_7(examples: PluginSandbox) -> PluginSandbox:
    """fraud-detection promoted 6 -> 7 with the plugin only, as alice, bob and carol."""
    sandbox = examples
    if level_of(sandbox, "fraud-detection", "payments") != 7:
        promote_fraud_detection(sandbox)
    return sandbox


def promote_fraud_detection(sandbox: PluginSandbox) -> None:
    ns = ("-n", "payments")
    sandbox.plugin("alice", "review", "new", "fraud-detection", *ns)
    sandbox.plugin("alice", "evidence", "fraud-detection-to-7", "integration-tests", "--passed",
                   "--uri", "https://ci.example.com/payments/fraud-detection/runs/812", *ns)
    sandbox.plugin("alice", "evidence", "fraud-detection-to-7", "auc", "--value", "0.94", *ns)
    sandbox.plugin("alice", "debrief", "fraud-detection-to-7",
                   "--accomplished", "Integrated with the payment gateway (alice, bob)",
                   "--learned", "Feature freshness matters more than model size", *ns)
    sandbox.plugin("bob", "approve", "fraud-detection-to-7", "--role", "qa", *ns)
    sandbox.plugin("carol", "approve", "fraud-detection-to-7", "--role", "product-owner", *ns)
    eventually(lambda: level_of(sandbox, "fraud-detection", "payments") == 7, timeout=60,
               what="fraud-detection at level 7")


@pytest.fixture
def namespace(sandbox: PluginSandbox, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace of the test's own, emptied of technologies afterwards: the portfolio and
    maturity views read the whole cluster, so what one test leaves would change another's."""
    name = fresh_namespace(sandbox, request, "p")
    yield name
    sandbox.kubectl("delete", "mltech", "--all", "-n", name, "--timeout=60s")


def policy(namespace: str, **requirements: Any) -> dict[str, Any]:
    """A policy selecting only this test's namespace: level 5 needs a check, a metric and two
    approvals with the roles qa (bob) and product-owner (carol, the CI identity)."""
    return {
        "apiVersion": "mltrl.dev/v1alpha1", "kind": "MLTRLPolicy",
        "metadata": {"name": f"policy-{namespace}"},
        "spec": {
            "namespaceSelector": {"matchLabels": {"mltrl-test": namespace}},
            "requirements": [{
                "level": 5, "minApprovals": 2, "requiredRoles": ["qa", "product-owner"],
                "evidence": [{"name": "unit-tests", "kind": "check"},
                             {"name": "accuracy", "kind": "metric", "minimum": 0.8}],
                **requirements,
            }],
            # No policy, no roles (issue 11): the people who hold them, the CI identity
            # releasing as product owner included.
            "reviewers": [{"role": "qa", "users": ["bob"]},
                          {"role": "product-owner", "users": ["carol", CI]}],
        },
    }


def technology(namespace: str, name: str = "churn", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "mltrl.dev/v1alpha1", "kind": "MLTechnology",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"owner": "alice", "team": "growth", "entryLevel": 4, "targetLevel": 6, **spec},
    }


def reconciled(sandbox: Sandbox, name: str, namespace: str, level: int) -> None:
    eventually(lambda: level_of(sandbox, name, namespace) == level, timeout=60,
               what=f"{namespace}/{name} at level {level}")
