"""The serving gate: InferenceServices appear at the required level, follow the model, stop
on a switchback, and ungoverned ones are stopped; composites follow their weakest part."""

from __future__ import annotations

import json

import pytest

from tests.integration.harness import Sandbox, condition, eventually
from tests.integration.operator.scenarios import ALLOW_NEW_MODELS, policy, review, technology
from tests.integration.operator.test_reviews import status_of, wait_for_level, wait_for_phase

pytestmark = pytest.mark.integration


def test_serving_follows_the_level_and_the_model(sandbox: Sandbox, namespace: str) -> None:
    sandbox.apply(policy(f"{namespace}-policy", namespace, minimum_level=5, on_demotion="stop",
                         model_change=ALLOW_NEW_MODELS))
    sandbox.apply(technology("fraud", namespace, entry_level=4, model_version="1.0.0"))
    status = wait_for_level(sandbox, "fraud", namespace, 4)
    assert eventually(lambda: status_of(sandbox, "mltech", "fraud", namespace)
                      .get("serving", {}).get("state") == "Blocked")
    assert sandbox.get("isvc", "fraud", namespace) is None

    sandbox.apply(review("fraud-to-5", namespace, "fraud", 4, 5, model_version="1.0.0"))
    isvc = eventually(lambda: sandbox.get("isvc", "fraud", namespace), what="the InferenceService")
    model = isvc["spec"]["predictor"]["model"]
    assert model["storageUri"] == "s3://models/fraud/1.0.0"
    assert model["modelFormat"]["name"] == "sklearn"
    assert isvc["spec"]["predictor"]["minReplicas"] == 1
    assert isvc["metadata"]["labels"]["mltrl.dev/technology"] == "fraud"
    owner = isvc["metadata"]["ownerReferences"][0]
    technology_uid = sandbox.get("mltech", "fraud", namespace)["metadata"]["uid"]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("MLTechnology", "fraud", technology_uid)

    serving = eventually(
        lambda: (s := status_of(sandbox, "mltech", "fraud", namespace).get("serving", {}))
        .get("state") == "Serving" and s,
        what="the technology to report Serving",
    )
    assert serving["url"].startswith("http://fraud.") and serving["ready"] is True
    known_good = status_of(sandbox, "mltech", "fraud", namespace)["knownGoodModels"]
    assert known_good[-1]["version"] == "1.0.0"

    sandbox.kubectl("patch", "mltech", "fraud", "-n", namespace, "--type=merge", "-p", json.dumps(
        {"spec": {"model": {"version": "1.1.0", "storageUri": "s3://models/fraud/1.1.0"}}}
    ))
    eventually(
        lambda: (sandbox.get("isvc", "fraud", namespace) or {}).get("spec", {})
        .get("predictor", {}).get("model", {}).get("storageUri") == "s3://models/fraud/1.1.0",
        what="the new model to roll into the InferenceService",
    )
    known = eventually(
        lambda: [m["version"] for m in
                 status_of(sandbox, "mltech", "fraud", namespace).get("knownGoodModels", [])]
        == ["1.0.0", "1.1.0"],
        what="both models recorded as known good",
    )
    assert known

    sandbox.apply(review("fraud-back-to-4", namespace, "fraud", 5, 4,
                         reason="error budget burnt in the integration environment",
                         model_version="1.1.0"))
    wait_for_phase(sandbox, "fraud-back-to-4", namespace, "Applied")
    stopped = eventually(
        lambda: (i := sandbox.get("isvc", "fraud", namespace)) and
        i["metadata"].get("annotations", {}).get("serving.kserve.io/stop") == "true" and i,
        what="the InferenceService to be stopped",
    )
    assert stopped
    status = eventually(
        lambda: (s := status_of(sandbox, "mltech", "fraud", namespace))
        .get("serving", {}).get("state") == "Stopped" and s,
        what="the technology to report Stopped",
    )
    switchback = status["history"][-1]
    assert (switchback["kind"], switchback["switchbackType"], switchback["to"]) == (
        "switchback", "review", 4)
    assert condition({"status": status}, "ServingAllowed")["status"] == "False"


