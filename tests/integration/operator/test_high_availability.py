"""Two replicas in one kopf peering: one acts, and the other takes over when it leaves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import (
    MLTRL,
    OPERATOR_USER,
    Operator,
    Process,
    Sandbox,
    eventually,
)
from tests.integration.operator.scenarios import policy, review, technology
from tests.integration.operator.test_reviews import wait_for_level, wait_for_phase

pytestmark = pytest.mark.integration

PEERING = "mltrl-operator"
# The replicas run as the operator's service account with the chart's RBAC for HA.
HA_CHART = {"ha": {"enabled": True}}


def peering_crd(plural: str, kind: str, scope: str) -> dict[str, Any]:
    # The chart ships these (templates/kopf-peering.yaml) when ha.enabled.
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.kopf.dev"},
        "spec": {
            "group": "kopf.dev", "scope": scope,
            "names": {"kind": kind, "plural": plural, "singular": kind.lower(),
                      "listKind": f"{kind}List"},
            "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                "openAPIV3Schema": {"type": "object", "properties": {"status": {
                    "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}}}],
        },
    }


def peer_priorities(sandbox: Sandbox) -> dict[str, int]:
    status = (sandbox.get("clusterkopfpeering", PEERING) or {}).get("status") or {}
    return {peer: int(record.get("priority", 0)) for peer, record in status.items()
            if isinstance(record, dict)}


def replica(sandbox: Sandbox, workdir: Path, name: str, priority: int) -> Operator:
    operator = Operator(sandbox, workdir / f"{name}.log")
    operator.process = Process(
        [str(MLTRL), "run", "--kubeconfig", str(sandbox.kubeconfig), "--context", OPERATOR_USER,
         "--liveness", f"http://127.0.0.1:{operator.health_port}/healthz",
         f"--peering={PEERING}", "--priority", str(priority)],
        workdir / f"{name}.log", env={"POD_ID": name},
    )
    return operator


def with_peering(sandbox: Sandbox) -> None:
    sandbox.apply([peering_crd("clusterkopfpeerings", "ClusterKopfPeering", "Cluster"),
                   peering_crd("kopfpeerings", "KopfPeering", "Namespaced")])
    sandbox.apply({"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering",
                   "metadata": {"name": PEERING}})


def test_one_replica_acts_and_the_other_takes_over(tmp_path: Path) -> None:
    sandbox = Sandbox(tmp_path, kserve=False, rbac=True, chart_values=HA_CHART).start()
    replicas: list[Operator] = []
    try:
        with_peering(sandbox)
        replicas = [replica(sandbox, tmp_path, "replica-a", 200).start(),
                    replica(sandbox, tmp_path, "replica-b", 100).start()]
        peers = eventually(
            lambda: (p := peer_priorities(sandbox)).keys() >= {"replica-a", "replica-b"} and p,
            what="both replicas to register in the peering",
        )
        assert (peers["replica-a"], peers["replica-b"]) == (200, 100)

        namespace = sandbox.namespace("ha", {"mltrl-test": "ha"})
        sandbox.apply(policy("ha-policy", namespace))
        sandbox.apply(technology("ranker", namespace))
        sandbox.apply(review("ranker-to-4", namespace, "ranker", 3, 4))
        wait_for_phase(sandbox, "ranker-to-4", namespace, "Applied")

        replicas[0].stop()  # the active replica leaves; the other one resumes
        eventually(lambda: "replica-a" not in peer_priorities(sandbox),
                   what="the leaving replica to sign out of the peering")
        sandbox.apply(review("ranker-to-5", namespace, "ranker", 4, 5))
        wait_for_phase(sandbox, "ranker-to-5", namespace, "Applied")
        status = wait_for_level(sandbox, "ranker", namespace, 5)
        assert [(h["kind"], h.get("review")) for h in status["history"]] == [
            ("entry", None), ("promotion", "ranker-to-4"), ("promotion", "ranker-to-5"),
        ]
    finally:
        for operator in replicas:
            operator.stop()
        sandbox.stop()


def approvals_for_level_5(count: int) -> list[dict[str, Any]]:
    return [{"level": level, "minApprovals": count if level == 5 else 1,
             "requiredRoles": ["qa"], "evidence": [{"name": "unit-tests", "kind": "check"}]}
            for level in range(1, 10)]


def test_a_resumed_replica_never_acts_on_a_review_deleted_while_it_waited(
    tmp_path: Path,
) -> None:
    """The waiting replica's view is as old as its start; the watch it resumes re-lists
    what exists, but says nothing of what was deleted meanwhile."""
    sandbox = Sandbox(tmp_path, kserve=False, rbac=True, chart_values=HA_CHART).start()
    replicas: list[Operator] = []
    try:
        with_peering(sandbox)
        namespace = sandbox.namespace("ha-ghost", {"mltrl-test": "ha-ghost"})
        sandbox.apply(policy("ghost-policy", namespace, requirements=approvals_for_level_5(2)))
        sandbox.apply(technology("ranker", namespace, entry_level=4))
        replicas.append(replica(sandbox, tmp_path, "replica-a", 200).start())
        wait_for_level(sandbox, "ranker", namespace, 4)
        sandbox.apply(review("ranker-to-5", namespace, "ranker", 4, 5))
        wait_for_phase(sandbox, "ranker-to-5", namespace, "Pending")  # one approval of two

        replicas.append(replica(sandbox, tmp_path, "replica-b", 100).start())  # sees it
        sandbox.kubectl("delete", "lvlreview", "ranker-to-5", "-n", namespace)
        sandbox.apply(policy("ghost-policy", namespace, requirements=approvals_for_level_5(1)))
        replicas[0].stop()
        eventually(lambda: "replica-a" not in peer_priorities(sandbox),
                   what="the leaving replica to sign out of the peering")

        # The resumed replica works: it acts on a review written after it took over...
        sandbox.apply(technology("probe", namespace, entry_level=3))
        sandbox.apply(review("probe-to-4", namespace, "probe", 3, 4))
        wait_for_phase(sandbox, "probe-to-4", namespace, "Applied")
        sandbox.settle(quiet_for=2.0)
        # ...but the deleted review, which the relaxed policy would now let through, is
        # never applied from the replica's old view of it.
        status = (sandbox.get("mltech", "ranker", namespace) or {}).get("status") or {}
        assert status.get("level") == 4
        assert [h["kind"] for h in status["history"]] == ["entry"]
    finally:
        for operator in replicas:
            operator.stop()
        sandbox.stop()
