"""Technologies with monitoring rules, and the steps that bring them to serving."""

from __future__ import annotations

import json
from typing import Any

from tests.integration.harness import Sandbox, Timeout, eventually
from tests.integration.operator.scenarios import technology
from tests.integration.operator.test_reviews import status_of

JOB_TEMPLATE = {
    "backoffLimit": 0,
    "template": {"spec": {"restartPolicy": "Never", "containers": [
        {"name": "train", "image": "registry.example.com/fraud/train:2026.11",
         "args": ["--since", "7d"]}]}},
}


def monitored(
    name: str,
    namespace: str,
    *,
    rules: list[dict[str, Any]],
    entry_level: int = 5,
    model_version: str = "1.0.0",
) -> dict[str, Any]:
    manifest = technology(name, namespace, entry_level=entry_level, model_version=model_version)
    manifest["spec"]["monitoring"] = {"rules": rules}
    manifest["spec"]["retraining"] = {"jobTemplate": JOB_TEMPLATE}
    return manifest


def storage_uri(sandbox: Sandbox, name: str, namespace: str) -> str | None:
    isvc = sandbox.get("isvc", name, namespace) or {}
    uri = isvc.get("spec", {}).get("predictor", {}).get("model", {}).get("storageUri")
    return str(uri) if uri else None


def serving(sandbox: Sandbox, name: str, namespace: str, version: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def probe() -> dict[str, Any] | None:
        seen.update(status_of(sandbox, "mltech", name, namespace))
        state = seen.get("serving") or {}
        if state.get("state") == "Serving" and state.get("modelVersion") == version:
            return dict(state)
        return None

    try:
        return eventually(probe, what=f"{name} serving model {version}")
    except Timeout as timeout:
        raise Timeout(f"{timeout}\nstatus: {seen}") from None


def known_good(sandbox: Sandbox, name: str, namespace: str, *versions: str) -> None:
    eventually(
        lambda: [m["version"] for m in
                 status_of(sandbox, "mltech", name, namespace).get("knownGoodModels", [])]
        == list(versions),
        what=f"{name}'s known-good models to be {versions}",
    )


def roll_out(sandbox: Sandbox, name: str, namespace: str, version: str) -> None:
    model = {"version": version, "storageUri": f"s3://models/{name}/{version}"}
    sandbox.kubectl("patch", "mltech", name, "-n", namespace, "--type=merge",
                    "-p", json.dumps({"spec": {"model": model}}))
    serving(sandbox, name, namespace, version)


def serving_two_known_good_models(sandbox: Sandbox, name: str, namespace: str) -> None:
    """1.0.0 served, then 1.1.0: both known good, so a rollback has somewhere to go."""
    serving(sandbox, name, namespace, "1.0.0")
    roll_out(sandbox, name, namespace, "1.1.0")
    known_good(sandbox, name, namespace, "1.0.0", "1.1.0")


def incidents(sandbox: Sandbox, name: str, namespace: str) -> list[dict[str, Any]]:
    return list(status_of(sandbox, "mltech", name, namespace).get("incidents") or [])


def jobs_of(sandbox: Sandbox, name: str, namespace: str) -> list[dict[str, Any]]:
    listed = sandbox.kubectl("get", "jobs", "-n", namespace, "-l",
                             f"mltrl.dev/technology={name}", "-o", "json").stdout
    return list(json.loads(listed)["items"])


def events_of(sandbox: Sandbox, name: str, namespace: str) -> list[dict[str, Any]]:
    listed = json.loads(sandbox.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)
    return [e for e in listed["items"] if e["involvedObject"].get("name") == name]
