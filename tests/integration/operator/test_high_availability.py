"""Two replicas in one kopf peering: one acts, and the other takes over when it leaves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import MLTRL, Operator, Process, Sandbox, eventually
from tests.integration.operator.scenarios import policy, review, technology
from tests.integration.operator.test_reviews import wait_for_level, wait_for_phase

pytestmark = pytest.mark.integration

PEERING = "mltrl-operator"


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
        [str(MLTRL), "run", "--kubeconfig", str(sandbox.kubeconfig),
         "--liveness", f"http://127.0.0.1:{operator.health_port}/healthz",
         f"--peering={PEERING}", "--priority", str(priority)],
        workdir / f"{name}.log", env={"POD_ID": name},
    )
    return operator


def test_one_replica_acts_and_the_other_takes_over(tmp_path: Path) -> None:
    sandbox = Sandbox(tmp_path, kserve=False).start()
    replicas: list[Operator] = []
    try:
        sandbox.apply([peering_crd("clusterkopfpeerings", "ClusterKopfPeering", "Cluster"),
                       peering_crd("kopfpeerings", "KopfPeering", "Namespaced")])
        sandbox.apply({"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering",
                       "metadata": {"name": PEERING}})
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
