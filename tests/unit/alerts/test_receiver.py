"""The Alertmanager receiver: who may post, what it accepts, and what it records."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mltrl_operator import metrics
from mltrl_operator.k8s.resources import INFERENCE_SERVICES, POLICIES, TECHNOLOGIES

from .conftest import NAMESPACE, TOKEN, World, alert, notification, technology


def sample(name: str, **labels: str) -> float:
    value = metrics.REGISTRY.get_sample_value(name, labels or None)
    return value or 0.0


# --- who may post -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
     {"Authorization": "Bearer"}],
    ids=["no token", "wrong token", "not a bearer token", "empty bearer"],
)
async def test_without_the_token_nothing_is_recorded(
    world: World, headers: dict[str, str]
) -> None:
    status, body = await world.post(notification(alert()), token=None, headers=headers)
    assert status == 401
    assert body == {"error": "a valid bearer token is required"}
    assert await world.incidents() == []


async def test_a_401_tells_the_client_how_to_authenticate(world: World) -> None:
    response = await world.http.post("/alerts", json=notification(alert()))
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")


async def test_health_needs_no_token(world: World) -> None:
    response = await world.http.get("/healthz")
    assert (response.status, await response.text()) == (200, "ok")


# --- what it accepts ----------------------------------------------------------------------


async def test_malformed_json_is_a_400_that_says_where(world: World) -> None:
    status, body = await world.post(
        None, data=b'{"version": "4", "alerts": [', headers={"Content-Type": "application/json"}
    )
    assert status == 400
    assert body["error"].startswith("malformed JSON: ")
    assert "line 1 column" in body["error"]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda n: n["alerts"][0].update(labels=["a"]),
         "alerts[0].labels: must be an object of strings"),
        (lambda n: n["alerts"][0]["labels"].update(severity=3),
         "alerts[0].labels: must be an object of strings"),
        (lambda n: n["alerts"][0]["labels"].pop("alertname"),
         "alerts[0].labels.alertname: is required"),
        (lambda n: n["alerts"][0].pop("fingerprint"), "alerts[0].fingerprint: is required"),
        (lambda n: n["alerts"][0].update(fingerprint=""),
         "alerts[0].fingerprint: must not be empty"),
        (lambda n: n["alerts"][0].update(status="pending"),
         "alerts[0].status: must be 'firing' or 'resolved'"),
        (lambda n: n["alerts"][0].update(startsAt="yesterday"),
         "alerts[0].startsAt: must be an RFC 3339 timestamp, e.g. 2026-11-22T10:00:00Z"),
        (lambda n: n["alerts"][0].update(startsAt="2026-11-22T10:00:00"),
         "alerts[0].startsAt: must be an RFC 3339 timestamp with a zone (Z or +hh:mm)"),
        (lambda n: n["alerts"][0].update(annotations={"a": None}),
         "alerts[0].annotations: must be an object of strings"),
        (lambda n: n.update(version="3"),
         "version: must be '4' (Alertmanager's webhook version)"),
        (lambda n: n.pop("alerts"), "alerts: is required"),
        (lambda n: n.update(alerts={}), "alerts: must be a list"),
        (lambda n: n.update(commonLabels="x"), "commonLabels: must be an object of strings"),
        (lambda n: n.update(truncatedAlerts=-1),
         "truncatedAlerts: must be a whole number, 0 or more"),
        (lambda n: n["alerts"].append("an alert"), "alerts[1]: must be an object"),
    ],
)
async def test_a_schema_violation_is_a_400_naming_the_field(
    world: World, mutate: Any, message: str
) -> None:
    payload = notification(alert())
    mutate(payload)
    status, body = await world.post(payload)
    assert (status, body) == (400, {"error": message})
    assert await world.incidents() == []


async def test_one_bad_alert_keeps_the_good_ones_in_the_same_payload_out(world: World) -> None:
    bad = alert("FraudDrift")
    bad["labels"]["severity"] = 1
    status, body = await world.post(notification(alert(), bad))
    assert status == 400 and body["error"].startswith("alerts[1].labels")
    assert await world.incidents() == []


async def test_a_body_that_is_not_an_object_is_refused(world: World) -> None:
    status, body = await world.post([notification(alert())])
    assert (status, body) == (400, {"error": "(the body): must be an object"})


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
async def test_only_json_is_accepted(world: World, content_type: str) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    status, body = await world.post(
        None, data=json.dumps(notification(alert())).encode(), headers=headers
    )
    assert status == 415
    assert "application/json" in body["error"]
    assert await world.incidents() == []


async def test_json_with_a_charset_is_json(world: World) -> None:
    status, _ = await world.post(
        None, data=json.dumps(notification(alert())).encode(),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert status == 200


async def test_an_oversized_body_is_a_413(world: World) -> None:
    huge = alert()
    huge["annotations"]["description"] = "x" * (1024 * 1024)
    status, body = await world.post(notification(huge))
    assert status == 413 and "larger than 1048576 bytes" in body["error"]
    assert await world.incidents() == []


async def test_an_oversized_chunked_body_is_a_413_too(world: World) -> None:
    huge = json.dumps(notification(alert())).encode() + b" " * (1024 * 1024)

    async def chunks() -> Any:
        for start in range(0, len(huge), 100_000):
            yield huge[start:start + 100_000]

    status, _ = await world.post(
        None, data=chunks(), headers={"Content-Type": "application/json"}
    )
    assert status == 413
    assert await world.incidents() == []


# --- what it records ----------------------------------------------------------------------


async def test_a_firing_alert_becomes_a_pending_incident(world: World) -> None:
    firing = alert(severity="page")
    before = sample("mltrl_alerts_received_total", status="firing")
    status, body = await world.post(notification(firing))
    assert status == 200
    assert body["results"] == [{
        "fingerprint": firing["fingerprint"],
        "technology": f"{NAMESPACE}/fraud",
        "alertname": "FraudErrorRateHigh",
        "status": "firing",
        "startsAt": firing["startsAt"],
        "outcome": "recorded",
        "action": "rollback",
        "detail": "received; rollback pending",
    }]
    [incident] = await world.incidents()
    assert incident == {
        "fingerprint": firing["fingerprint"],
        "alertName": "FraudErrorRateHigh",
        "labels": firing["labels"],
        "startsAt": firing["startsAt"],
        "action": "rollback",
        "state": "Pending",
        "message": "received; rollback pending",
        "receivedAt": "2026-11-22T12:00:00Z",
    }
    assert sample("mltrl_alerts_received_total", status="firing") == before + 1


async def test_a_duplicate_delivery_changes_nothing(world: World) -> None:
    firing = alert("FraudDrift")
    await world.post(notification(firing))
    stored = await world.technology()
    duplicates = sample("mltrl_alert_actions_total", action="demote", result="duplicate")
    status, body = await world.post(notification(firing))
    assert status == 200
    assert body["results"][0]["outcome"] == "duplicate"
    assert body["results"][0]["detail"].startswith("already recorded (Pending)")
    after = await world.technology()
    assert after["metadata"]["resourceVersion"] == stored["metadata"]["resourceVersion"]
    assert sample("mltrl_alert_actions_total", action="demote", result="duplicate") == (
        duplicates + 1
    )


async def test_the_same_alert_firing_again_later_is_a_new_incident(world: World) -> None:
    first = alert(fingerprint="00000000000000aa")
    again = alert(fingerprint="00000000000000aa", starts_at="2026-11-22T13:00:00Z")
    await world.post(notification(first))
    await world.post(notification(again))
    assert [i["startsAt"] for i in await world.incidents()] == [
        first["startsAt"], again["startsAt"]
    ]


async def test_a_resolved_alert_closes_its_incident(world: World) -> None:
    firing = alert("FraudDrift")
    await world.post(notification(firing))
    resolved = {**firing, "status": "resolved", "endsAt": "2026-11-22T12:05:00Z"}
    status, body = await world.post(notification(resolved, status="resolved"))
    assert status == 200
    assert body["results"][0]["outcome"] == "resolved"
    [incident] = await world.incidents()
    assert incident["state"] == "Resolved"
    assert incident["resolvedAt"] == "2026-11-22T12:00:00Z"
    assert incident["message"] == "resolved before it was acted on"
    status, body = await world.post(notification(resolved, status="resolved"))
    assert body["results"][0]["outcome"] == "duplicate"


async def test_a_resolved_alert_that_was_never_recorded_closes_nothing(world: World) -> None:
    status, body = await world.post(notification(alert(status="resolved"), status="resolved"))
    assert status == 200 and body["results"][0]["outcome"] == "no-incident"
    assert await world.incidents() == []


@pytest.mark.parametrize(
    ("labels", "detail"),
    [
        ({"mltrl_technology": "ghost"}, "MLTechnology payments/ghost does not exist"),
        ({"mltrl_technology": "", "namespace": ""},
         "the alert has neither a 'mltrl_technology' nor an 'inferenceservice' label"),
        ({"namespace": ""}, "the alert has no 'namespace' label"),
        ({"mltrl_technology": "../../secrets"}, "'../../secrets' is not a valid MLTechnology name"),
        ({"mltrl_technology": "", "inferenceservice": "nobody"},
         "InferenceService payments/nobody does not exist"),
    ],
    ids=["no such technology", "no labels", "no namespace", "path in a label", "no such isvc"],
)
async def test_an_alert_about_no_known_technology_is_answered_200_and_reported(
    world: World, labels: dict[str, str], detail: str
) -> None:
    before = sample("mltrl_alert_actions_total", action="none", result="unknown-technology")
    status, body = await world.post(notification(alert(**labels)))
    assert status == 200
    [result] = body["results"]
    assert (result["outcome"], result["detail"], result["action"]) == (
        "unknown-technology", detail, None
    )
    assert sample("mltrl_alert_actions_total", action="none", result="unknown-technology") == (
        before + 1
    )


async def test_a_mixed_payload_records_what_it_can_and_reports_the_rest(world: World) -> None:
    status, body = await world.post(
        notification(alert(mltrl_technology="ghost"), alert("FraudDrift"), alert())
    )
    assert status == 200
    assert [r["outcome"] for r in body["results"]] == [
        "unknown-technology", "recorded", "recorded"
    ]
    assert [i["action"] for i in await world.incidents()] == ["demote", "rollback"]


async def test_an_inference_service_label_finds_its_technology(world: World) -> None:
    await world.kube.create(INFERENCE_SERVICES, NAMESPACE, {
        "metadata": {"name": "fraud-isvc", "labels": {"mltrl.dev/technology": "fraud"}},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"},
                                         "storageUri": "s3://m/1"}}},
    })
    status, body = await world.post(
        notification(alert(mltrl_technology="", inferenceservice="fraud-isvc"))
    )
    assert status == 200 and body["results"][0]["outcome"] == "recorded"
    assert len(await world.incidents()) == 1


async def test_the_policy_default_actions_apply_when_the_technology_has_no_rule(
    world: World,
) -> None:
    await world.kube.create(POLICIES, None, {
        "metadata": {"name": "alerts-policy"},
        "spec": {"alerts": {"defaultActions": [{"alertName": "ModelStale", "action": "retrain"}]}},
    })
    _, body = await world.post(notification(alert("ModelStale"), alert("Whatever")))
    assert [r["action"] for r in body["results"]] == ["retrain", "notify"]


async def test_a_concurrent_write_is_retried_not_overwritten(world: World) -> None:
    real = world.kube.patch_status
    raced = False

    async def racing(*args: Any, **kwargs: Any) -> Any:
        nonlocal raced
        if not raced:
            raced = True
            # Someone else (the reconciler) writes the status between our read and write.
            await real(TECHNOLOGIES, NAMESPACE, "fraud", {"level": 4})
        return await real(*args, **kwargs)

    world.kube.patch_status = racing  # type: ignore[method-assign]
    status, body = await world.post(notification(alert()))
    assert status == 200 and body["results"][0]["outcome"] == "recorded"
    stored = (await world.technology())["status"]
    assert stored["level"] == 4 and len(stored["incidents"]) == 1


def counting_gets(world: World) -> list[str]:
    """The names of the technologies the receiver reads from the API server."""
    read: list[str] = []
    real = world.kube.get

    async def get(resource: Any, namespace: str | None, name: str) -> Any:
        if resource == TECHNOLOGIES:
            read.append(name)
        return await real(resource, namespace, name)

    world.kube.get = get  # type: ignore[method-assign]
    return read


async def test_the_operators_cached_copy_saves_the_read_before_the_write(world: World) -> None:
    # Issue 17: the alert's way to its 200 is the intent's one conditional write, not a
    # GET and then the write, when the operator's cache holds the technology.
    current = await world.technology()
    world.receiver.cached = lambda namespace, name: dict(current)
    read = counting_gets(world)
    status, body = await world.post(notification(alert()))
    assert status == 200 and body["results"][0]["outcome"] == "recorded"
    assert read == []
    assert [i["state"] for i in await world.incidents()] == ["Pending"]


async def test_a_stale_cached_copy_is_read_again_not_written_over(world: World) -> None:
    stale = await world.technology()
    # The reconciler wrote after the cache's copy was taken (its watch event not yet in).
    await world.kube.patch_status(TECHNOLOGIES, NAMESPACE, "fraud", {"level": 4})
    world.receiver.cached = lambda namespace, name: dict(stale)
    read = counting_gets(world)
    status, body = await world.post(notification(alert()))
    assert status == 200 and body["results"][0]["outcome"] == "recorded"
    assert read == ["fraud"]  # the conditional write was refused: read, decided again
    stored = (await world.technology())["status"]
    assert stored["level"] == 4 and len(stored["incidents"]) == 1


async def test_a_cached_copy_never_answers_that_nothing_needs_storing(world: World) -> None:
    # A stale copy that already shows the alert would call it a duplicate: answered 200
    # with nothing stored, Alertmanager would not send it again. Only a write is trusted
    # to the copy (its resourceVersion makes it conditional); "nothing to write" is read.
    firing = alert("FraudDrift")
    await world.post(notification(firing))
    showing_it = await world.technology()
    await world.kube.patch_status(
        TECHNOLOGIES, NAMESPACE, "fraud", {"incidents": None, "settledAlerts": None}
    )
    assert await world.incidents() == []
    world.receiver.cached = lambda namespace, name: dict(showing_it)
    read = counting_gets(world)
    status, body = await world.post(notification(firing))
    assert status == 200 and body["results"][0]["outcome"] == "recorded"
    assert read == ["fraud"]
    assert [i["fingerprint"] for i in await world.incidents()] == [firing["fingerprint"]]


async def test_the_operator_is_told_of_the_stored_incident_before_the_answer(
    world: World,
) -> None:
    # Issue 17: the operator settles the incident from the write the receiver just made,
    # not once its watch brings that write back; told before the 200 is sent.
    before = await world.technology()
    world.receiver.cached = lambda namespace, name: dict(before)
    told: list[tuple[str | None, str, int]] = []

    def stored(based_on: dict[str, Any] | None, after: dict[str, Any]) -> None:
        told.append(((based_on or {})["metadata"]["resourceVersion"],
                     after["metadata"]["resourceVersion"],
                     len(after["status"]["incidents"])))

    world.receiver.stored = stored
    status, _ = await world.post(notification(alert()))
    assert status == 200
    now = await world.technology()
    assert told == [(before["metadata"]["resourceVersion"],
                     now["metadata"]["resourceVersion"], 1)]


async def test_a_technology_that_keeps_changing_is_a_503_for_alertmanager_to_retry(
    world: World,
) -> None:
    real = world.kube.patch_status

    async def always_racing(*args: Any, **kwargs: Any) -> Any:
        body = await world.technology()
        level = ((body.get("status") or {}).get("level") or 0) + 1
        await real(TECHNOLOGIES, NAMESPACE, "fraud", {"level": level % 10})
        return await real(*args, **kwargs)

    world.kube.patch_status = always_racing  # type: ignore[method-assign]
    status, body = await world.post(notification(alert()))
    assert status == 503 and "kept changing" in body["error"]
    assert await world.incidents() == []


async def test_an_unreachable_api_server_is_a_503(world: World) -> None:
    await world.sandbox.stop()
    status, body = await world.post(notification(alert()))
    assert status == 503
    assert body["error"].startswith("could not record the alerts, try again")


async def test_incidents_of_another_technology_are_left_alone(world: World) -> None:
    await world.kube.create(TECHNOLOGIES, NAMESPACE, technology("ranker"))
    await world.post(notification(alert(mltrl_technology="ranker")))
    assert await world.incidents("fraud") == []
    assert len(await world.incidents("ranker")) == 1



@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b'{"version": "4", "alerts": ' + b"[" * 3000 + b"]" * 3000 + b"}",
         "nested 3001 levels deep, more than the 64 allowed"),
        (b'{"version": "4", "status": "firing", "alerts": [], "x": NaN}',
         "NaN is not a JSON number"),
        (b'{"version": "\xfe"}', "the body is not UTF-8 (byte 13)"),
    ],
    ids=["deep", "nan", "not utf-8"],
)
async def test_unparseable_bodies_are_a_400_naming_the_problem(
    world: World, raw: bytes, problem: str
) -> None:
    status, body = await world.post(
        None, data=raw, headers={"Content-Type": "application/json"}
    )
    assert (status, body) == (400, {"error": f"malformed JSON: {problem}"})
    assert await world.incidents() == []


async def test_a_name_with_a_trailing_newline_names_no_technology(world: World) -> None:
    status, body = await world.post(notification(alert(mltrl_technology="fraud\n")))
    assert status == 200
    assert [r["outcome"] for r in body["results"]] == ["unknown-technology"]
    assert await world.incidents() == []


async def test_one_failing_technology_does_not_starve_the_others(world: World) -> None:
    """Progress per technology: what was stored stays stored, the answer is 503 until
    every alert is, and the retry redoes only what is missing."""
    await world.kube.create(TECHNOLOGIES, NAMESPACE, technology("ranker"))
    real = world.kube.patch_status
    failing = {"fraud"}

    async def fraud_is_down(resource: Any, namespace: str, name: str, *args: Any,
                            **kwargs: Any) -> Any:
        if name in failing:
            raise OSError("connection reset")
        return await real(resource, namespace, name, *args, **kwargs)

    world.kube.patch_status = fraud_is_down  # type: ignore[method-assign]
    payload = notification(
        alert(fingerprint="00000000000000a1"),
        alert(fingerprint="00000000000000b1", mltrl_technology="ranker"),
    )
    status, body = await world.post(payload)
    assert status == 503 and "payments/fraud" in body["error"]
    assert await world.incidents("fraud") == []
    assert [i["fingerprint"] for i in await world.incidents("ranker")] == ["00000000000000b1"]

    failing.clear()
    status, body = await world.post(payload)
    assert status == 200
    assert [r["outcome"] for r in body["results"]] == ["recorded", "duplicate"]
    assert len(await world.incidents("fraud")) == len(await world.incidents("ranker")) == 1


async def test_per_pod_alerts_of_one_alertname_are_one_incident(world: World) -> None:
    pods = [alert(fingerprint=f"{n:016x}", pod=f"scorer-{n}",
                  starts_at=f"2026-11-22T11:5{n}:00Z") for n in range(1, 4)]
    status, body = await world.post(notification(*pods))
    assert status == 200
    assert [r["outcome"] for r in body["results"]] == ["recorded", "grouped", "grouped"]
    assert len(await world.incidents()) == 1
    # Sent again (Alertmanager repeats): nothing changes.
    status, body = await world.post(notification(*pods))
    assert [r["outcome"] for r in body["results"]] == ["duplicate"] * 3


async def test_a_replay_beyond_the_kept_incidents_is_recognised(world: World) -> None:
    first = alert(fingerprint="00000000000000f0", starts_at="2026-11-22T00:00:00Z")
    assert (await world.post(notification(first)))[0] == 200
    # 20 newer incidents of other alerts push the first one out of status.incidents, once
    # the operator has settled it.
    for n in range(1, 21):
        await settle_every_incident(world)
        newer = alert(f"Other{n}", fingerprint=f"{n:016x}", starts_at="2026-11-22T01:00:00Z")
        assert (await world.post(notification(newer)))[0] == 200
    incidents = await world.incidents()
    assert "00000000000000f0" not in [i["fingerprint"] for i in incidents]
    status, body = await world.post(notification(first))
    assert (status, body["results"][0]["outcome"]) == (200, "duplicate")
    assert await world.incidents() == incidents


async def settle_every_incident(world: World, name: str = "fraud") -> None:
    """What the operator's reconcile does to each Pending incident (Acted)."""
    incidents = [{**i, "state": "Acted", "message": "done"} if i["state"] == "Pending" else i
                 for i in await world.incidents(name)]
    await world.kube.patch_status(TECHNOLOGIES, NAMESPACE, name, {"incidents": incidents})


