"""Argo CD: the health checks run as Argo CD runs them (Lua 5.1, the object as the global
`obj`) against their own health_test.yaml, in Argo CD's layout; the Application examples
order the sync and leave the operator's fields alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.delivery.support import HEALTH, REPO, load_yaml, run_health_check

KINDS = ("MLTechnology", "LevelReview")
ARGOCD_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}


def _cases() -> list[tuple[str, dict[str, Any]]]:
    cases = []
    for kind in KINDS:
        tests = yaml.safe_load((HEALTH / "mltrl.dev" / kind / "health_test.yaml").read_text())
        cases += [(kind, case) for case in tests["tests"]]
    return cases


def test_layout_is_argo_cds() -> None:
    checks = sorted(p.relative_to(HEALTH).as_posix() for p in HEALTH.rglob("health.lua"))
    assert checks == [f"mltrl.dev/{kind}/health.lua" for kind in sorted(KINDS)]
    for kind in KINDS:
        folder = HEALTH / "mltrl.dev" / kind
        tests = yaml.safe_load((folder / "health_test.yaml").read_text())
        referenced = {case["inputPath"] for case in tests["tests"]}
        on_disk = {f"testdata/{p.name}" for p in (folder / "testdata").glob("*.yaml")}
        assert referenced == on_disk, "every test case has its file and every file a case"
        statuses = {case["healthStatus"]["status"] for case in tests["tests"]}
        assert statuses <= ARGOCD_STATUSES


@pytest.mark.parametrize(
    ("kind", "case"), _cases(), ids=[f"{k}-{Path(c['inputPath']).stem}" for k, c in _cases()]
)
def test_health_check(kind: str, case: dict[str, Any]) -> None:
    folder = HEALTH / "mltrl.dev" / kind
    obj = load_yaml(folder / case["inputPath"])
    assert obj["kind"] == kind and obj["apiVersion"] == "mltrl.dev/v1alpha1"
    result = run_health_check((folder / "health.lua").read_text(), obj)
    assert result == case["healthStatus"]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("Pending", "Progressing"), ("Approved", "Progressing"), ("Applied", "Healthy"),
        ("Rejected", "Degraded"), ("Invalid", "Degraded"), ("Superseded", "Suspended"),
    ],
)
def test_every_review_phase(status: str, expected: str) -> None:
    script = (HEALTH / "mltrl.dev" / "LevelReview" / "health.lua").read_text()
    obj = {"metadata": {"name": "r", "generation": 1}, "spec": {}, "status": {"phase": status}}
    assert run_health_check(script, obj) == {"status": expected, "message": status}


def test_checks_are_plain_lua_5_1() -> None:
    """Nothing from Lua 5.2+ (goto, integer division, bit operators, table.unpack)."""
    for script in HEALTH.rglob("health.lua"):
        code = "\n".join(
            line.split("--", 1)[0] for line in script.read_text().splitlines()
        )
        for newer in ("goto ", "::", "//", "table.unpack", "<<", ">>", "&", "utf8."):
            assert newer not in code, f"{script}: {newer!r}"


def _applications() -> dict[str, dict[str, Any]]:
    folder = REPO / "manifests" / "argocd"
    apps = {}
    for path in [folder / "root-application.yaml", *sorted((folder / "apps").glob("*.yaml"))]:
        app = yaml.safe_load(path.read_text())
        assert app["apiVersion"] == "argoproj.io/v1alpha1" and app["kind"] == "Application"
        apps[app["metadata"]["name"]] = app
    return apps


def test_applications_sync_crds_first() -> None:
    apps = _applications()
    wave = {
        name: int(app["metadata"].get("annotations", {}).get("argocd.argoproj.io/sync-wave", 0))
        for name, app in apps.items()
    }
    assert wave["mltrl-crds"] < wave["mltrl-operator"] < wave["payments-technologies"]
    assert apps["mltrl-crds"]["spec"]["source"]["path"] == "crds"
    assert apps["mltrl-crds"]["spec"]["syncPolicy"]["automated"]["prune"] is False
    operator = apps["mltrl-operator"]["spec"]
    assert operator["source"]["path"] == "charts/mltrl-operator"
    assert operator["source"]["helm"]["skipCrds"] is True
    assert operator["source"]["helm"]["valuesObject"]["alerts"]["token"]["existingSecret"]
    assert apps["mltrl-platform"]["spec"]["source"]["path"] == "manifests/argocd/apps"


def test_technologies_app_ignores_what_the_operator_and_reviewers_write() -> None:
    spec = _applications()["payments-technologies"]["spec"]
    ignored = {entry["kind"]: entry for entry in spec["ignoreDifferences"]}
    assert "/status" in ignored["MLTechnology"]["jsonPointers"]
    assert "/status" in ignored["LevelReview"]["jsonPointers"]
    assert "/spec/approvals" in ignored["LevelReview"]["jsonPointers"]
    assert any("operator.mltrl.dev/" in e for e in ignored["MLTechnology"]["jqPathExpressions"])
    assert "RespectIgnoreDifferences=true" in spec["syncPolicy"]["syncOptions"]


def test_argocd_cm_patch_carries_the_lua_verbatim() -> None:
    patch = yaml.safe_load((REPO / "manifests" / "argocd" / "argocd-cm-health.yaml").read_text())
    assert patch["metadata"]["name"] == "argocd-cm"
    for kind in KINDS:
        script = (HEALTH / "mltrl.dev" / kind / "health.lua").read_text()
        assert patch["data"][f"resource.customizations.health.mltrl.dev_{kind}"] == script
