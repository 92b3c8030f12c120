"""A sandbox over HTTPS with token users, the operator as its service account serving the
admission webhooks, and the webhook configurations registered: kubectl acts as alice (a
technology owner), bob (a QA reviewer), carol (the product owner), mallory (an editor and
reviewer bound to no policy role), platform (a policy admin), or a CI service account in a
trusted group, each bound to the chart's user roles (harness.USER_ROLES), the operator with
the chart's RBAC.
"""

from __future__ import annotations

import base64
import contextlib
import json
import ssl
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mltrl_operator.webhooks.configuration import operator_username, webhook_configurations
from mltrl_sandbox.certs import make_serving_certificate
from tests.integration.harness import (
    MLTRL,
    Process,
    Sandbox,
    eventually,
    free_port,
    fresh_namespace,
)

OPERATOR = operator_username()
CI = "system:serviceaccount:ci:approver"
CI_GROUP = "system:serviceaccounts:ci"
USERS = ("alice", "bob", "carol", "mallory", "platform", CI, OPERATOR)


class SecureSandbox(Sandbox):
    """`mltrl sandbox --no-operator` over HTTPS, with a token per user."""

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        args = [str(MLTRL), "sandbox", "--port", str(self.port), "--dir", str(workdir),
                "--no-operator", "--tls"]
        for user in USERS:
            args += ["--user", user]
        self.process = Process(args, workdir / "sandbox.log")
        self.url = f"https://127.0.0.1:{self.port}"

    def _context(self) -> ssl.SSLContext:
        config = yaml.safe_load(self.kubeconfig.read_text())
        ca = base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"])
        return ssl.create_default_context(cadata=ca.decode())

    def _answers(self) -> bool:
        try:
            token = yaml.safe_load(self.kubeconfig.read_text())["users"][0]["user"]["token"]
            request = urllib.request.Request(
                f"{self.url}/version", headers={"Authorization": f"Bearer {token}"}
            )
            with urllib.request.urlopen(request, timeout=1, context=self._context()) as response:
                return bool(response.status == 200)
        except (OSError, ValueError, KeyError, TypeError):
            return False

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(
            f"{self.url}/sandbox/stats", timeout=5, context=self._context()
        ) as response:
            payload: dict[str, Any] = json.loads(response.read())
            return payload

    def as_user(self, user: str, *args: str, input: str | None = None, check: bool = False
                ) -> Any:
        return self.kubectl("--user", user, *args, input=input, check=check)


@contextlib.contextmanager
def granted(sandbox: Sandbox, name: str, users: Iterable[str], resources: Iterable[str],
            verbs: Iterable[str] = ("get", "list", "create", "update", "patch", "delete")
            ) -> Iterator[None]:
    """An over-generous grant beyond the chart's roles (cluster-wide, on mltrl.dev), as a
    careless platform team might give: what RBAC no longer stops, the webhooks still must.
    Removed afterwards, so every other test meets the chart's RBAC alone."""
    rbac = "rbac.authorization.k8s.io"
    sandbox.apply([
        {"apiVersion": f"{rbac}/v1", "kind": "ClusterRole", "metadata": {"name": name},
         "rules": [{"apiGroups": ["mltrl.dev"], "resources": list(resources),
                    "verbs": list(verbs)}]},
        {"apiVersion": f"{rbac}/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
         "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": name},
         "subjects": [{"apiGroup": rbac, "kind": "User", "name": user} for user in users]},
    ])
    try:
        yield
    finally:
        sandbox.kubectl("delete", "clusterrolebinding,clusterrole", name)


def rbac_refused(result: Any, user: str, resource: str) -> None:
    """Refused by RBAC (the chart's roles), before any webhook is asked."""
    assert result.returncode != 0, f"admitted: {result.stdout}"
    assert f'User "{user}" cannot' in result.stderr and f'resource "{resource}"' in \
        result.stderr, result.stderr


class WebhookOperator:
    """`mltrl run` as the operator's service account, serving the webhooks over HTTPS."""

    def __init__(self, sandbox: SecureSandbox, workdir: Path) -> None:
        self.certificate = make_serving_certificate(workdir / "webhook")
        self.health_port = free_port()
        self.webhook_port = free_port()
        self.process = Process(
            [str(MLTRL), "run", "--kubeconfig", str(sandbox.kubeconfig), "--context", OPERATOR,
             "--liveness", f"http://127.0.0.1:{self.health_port}/healthz",
             "--webhook-port", str(self.webhook_port), "--webhook-host", "127.0.0.1",
             "--webhook-cert", str(self.certificate.cert_file),
             "--webhook-key", str(self.certificate.key_file),
             "--webhook-trusted-group", CI_GROUP],
            workdir / "operator.log",
        )

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.webhook_port}"

    def _ready(self) -> bool:
        context = ssl.create_default_context(cadata=self.certificate.ca_pem.decode())
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=1, context=context) as r1, \
                    urllib.request.urlopen(
                        f"http://127.0.0.1:{self.health_port}/healthz", timeout=1) as r2:
                return r1.status == 200 and r2.status == 200
        except OSError:
            return False

    def start(self) -> WebhookOperator:
        self.process.start()
        eventually(self._ready, timeout=30,
                   what=f"the operator and its webhooks\n{self.process.output()}")
        return self

    def stop(self) -> None:
        self.process.stop()


@pytest.fixture(scope="package")
def gated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SecureSandbox,
                                                                      WebhookOperator]]:
    workdir = tmp_path_factory.mktemp("admission")
    sandbox = SecureSandbox(workdir)
    operator = WebhookOperator(sandbox, workdir)
    try:
        sandbox.start()
        sandbox.install_rbac()  # the chart's RBAC, and the people bound to its roles
        operator.start()
        sandbox.apply(webhook_configurations(operator.url, operator.certificate.ca_pem))
        yield sandbox, operator
    finally:
        operator.stop()
        sandbox.stop()


@pytest.fixture
def sandbox(gated: tuple[SecureSandbox, WebhookOperator]) -> SecureSandbox:
    return gated[0]


@pytest.fixture
def namespace(sandbox: SecureSandbox, request: pytest.FixtureRequest) -> str:
    """A fresh namespace per test, labelled so a test's own policy selects only it."""
    return fresh_namespace(sandbox, request, "a")
