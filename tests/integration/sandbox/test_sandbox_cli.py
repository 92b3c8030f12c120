"""`python -m mltrl_sandbox` in the foreground, stopped with Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import WIDGET_CRD, Kubectl

pytestmark = pytest.mark.integration


def test_runs_in_the_foreground_until_interrupted(tmp_path: Path) -> None:
    crds = tmp_path / "crds"
    crds.mkdir()
    (crds / "widgets.yaml").write_text(WIDGET_CRD)
    kubeconfig = tmp_path / "sandbox" / "kubeconfig"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mltrl_sandbox",
            "--port",
            "0",
            "--crds",
            str(crds),
            "--kubeconfig",
            str(kubeconfig),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        assert banner.startswith("sandbox API server at http://127.0.0.1:")
        config = yaml.safe_load(kubeconfig.read_text())
        assert config["current-context"] == "sandbox"
        assert config["clusters"][0]["cluster"]["server"] == banner.split()[4].rstrip(";")
        assert oct(kubeconfig.stat().st_mode & 0o777) == "0o600"
        kubectl = Kubectl(kubeconfig, tmp_path / "cache")
        names = kubectl("get", "crd", "-o", "name").split()
        assert names == [
            "customresourcedefinition.apiextensions.k8s.io/inferenceservices.serving.kserve.io",
            "customresourcedefinition.apiextensions.k8s.io/widgets.example.com",
        ]
        process.send_signal(signal.SIGINT)
        started = time.monotonic()
        assert process.wait(timeout=15) == 0
        assert time.monotonic() - started < 10
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
