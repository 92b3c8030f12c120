"""A predictor template field KServe does not know is refused when the MLTechnology is
applied (real kubectl, the operator's webhook), naming the field: KServe would otherwise
drop it and serve something other than what was reviewed."""

from __future__ import annotations

import json

import pytest

from tests.integration.admission.conftest import SecureSandbox
from tests.integration.operator.scenarios import technology

pytestmark = pytest.mark.integration


def test_a_predictor_field_kserve_does_not_know_is_refused_by_name(
    sandbox: SecureSandbox, namespace: str
) -> None:
    body = technology("scorer", namespace, model_version="1.0")
    body["spec"]["serving"]["predictor"] = {"minReplica": 1, "model": {"storageURI": "s3://x"}}
    refused = sandbox.as_user("alice", "apply", "-f", "-", input=json.dumps(body))
    assert refused.returncode != 0, refused.stdout
    assert "spec.serving.predictor.minReplica: Invalid: is not a field of KServe's " \
        'V1beta1PredictorSpec (kserve 0.21.0) (did you mean "minReplicas"?)' in refused.stderr
    assert "spec.serving.predictor.model.storageURI" in refused.stderr
    assert sandbox.get("mltech", "scorer", namespace) is None

    body["spec"]["serving"]["predictor"] = {"minReplicas": 1, "model": {"args": ["--x"]}}
    sandbox.as_user("alice", "apply", "-f", "-", input=json.dumps(body), check=True)
