"""`mltrl run` with the credentials people have: an exec plugin (as on EKS, GKE, AKS) in a
kubeconfig merged from two files, a token rotated mid-run, and kubeconfigs that cannot
authenticate, which must stop it with one line rather than connect anonymously."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mltrl_operator.webhooks.configuration import operator_username
from tests.integration.harness import MLTRL, Operator, Process, Sandbox, eventually
from tests.integration.operator.scenarios import policy, review, technology
from tests.integration.operator.test_reviews import wait_for_level, wait_for_phase
from tests.unit.k8s.test_connection import EXEC_API, write_exec_plugin

pytestmark = pytest.mark.integration

OPERATOR = operator_username()


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    # A cluster with users: the operator's service account holds exactly the chart's RBAC.
    started = Sandbox(tmp_path_factory.mktemp("sandbox"), kserve=False, rbac=True)
    try:  # stopped even if it never answers
        yield started.start()
    finally:
        started.stop()


def sandbox_config(sandbox: Sandbox) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(sandbox.kubeconfig.read_text())
    return document


def token_of(sandbox: Sandbox, user: str) -> str:
    for entry in sandbox_config(sandbox)["users"]:
        if entry["name"] == user:
            return str(entry["user"]["token"])
    raise AssertionError(f"no user {user} in the sandbox's kubeconfig")


def rotate(sandbox: Sandbox, user: str) -> str:
    """The sandbox issues `user` a new token; the old one is refused from now on."""
    request = urllib.request.Request(
        f"{sandbox.url}/sandbox/rotate-token?user={user}", method="POST",
        headers={"Authorization": "Bearer admin-token"},
    )
    context = ssl._create_unverified_context()
    with urllib.request.urlopen(request, timeout=5, context=context) as response:
        return str(json.loads(response.read())["token"])


def split_kubeconfig(sandbox: Sandbox, directory: Path, user: dict[str, Any]) -> str:
    """The sandbox's cluster and a context in one file, the user in another: KUBECONFIG
    lists both, as people merge a cloud's file with their own."""
    directory.mkdir(parents=True, exist_ok=True)
    cluster = sandbox_config(sandbox)["clusters"][0]
    (directory / "cluster.yaml").write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "cloud",
        "clusters": [cluster],
        "contexts": [{"name": "cloud", "context": {"cluster": cluster["name"],
                                                   "user": "cloud-user"}}],
    }))
    (directory / "user.yaml").write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "users": [{"name": "cloud-user", "user": user}],
    }))
    return f"{directory / 'cluster.yaml'}{os.pathsep}{directory / 'user.yaml'}"


def operator_with(sandbox: Sandbox, log: Path, kubeconfig: str) -> Operator:
    operator = Operator(sandbox, log)
    operator.process = Process(
        [str(MLTRL), "run", "--liveness", f"http://127.0.0.1:{operator.health_port}/healthz"],
        log, env={"KUBECONFIG": kubeconfig},
    )
    return operator


def run_to_failure(kubeconfig: str, context: str | None = None) -> subprocess.CompletedProcess[str]:
    args = [str(MLTRL), "run", "--kubeconfig", kubeconfig]
    if context:
        args += ["--context", context]
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


def test_an_exec_plugin_user_reconciles_and_survives_a_token_rotation(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    plugin = write_exec_plugin(tmp_path)
    token_file, runs = tmp_path / "token", tmp_path / "runs"
    token_file.write_text(token_of(sandbox, OPERATOR))
    kubeconfig = split_kubeconfig(sandbox, tmp_path / "kube", {"exec": {
        "apiVersion": EXEC_API, "command": str(plugin),
        "args": [str(token_file), str(runs), "60"],
    }})
    namespace = sandbox.namespace("exec-plugin", {"mltrl-test": "exec-plugin"})
    sandbox.apply(policy("exec-plugin-policy", namespace))
    operator = operator_with(sandbox, tmp_path / "operator.log", kubeconfig).start()
    try:
        sandbox.apply(technology("ranker", namespace))
        wait_for_level(sandbox, "ranker", namespace, 3)

        old = token_file.read_text()
        token_file.write_text(rotate(sandbox, OPERATOR))
        refused = sandbox.kubectl("get", "ns", "--token", old, check=False)
        assert refused.returncode != 0, refused
        assert "Unauthorized" in refused.stderr or "must be logged in" in refused.stderr, refused

        # Its next writes meet a 401, log in afresh through the plugin, and go through.
        sandbox.apply(review("ranker-to-4", namespace, "ranker", 3, 4))
        wait_for_phase(sandbox, "ranker-to-4", namespace, "Applied")
        wait_for_level(sandbox, "ranker", namespace, 4)
        sandbox.apply(technology("after-rotation", namespace))
        wait_for_level(sandbox, "after-rotation", namespace, 3)
        assert int(runs.read_text()) >= 2, "the plugin was never asked again"
        output = operator.process.output()
        assert "Traceback" not in output, output
    finally:
        operator.stop()


def test_a_refused_token_stops_mltrl_run_with_one_line(sandbox: Sandbox, tmp_path: Path) -> None:
    kubeconfig = split_kubeconfig(sandbox, tmp_path, {"token": "not-a-token-anyone-issued"})
    result = run_to_failure(kubeconfig)
    assert result.returncode == 2, result
    assert result.stderr.strip().splitlines() == [
        f'mltrl run: context "cloud": the API server at {sandbox.url} refused the credentials '
        "(401 Unauthorized)"
    ]


def test_a_failing_exec_plugin_stops_mltrl_run_with_one_line(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    plugin = write_exec_plugin(tmp_path)
    (tmp_path / "token").write_text("")  # the plugin fails: no login possible
    kubeconfig = split_kubeconfig(sandbox, tmp_path / "kube", {"exec": {
        "apiVersion": EXEC_API, "command": str(plugin),
        "args": [str(tmp_path / "token"), str(tmp_path / "runs"), "60"],
    }})
    result = run_to_failure(kubeconfig)
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith('mltrl run: context "cloud": exec plugin'), lines
    assert "no token for you" in lines[0]


def test_a_user_without_credentials_is_never_used_anonymously(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    kubeconfig = split_kubeconfig(sandbox, tmp_path, {})
    result = run_to_failure(kubeconfig)
    assert result.returncode == 2, result
    assert result.stderr.strip().splitlines() == [
        'mltrl run: context "cloud": user "cloud-user" has no credentials (token, tokenFile, '
        "client certificate, exec plugin or auth-provider); refusing to connect anonymously"
    ]


def test_an_unknown_context_is_one_line(sandbox: Sandbox) -> None:
    result = run_to_failure(str(sandbox.kubeconfig), "nowhere")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('mltrl run: context "nowhere": '), lines
    assert eventually(lambda: sandbox._answers(), what="the sandbox to still answer")
