"""The operator with its receiver and metrics, and a real Prometheus and Alertmanager on
loopback, each a process of its own as in a cluster."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from tests.ci import unavailable
from tests.integration.harness import Operator, Process, Sandbox, eventually, free_port

PROMETHEUS = Path("/usr/bin/prometheus")
ALERTMANAGER = Path("/usr/bin/prometheus-alertmanager")
TOKEN = "integration-alerts-token"


def require_binaries(*binaries: Path) -> None:
    """Skip without the binaries on a developer machine; under CI their absence fails."""
    missing = [str(b) for b in binaries if not (b.exists() and os.access(b, os.X_OK))]
    if not missing:
        return
    message = f"missing {', '.join(missing)} (Debian: apt-get install prometheus " \
              "prometheus-alertmanager)"
    unavailable(message)


class MonitoredOperator(Operator):
    """`mltrl run` with the alert receiver and the metrics endpoint."""

    def __init__(self, sandbox: Sandbox, log: Path, token_file: Path) -> None:
        super().__init__(sandbox, log)
        self.alerts_port = free_port()
        self.metrics_port = free_port()
        self.token_file = token_file
        self.process.args += [
            "--alerts-host", "127.0.0.1", "--alerts-port", str(self.alerts_port),
            "--alerts-token-file", str(token_file),
            "--metrics-host", "127.0.0.1", "--metrics-port", str(self.metrics_port),
        ]

    @property
    def alerts_url(self) -> str:
        return f"http://127.0.0.1:{self.alerts_port}/alerts"

    def start(self) -> MonitoredOperator:
        super().start()
        eventually(self._receiving, timeout=15, what="the alert receiver to listen")
        return self

    def _receiving(self) -> bool:
        try:
            url = f"http://127.0.0.1:{self.alerts_port}/healthz"
            with urllib.request.urlopen(url, timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def post(self, payload: dict[str, Any], token: str = TOKEN) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            self.alerts_url, data=json.dumps(payload).encode(), method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return scrape(f"http://127.0.0.1:{self.metrics_port}/metrics")

    def metric(self, name: str, **labels: str) -> float:
        return self.metrics().get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


class Exporter:
    """Stands in for a model server's metrics: gauges the test sets, served on loopback."""

    def __init__(self) -> None:
        self.port = free_port()
        self.values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None

    def set(self, name: str, value: float, **labels: str) -> float:
        """Set a gauge; returns the wall-clock time of the change."""
        with self._lock:
            self.values[(name, tuple(sorted(labels.items())))] = value
        return time.time()

    def _text(self) -> str:
        with self._lock:
            items = sorted(self.values.items())
        lines = []
        for (name, labels), value in items:
            rendered = ",".join(f'{k}="{v}"' for k, v in labels)
            lines.append(f"{name}{{{rendered}}} {value}")
        return "\n".join(lines) + "\n"

    async def _serve(self, _: web.Request) -> web.Response:
        return web.Response(text=self._text(), content_type="text/plain")

    async def _main(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._serve)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        self._stop = asyncio.Event()
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()

    def start(self) -> Exporter:
        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self._main())
            self._loop.close()

        self._thread = threading.Thread(target=run, daemon=True, name="exporter")
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the exporter did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=10)


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


class Alertmanager:
    def __init__(self, workdir: Path, receiver_url: str, token_file: Path) -> None:
        self.port = free_port()
        self.workdir = workdir / "alertmanager"
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = {
            "route": {
                "receiver": "mltrl-operator",
                "group_by": ["alertname", "namespace", "mltrl_technology"],
                "group_wait": "1s",
                "group_interval": "1s",
                "repeat_interval": "2s",
            },
            "receivers": [{
                "name": "mltrl-operator",
                "webhook_configs": [{
                    "url": receiver_url,
                    "send_resolved": True,
                    "http_config": {"authorization": {
                        "type": "Bearer", "credentials_file": str(token_file)}},
                }],
            }],
        }
        config_file = self.workdir / "alertmanager.yml"
        config_file.write_text(yaml.safe_dump(config))
        self.process = Process(
            [str(ALERTMANAGER), f"--config.file={config_file}",
             f"--storage.path={self.workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}",
             "--cluster.listen-address=", "--log.level=info"],
            self.workdir / "alertmanager.log",
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Alertmanager:
        self.process.start()
        eventually(lambda: _ready(f"{self.url}/-/ready"), timeout=20,
                   what=f"Alertmanager to be ready\n{self.process.output()}")
        return self

    def alerts(self) -> list[dict[str, Any]]:
        return list(get_json(f"{self.url}/api/v2/alerts"))

    def stop(self) -> None:
        self.process.stop()


class Prometheus:
    def __init__(
        self,
        workdir: Path,
        *,
        alertmanager: Alertmanager,
        targets: dict[str, str],
        rules: list[dict[str, Any]],
    ) -> None:
        self.port = free_port()
        self.workdir = workdir / "prometheus"
        self.workdir.mkdir(parents=True, exist_ok=True)
        rules_file = self.workdir / "rules.yml"
        rules_file.write_text(yaml.safe_dump({"groups": [{"name": "models", "rules": rules}]}))
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s",
                       "scrape_timeout": "1s"},
            "rule_files": [str(rules_file)],
            "alerting": {"alertmanagers": [
                {"static_configs": [{"targets": [f"127.0.0.1:{alertmanager.port}"]}]}
            ]},
            "scrape_configs": [
                # The model's labels (namespace, mltrl_technology) are the model's own.
                {"job_name": job, "honor_labels": True,
                 "static_configs": [{"targets": [target]}]}
                for job, target in targets.items()
            ],
        }
        config_file = self.workdir / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(config))
        self.process = Process(
            [str(PROMETHEUS), f"--config.file={config_file}",
             f"--storage.tsdb.path={self.workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}",
             "--rules.alert.resend-delay=1s", "--log.level=info"],
            self.workdir / "prometheus.log",
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Prometheus:
        self.process.start()
        eventually(lambda: _ready(f"{self.url}/-/ready"), timeout=30,
                   what=f"Prometheus to be ready\n{self.process.output()}")
        return self

    def query(self, expr: str) -> list[dict[str, Any]]:
        url = f"{self.url}/api/v1/query?query={urllib.parse.quote(expr)}"
        return list(get_json(url)["data"]["result"])

    def stop(self) -> None:
        self.process.stop()
        shutil.rmtree(self.workdir / "data", ignore_errors=True)