def test_a_composite_is_as_ready_as_its_weakest_component(
    sandbox: Sandbox, namespace: str
) -> None:
    sandbox.apply(policy(f"{namespace}-policy", namespace))
    sandbox.apply([
        technology("encoder", namespace, entry_level=5),
        technology("features", namespace, entry_level=3),
        technology("pipeline", namespace, entry_level=6, components=["encoder", "features"]),
    ])
    composite = eventually(
        lambda: (s := status_of(sandbox, "mltech", "pipeline", namespace))
        .get("effectiveLevel") == 3 and s,
        what="the composite's effective level to be its weakest component's",
    )
    assert composite["level"] == 6
    sandbox.apply(review("features-to-4", namespace, "features", 3, 4))
    wait_for_level(sandbox, "features", namespace, 4)
    eventually(
        lambda: status_of(sandbox, "mltech", "pipeline", namespace).get("effectiveLevel") == 4,
        what="the composite to follow its component up",
    )


def test_an_ungoverned_inference_service_is_stopped(sandbox: Sandbox, namespace: str) -> None:
    sandbox.apply(policy(f"{namespace}-policy", namespace, governed=True))
    sandbox.apply({
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "rogue", "namespace": namespace},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"},
                                         "storageUri": "s3://somewhere/model"}}},
    })
    stopped = eventually(
        lambda: (i := sandbox.get("isvc", "rogue", namespace)) and
        i["metadata"].get("annotations", {}).get("serving.kserve.io/stop") == "true" and i,
        what="the rogue InferenceService to be stopped",
    )
    assert stopped
    events = json.loads(sandbox.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)
    reasons = {e["reason"] for e in events["items"] if e["involvedObject"]["name"] == "rogue"}
    assert "ServingBlocked" in reasons


def test_a_stricter_policy_reevaluates_what_it_covers(sandbox: Sandbox, namespace: str) -> None:
    sandbox.apply(policy(f"{namespace}-policy", namespace, minimum_level=5))
    sandbox.apply(technology("churn", namespace, entry_level=5, model_version="2.0.0"))
    sandbox.apply(review("churn-pending", namespace, "churn", 5, 6, approvers=()))
    eventually(lambda: sandbox.get("isvc", "churn", namespace), what="serving at level 5")
    pending = wait_for_phase(sandbox, "churn-pending", namespace, "Pending")
    assert not any("product-owner" in item for item in pending["unmet"])

    stricter = policy(f"{namespace}-policy", namespace, minimum_level=6)
    stricter["spec"]["requirements"][5]["requiredRoles"] = ["qa", "product-owner"]
    sandbox.apply(stricter)
    eventually(
        lambda: (i := sandbox.get("isvc", "churn", namespace)) and
        i["metadata"].get("annotations", {}).get("serving.kserve.io/stop") == "true",
        what="the InferenceService to stop under the stricter policy",
    )
    allowed = condition(sandbox.get("mltech", "churn", namespace), "ServingAllowed")
    assert allowed is not None and allowed["status"] == "False"
    assert "requires level 6" in allowed["message"]
    eventually(
        lambda: any("product-owner" in item for item in
                    status_of(sandbox, "lvlreview", "churn-pending", namespace).get("unmet", [])),
        what="the pending review to be re-evaluated against the new policy",
    )


def test_audit_mode_reports_but_does_not_stop(sandbox: Sandbox, namespace: str) -> None:
    sandbox.apply(policy(f"{namespace}-policy", namespace, governed=True, enforcement="audit"))
    sandbox.apply({
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "shadow", "namespace": namespace},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"},
                                         "storageUri": "s3://somewhere/model"}}},
    })

    def reported() -> list[str]:
        events = json.loads(sandbox.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)
        return [e["message"] for e in events["items"]
                if e["involvedObject"]["name"] == "shadow" and e["reason"] == "ServingNotAllowed"]

    messages = eventually(reported, what="an audit event on the InferenceService")
    assert "audit" in messages[0]
    isvc = sandbox.get("isvc", "shadow", namespace)
    assert isvc is not None
    assert isvc["metadata"].get("annotations", {}).get("serving.kserve.io/stop") != "true"
