"""What the reconciler decides about a Pending incident, and that deciding again changes
nothing; the Jobs it plans, created against an API server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from mltrl_operator.api import crdgen
from mltrl_operator.api.technology import (
    Incident,
    KnownGoodModel,
    LevelTransition,
    MLTechnologySpec,
    MLTechnologyStatus,
    ServingState,
    ServingStatus,
)
from mltrl_operator.controllers.context import OperatorContext
from mltrl_operator.controllers.technology import StaleSnapshot, apply
from mltrl_operator.domain.incidents import (
    IncidentDecisions,
    Owner,
    carry_rollback,
    decide_incidents,
    retraining_job_name,
    settle,
)
from mltrl_operator.domain.plan import Plan, PlanInputs
from mltrl_operator.domain.policy import DEFAULT_POLICY
from mltrl_operator.k8s.client import KubeClient
from mltrl_operator.k8s.connection import Connection
from mltrl_operator.k8s.resources import JOBS, NAMESPACES, TECHNOLOGIES
from mltrl_sandbox.crds import default_crd_documents
from mltrl_sandbox.server import SandboxServer

from .conftest import NAMESPACE, NOW

JOB_TEMPLATE = {
    "backoffLimit": 1,
    "template": {"spec": {"restartPolicy": "Never", "containers": [
        {"name": "train", "image": "registry.example.com/fraud-train:1"}]}},
}


def spec(**overrides: Any) -> MLTechnologySpec:
    return MLTechnologySpec.model_validate({
        "owner": "alice",
        "entryLevel": 4,
        "model": {"version": "1.2.0", "storageUri": "s3://m/1.2.0", "format": "sklearn"},
        "retraining": {"jobTemplate": JOB_TEMPLATE},
        **overrides,
    })


def known(*versions: str) -> list[KnownGoodModel]:
    return [
        KnownGoodModel(version=v, storage_uri=f"s3://m/{v}", format="sklearn",
                       served_at="2026-11-01T00:00:00Z")
        for v in versions
    ]


def incident(action: str, fingerprint: str = "f1", **extra: Any) -> Incident:
    return Incident.model_validate({
        "fingerprint": fingerprint, "alertName": "FraudAlert", "startsAt": "2026-11-22T11:00:00Z",
        "action": action, "receivedAt": "2026-11-22T11:00:05Z", **extra,
    })


def status(*incidents: Incident, level: int | None = 6, **extra: Any) -> MLTechnologyStatus:
    history = [LevelTransition.model_validate(
        {"to": lvl, "kind": "entry" if lvl == 4 else "promotion", "at": "2026-11-01T00:00:00Z"}
    ) for lvl in range(4, (level or 4) + 1)]
    return MLTechnologyStatus(
        level=level, effective_level=level, history=history if level else [],
        known_good_models=known("1.0.0", "1.1.0", "1.2.0"),
        serving=ServingStatus(state=ServingState.SERVING, allowed=True),
        incidents=list(incidents), **extra,
    )


OWNER = Owner("fraud", NAMESPACE, "uid-1")


def act(stored: MLTechnologyStatus, technology_spec: MLTechnologySpec | None = None,
        owner: Owner = OWNER) -> IncidentDecisions:
    return decide_incidents(owner, technology_spec or spec(), stored, NOW)


def test_rollback_serves_the_previous_known_good_model() -> None:
    work = act(status(incident("rollback")))
    [settled] = work.settlements
    assert (settled.state, settled.reason) == ("Acted", "RolledBack")
    assert "serving known-good model 1.1.0 (s3://m/1.1.0) instead of 1.2.0" in settled.message
    rollback = work.status.serving.rollback  # type: ignore[union-attr]
    assert rollback is not None and rollback.model is not None
    assert (rollback.model.version, rollback.replaced_version) == ("1.1.0", "1.2.0")
    assert rollback.alert == "FraudAlert/f1"


def test_redoing_a_rollback_from_the_same_stored_state_gives_the_same_model() -> None:
    stored = status(incident("rollback"))
    first = act(stored)
    again = act(stored)
    assert first.status == again.status


def test_a_second_rollback_goes_one_model_further_back() -> None:
    first = act(status(incident("rollback")))
    settled = settle(first.status, first.settlements)
    with_second = settled.model_copy(
        update={"incidents": [*settled.incidents, incident("rollback", "f2")]}
    )
    second = act(with_second)
    assert second.status.serving.rollback.model.version == "1.0.0"  # type: ignore[union-attr]


def test_a_rollback_with_nothing_before_stops_serving() -> None:
    only = status(incident("rollback")).model_copy(update={"known_good_models": known("1.2.0")})
    work = act(only)
    assert work.status.serving.rollback.model is None  # type: ignore[union-attr]
    assert "serving is stopped" in work.settlements[0].message


def test_a_rollback_without_a_model_fails() -> None:
    work = act(status(incident("rollback")), spec(model=None))
    assert work.settlements[0].state == "Failed"
    assert work.settlements[0].message == "not rolled back: spec.model is not set"


def test_the_rollback_lasts_until_spec_model_changes() -> None:
    work = act(status(incident("rollback")))
    computed = status()  # compute_status rebuilds status.serving without the rollback
    kept = carry_rollback(work.status, computed, spec())
    assert kept.serving.rollback is not None  # type: ignore[union-attr]
    moved_on = spec(model={"version": "1.3.0", "storageUri": "s3://m/1.3.0", "format": "sklearn"})
    assert carry_rollback(work.status, computed, moved_on).serving.rollback is None  # type: ignore[union-attr]
    same_version_new_uri = spec(
        model={"version": "1.2.0", "storageUri": "s3://m/1.2.0-fixed", "format": "sklearn"}
    )
    cleared = carry_rollback(work.status, computed, same_version_new_uri)
    assert cleared.serving.rollback is None  # type: ignore[union-attr]


def test_demote_is_an_embedded_switchback_recorded_with_the_alert() -> None:
    work = act(status(incident("demote", toLevel=5)))
    assert work.status.level == 5
    last = work.status.history[-1]
    assert (last.kind, last.switchback_type, last.from_level, last.to, last.alert) == (
        "switchback", "embedded", 6, 5, "FraudAlert/f1"
    )
    settled = settle(work.status, work.settlements)
    assert settled.incidents[0].state == "Acted"
    assert settled.incidents[0].message.startswith("embedded switchback from level 6 to 5")
    assert settled.incidents[0].message.endswith("; serving is now Serving")


def test_demote_below_the_entry_level_is_refused() -> None:
    work = act(status(incident("demote", toLevel=2)))
    assert work.status.level == 6
    assert work.settlements[0].state == "Failed"
    assert work.settlements[0].message == (
        "not demoted: level 2 is below the technology's entry level 4"
    )


def test_demote_waits_for_a_technology_without_a_level_yet() -> None:
    work = act(status(incident("demote"), level=None))
    assert work.settlements == ()


def test_notify_only_reports() -> None:
    work = act(status(incident("notify")))
    assert (work.settlements[0].state, work.settlements[0].reason) == ("Acted", "AlertNotified")
    assert work.status == status(incident("notify"))


def test_settled_incidents_are_not_acted_on_again() -> None:
    done = incident("rollback", state="Acted")
    work = act(status(done))
    assert work.settlements == ()


def test_job_names_are_stable_short_and_per_incident() -> None:
    long_name = "a-very-long-technology-name-that-goes-on-and-on-and-on-forever"
    name = retraining_job_name(long_name, incident("retrain"))
    assert len(name) <= 63 and name == retraining_job_name(long_name, incident("retrain"))
    assert name != retraining_job_name(long_name, incident("retrain", "f2"))
    later = incident("retrain", startsAt="2026-11-22T12:00:00Z")
    assert retraining_job_name("fraud", later) != retraining_job_name("fraud", incident("retrain"))


# --- retraining against an API server -----------------------------------------------------


@pytest.fixture
async def kube() -> AsyncIterator[KubeClient]:
    async with SandboxServer(default_crd_documents(None) + crdgen.crd_documents()) as server:
        client = KubeClient(Connection(server=server.url, token="admin-token"))
        await client.create(NAMESPACES, None, {"metadata": {"name": NAMESPACE}})
        try:
            yield client
        finally:
            await client.close()


async def _technology(kube: KubeClient, **overrides: Any) -> dict[str, Any]:
    body = {"metadata": {"name": "fraud"}, "spec": spec(**overrides).to_wire()}
    return await kube.create(TECHNOLOGIES, NAMESPACE, body)


async def _apply(
    kube: KubeClient, technology: dict[str, Any], technology_spec: MLTechnologySpec,
    stored: MLTechnologyStatus,
) -> Plan:
    ctx = OperatorContext(client=kube, clock=lambda: NOW)
    inputs = PlanInputs(
        technology=technology, spec=technology_spec, status=stored, components=[],
        validation_errors=[], policy=DEFAULT_POLICY, inference_service=None, now=NOW,
    )
    plan, _ = await apply(ctx, inputs)
    return plan


async def test_retrain_creates_one_job_per_incident(kube: KubeClient) -> None:
    technology = await _technology(kube)
    stored = status(incident("retrain"))
    first = await _apply(kube, technology, spec(), stored)
    # A crash after the Job and before the status: the same decision made again.
    with pytest.raises(StaleSnapshot):
        await _apply(kube, technology, spec(), stored)
    jobs = await kube.list(JOBS, NAMESPACE)
    assert len(jobs) == 1
    job = jobs[0]
    assert first.settlements[0].job == job["metadata"]["name"]
    assert first.settlements[0].message.startswith("created Job")
    labels = job["metadata"]["labels"]
    assert labels["mltrl.dev/technology"] == "fraud" and len(labels["mltrl.dev/incident"]) == 16
    assert job["metadata"]["annotations"]["mltrl.dev/alert-fingerprint"] == "f1"
    owner = job["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"]) == ("MLTechnology", technology["metadata"]["uid"])
    assert job["spec"]["template"]["spec"]["containers"][0]["name"] == "train"
    assert first.status.incidents[0].job == job["metadata"]["name"]
    assert first.status.incidents[0].state == "Acted"


async def test_a_full_job_manifest_as_template_keeps_its_labels(kube: KubeClient) -> None:
    template = {"metadata": {"labels": {"team": "fraud"}}, "spec": JOB_TEMPLATE}
    technology = await _technology(kube, retraining={"jobTemplate": template})
    await _apply(
        kube, technology, spec(retraining={"jobTemplate": template}), status(incident("retrain"))
    )
    [job] = await kube.list(JOBS, NAMESPACE)
    assert job["metadata"]["labels"]["team"] == "fraud"


@pytest.mark.parametrize(
    ("retraining", "message"),
    [
        (None, "no retraining: spec.retraining.jobTemplate is not set"),
        ({"jobTemplate": {"parallelism": 2}},
         "no retraining: spec.retraining.jobTemplate has no pod template (spec.template of a Job)"),
    ],
)
async def test_retrain_without_a_usable_template_fails(
    kube: KubeClient, retraining: dict[str, Any] | None, message: str
) -> None:
    technology = await _technology(kube, retraining=retraining)
    plan = await _apply(kube, technology, spec(retraining=retraining), status(incident("retrain")))
    assert (plan.settlements[0].state, plan.settlements[0].message) == ("Failed", message)
    assert await kube.list(JOBS, NAMESPACE) == []


def test_a_job_the_api_server_refused_settles_the_incident_as_failed() -> None:
    name = retraining_job_name("fraud", incident("retrain"))
    decided = decide_incidents(
        OWNER, spec(), status(incident("retrain")), NOW, {name: "422 Invalid: spec.template"}
    )
    assert decided.jobs == ()
    assert (decided.settlements[0].state, decided.settlements[0].message) == (
        "Failed", f"could not create Job {name}: 422 Invalid: spec.template"
    )
