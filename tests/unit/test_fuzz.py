"""Fuzzing with a fixed budget: whatever the receiver and the webhooks are sent, and
whatever spec a technology carries, the answer is a result or a 400-type error naming the
problem, never an exception that would become a 500 or a crashed reconcile."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from mltrl_operator.alerts.payload import PayloadError, parse_notification
from mltrl_operator.api.technology import MLTechnologySpec, MLTechnologyStatus
from mltrl_operator.domain.json_body import JsonBodyError, load_json
from mltrl_operator.domain.plan import PlanInputs, plan_technology
from mltrl_operator.domain.policy import DEFAULT_POLICY, EffectivePolicy
from mltrl_operator.domain.validation import validate_technology
from mltrl_operator.webhooks.rules import ENDPOINTS, Settings, admit
from mltrl_operator.webhooks.wire import MalformedReview, parse_review_body

NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
BUDGET = settings(
    max_examples=100, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


def _alert() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "status": st.sampled_from(["firing", "resolved", "pending", ""]),
            "labels": st.dictionaries(
                st.sampled_from(["alertname", "mltrl_technology", "namespace", "pod", "x"]),
                st.one_of(st.text(max_size=12), st.integers()), max_size=5,
            ),
            "startsAt": st.one_of(
                st.sampled_from(["2026-11-22T11:00:00Z", "2026-11-22T11:00:00.123456789Z",
                                 "2026-11-22 11:00", "", "0001-01-01T00:00:00Z"]),
                st.text(max_size=25),
            ),
            "fingerprint": st.one_of(st.text(max_size=17), st.integers()),
        },
        optional={"annotations": json_values, "endsAt": json_values,
                  "generatorURL": json_values},
    )


notifications = st.fixed_dictionaries(
    {"version": st.sampled_from(["4", "3", 4]), "status": st.sampled_from(["firing", "x"]),
     "alerts": st.one_of(st.lists(_alert(), max_size=4), json_values)},
    optional={"receiver": json_values, "groupLabels": json_values,
              "truncatedAlerts": json_values, "commonLabels": json_values},
)


@BUDGET
@given(st.one_of(st.binary(max_size=300), notifications.map(lambda n: json.dumps(n).encode())))
def test_the_receiver_parses_or_names_the_problem(raw: bytes) -> None:
    try:
        parse_notification(raw)
    except PayloadError as error:
        assert str(error)


@BUDGET
@given(st.one_of(
    st.binary(max_size=200),
    st.text(alphabet="[]{}\",:0123456789aeflnrstuNIaif\\ ", max_size=200).map(str.encode),
    json_values.map(lambda v: json.dumps(v).encode()),
))
def test_json_bodies_load_or_name_the_problem(raw: bytes) -> None:
    try:
        load_json(raw)
    except JsonBodyError as error:
        assert str(error)


model_specs = st.fixed_dictionaries(
    {"version": st.text(max_size=8), "storageUri": st.text(max_size=12),
     "format": st.text(max_size=8)},
)
technology_specs = st.fixed_dictionaries(
    {"owner": st.one_of(st.text(max_size=8), st.integers())},
    optional={
        "entryLevel": st.integers(-2, 12),
        "targetLevel": st.integers(-2, 12),
        "model": st.one_of(model_specs, json_values),
        "serving": st.one_of(
            st.fixed_dictionaries({}, optional={
                "enabled": st.booleans(), "requiredLevel": st.integers(-1, 11),
                "inferenceServiceName": st.text(max_size=70),
                "predictor": st.dictionaries(st.text(max_size=6), json_values, max_size=3)}),
            json_values),
        "components": st.lists(st.fixed_dictionaries(
            {"name": st.text(max_size=10)}, optional={"namespace": st.text(max_size=10)}),
            max_size=3),
        "monitoring": json_values,
        "retraining": json_values,
    },
)


class _Cluster:
    async def technology(self, namespace: str, name: str) -> dict[str, Any] | None:
        return None

    async def technologies(self) -> list[dict[str, Any]]:
        return []

    async def inference_service(self, namespace: str, name: str) -> dict[str, Any] | None:
        return None

    async def waivers(self, namespace: str) -> list[dict[str, Any]]:
        return []

    async def policy_for(self, namespace: str) -> EffectivePolicy:
        return DEFAULT_POLICY


def _review(obj: Any) -> bytes:
    return json.dumps({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "u1", "kind": {"group": "mltrl.dev", "version": "v1alpha1",
                                  "kind": "MLTechnology"},
            "resource": {"group": "mltrl.dev", "version": "v1alpha1",
                         "resource": "mltechnologies"},
            "operation": "CREATE", "namespace": "payments", "name": "fraud",
            "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
            "object": obj,
        },
    }).encode()


@BUDGET
@given(st.one_of(
    technology_specs.map(lambda spec: {"apiVersion": "mltrl.dev/v1alpha1",
                                       "kind": "MLTechnology",
                                       "metadata": {"name": "fraud", "namespace": "payments"},
                                       "spec": spec}),
    json_values,
))
def test_the_technology_webhook_answers_every_object(obj: Any) -> None:
    try:
        request = parse_review_body(_review(obj))
    except MalformedReview as error:
        assert str(error)
        return
    endpoint = next(e for e in ENDPOINTS if e.path == "/validate-mltechnology")
    verdict = asyncio.run(admit(endpoint, request, _Cluster(), Settings(clock=lambda: NOW)))
    assert verdict.allowed or verdict.message


@BUDGET
@given(technology_specs)
def test_a_readable_spec_always_plans(raw: dict[str, Any]) -> None:
    try:
        spec = MLTechnologySpec.model_validate(raw)
    except ValidationError:
        return  # the CRD schema and the webhook refuse it with the field named
    errors = validate_technology(spec, name="fraud", namespace="payments")
    body = {"metadata": {"name": "fraud", "namespace": "payments", "uid": "u1",
                         "generation": 1}, "spec": raw, "status": {}}
    plan = plan_technology(PlanInputs(
        technology=body, spec=spec, status=MLTechnologyStatus(), components=[],
        validation_errors=errors, policy=DEFAULT_POLICY, inference_service=None, now=NOW,
    ))
    assert plan.status.level is not None