async def test_a_pending_incident_is_never_dropped_for_a_new_alert(world: World) -> None:
    """20 incidents all Pending (the operator down, a burst of alerts): the next alert is
    not stored, since making room would drop an action never taken. The answer is 503,
    naming the technology and why, so Alertmanager sends it again; once the operator has
    settled some, the same notification is taken."""
    for n in range(1, 21):
        pending = alert(f"Burst{n}", fingerprint=f"{n:016x}", starts_at="2026-11-22T11:00:00Z")
        assert (await world.post(notification(pending)))[0] == 200
    before = await world.technology()
    deferred = sample("mltrl_alert_actions_total", action="none", result="deferred")
    latest = alert("Burst21", fingerprint="0000000000000021", starts_at="2026-11-22T11:00:00Z")
    status, body = await world.post(notification(latest))
    assert status == 503
    assert body["error"] == (
        "could not record the alerts, try again: payments/fraud: 1 alert(s) deferred, "
        "status.incidents holds 20 incidents, all Pending: not stored, since a Pending one "
        "is never dropped; send it again once the operator has settled some"
    )
    after = await world.technology()
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert sample("mltrl_alert_actions_total", action="none", result="deferred") == (
        deferred + 1
    )

    await settle_every_incident(world)
    status, body = await world.post(notification(latest))
    assert (status, body["results"][0]["outcome"]) == (200, "recorded")
    incidents = await world.incidents()
    assert [i["fingerprint"] for i in incidents if i["state"] == "Pending"] == [
        "0000000000000021"]
