from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from e2e.cluster import KubectlCluster, target

REVIEWER = "bob"


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubectlCluster]:
    with target(tmp_path_factory.mktemp("e2e")) as chosen:
        yield chosen


@pytest.fixture
def namespace(cluster: KubectlCluster) -> Iterator[str]:
    """A namespace of the test's own, removed afterwards (also on a real cluster)."""
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    cluster.apply({"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": name, "labels": {"mltrl-e2e": name}}})
    if cluster.real:
        cluster.apply(*[
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
             "metadata": {"name": f"{REVIEWER}-{role}", "namespace": name},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                         "name": role},
             "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                           "name": REVIEWER}]}
            for role in ("mltrl-editor", "mltrl-reviewer")
        ])
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
