"""What the chart installs is taken by an API server: its CRDs, its default policy, the
user roles' kinds, and then the examples, all applied with real kubectl to the sandbox."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml

from tests.delivery.support import CHART, tool
from tests.integration.harness import EXAMPLES, Sandbox


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    cluster = Sandbox(tmp_path_factory.mktemp("chart"), kserve=False).start()
    yield cluster
    cluster.stop()


def test_the_charts_crds_policy_and_the_examples_apply(sandbox: Sandbox) -> None:
    applied = sandbox.kubectl("apply", "-f", str(CHART / "crds")).stdout
    assert applied.count("customresourcedefinition.apiextensions.k8s.io/") == len(
        list((CHART / "crds").glob("*.yaml"))
    ) >= 4

    rendered = tool("render_manifests").render_chart({"defaultPolicy": {"enabled": True}})
    policies = [
        document
        for path, text in rendered.items()
        if not path.endswith("NOTES.txt")
        for document in yaml.safe_load_all(text)
        if document and document.get("kind") == "MLTRLPolicy"
    ]
    assert len(policies) == 1
    sandbox.apply(policies)

    output = sandbox.kubectl("apply", "-f", str(EXAMPLES)).stdout
    assert "mltechnology.mltrl.dev/fraud-detection created" in output
    listed = sandbox.kubectl("get", "mltrlpolicy").stdout
    assert policies[0]["metadata"]["name"] in listed and "production" in listed
