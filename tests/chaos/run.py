"""Chaos: promotions, model changes and alerts while the operator is SIGKILLed at random
moments and the API server fails requests (`mltrl sandbox --faults RATE --latency ...`).

`make test` runs a short seeded round (tests/chaos/test_chaos.py); `make chaos` runs
`python -m tests.chaos.run --promotions 1000 --alerts 1000 --report docs/reliability.md`.

What is checked once the chaos stops and the operator has caught up:

- lost: a review not Applied (or without appliedAt), a review missing from its
  technology's history, its Promoted event missing (one event per promotion, on the
  technology, naming the review), an alert without its settlement event, a retrain alert
  without its Job;
- doubled: any of those present twice (history entries, events, Jobs);
- stuck: a review or an incident still not settled when the deadline passes;
- served early: an InferenceService created or resumed while its technology's stored
  status did not allow serving, or serving a model that status does not approve (issue
  15: `status.approvedModel`, or a rollback's known-good model), whether the version
  starts serving it or keeps serving it (KServe rewriting its status meanwhile); a model
  the stored status lists as known-good is allowed too while a rollback alert is stored
  Pending and the InferenceService was serving already (issue 17: an alert's rollback
  goes out just before the status that settles it, domain.plan's serving_first); and, once
  settled, any InferenceService serving a model its technology's final status does not
  approve. An observer (spared from the faults) watches technologies and
  InferenceServices; resourceVersions are one counter in the sandbox, so the events
  replay in the order the API server stored them. On a finding, `timeline.txt` in the
  work directory lists each offender's stored versions in that order.
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from e2e.bench import objects

from mltrl_operator.domain.alerts import alert_id
from tests.integration.harness import Process, Sandbox, eventually
from tests.integration.monitoring.stack import TOKEN, MonitoredOperator

GROUP = "/apis/mltrl.dev/v1alpha1"
NAMESPACE = "chaos"
SERVING_LEVEL = 5
PROMOTIONS_PER_TECHNOLOGY = 6  # entry level 3 -> 9
ACTIONS = ("rollback", "notify", "retrain")
SETTLEMENT_REASONS = {"RolledBack", "RollbackFailed", "AlertNotified", "RetrainingStarted",
                      "RetrainingFailed"}
SPARE = {"X-Sandbox-No-Faults": "1"}
JOB_TEMPLATE = {"template": {"spec": {"restartPolicy": "Never", "containers": [
    {"name": "train", "image": "registry.example.com/train:1"}]}}}


@dataclass
class ChaosConfig:
    seed: int = 1
    promotions: int = 12
    alerts: int = 12
    model_changes: int = 4
    fault_rate: float = 0.1
    latency: str = "1,3"
    kill_between: tuple[float, float] = (2.0, 5.0)
    deadline: float = 300.0

    @property
    def technologies(self) -> int:
        return max(1, -(-self.promotions // PROMOTIONS_PER_TECHNOLOGY))


@dataclass
class Figures:
    config: ChaosConfig
    promotions: int = 0
    alerts: int = 0
    alert_resends: int = 0
    deferred: int = 0
    """Notifications answered 503 because an alert was deferred (domain.alerts), sent again."""
    model_changes: int = 0
    kills: int = 0
    seconds: float = 0.0
    injected: dict[str, int] = field(default_factory=dict)
    lost: list[str] = field(default_factory=list)
    doubled: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    served_early: list[str] = field(default_factory=list)
    writes: int = 0
    checked: dict[str, int] = field(default_factory=dict)
    """How much each check looked at, so that a check that saw nothing shows."""

    @property
    def clean(self) -> bool:
        return not (self.lost or self.doubled or self.stuck or self.served_early)


class Api:
    """The driver's and the observer's client: admin, spared from the faults."""

    def __init__(self, url: str) -> None:
        self.url = url

    def call(self, method: str, path: str, body: Any = None,
             content_type: str = "application/json") -> Any:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": "Bearer admin-token", "Content-Type": content_type, **SPARE}
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers=headers)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def get(self, path: str) -> Any:
        return self.call("GET", path)

    def items(self, path: str) -> list[dict[str, Any]]:
        return list(self.get(path).get("items") or [])

    def create(self, path: str, body: dict[str, Any]) -> None:
        try:
            self.call("POST", path, body)
        except urllib.error.HTTPError as error:
            if error.code != 409:
                raise

    def merge(self, path: str, patch: dict[str, Any]) -> None:
        self.call("PATCH", path, patch, "application/merge-patch+json")


class FaultySandbox(Sandbox):
    def __init__(self, workdir: Path, config: ChaosConfig) -> None:
        super().__init__(workdir)
        self.process.args += ["--faults", str(config.fault_rate), "--latency", config.latency,
                              "--fault-seed", str(config.seed)]

    def faults(self, **changes: Any) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.url}/sandbox/faults", data=json.dumps(changes).encode(), method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            payload: dict[str, Any] = json.loads(response.read())
            return payload


class Observer(threading.Thread):
    """Watches technologies and InferenceServices, spared from the faults."""

    def __init__(self, api: Api) -> None:
        super().__init__(daemon=True)
        self.api = api
        self.events: list[tuple[int, str, dict[str, Any]]] = []
        self.stopping = threading.Event()
        self.lock = threading.Lock()

    def _watch(self, path: str, kind: str) -> None:
        version = "0"
        while not self.stopping.is_set():
            url = f"{self.api.url}{path}?watch=true&resourceVersion={version}"
            request = urllib.request.Request(
                url, headers={"Authorization": "Bearer admin-token", **SPARE})
            try:
                with urllib.request.urlopen(request, timeout=10) as stream:
                    for line in stream:
                        event = json.loads(line)
                        obj = event.get("object") or {}
                        rv = (obj.get("metadata") or {}).get("resourceVersion")
                        if event.get("type") in ("ADDED", "MODIFIED") and rv:
                            with self.lock:
                                self.events.append((int(rv), kind, obj))
                            version = rv
                        elif event.get("type") == "BOOKMARK" and rv:
                            version = rv
                        if self.stopping.is_set():
                            return
            except (OSError, ValueError):
                time.sleep(0.2)

    def run(self) -> None:
        threads = [
            threading.Thread(target=self._watch, args=(f"{GROUP}/mltechnologies", "tech"),
                             daemon=True),
            threading.Thread(
                target=self._watch,
                args=("/apis/serving.kserve.io/v1beta1/inferenceservices", "isvc"), daemon=True),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def timeline(self, technology: str) -> list[str]:
        """One line per stored version of a technology and its InferenceServices, in the
        order the API server stored them: what a failure report needs to be diagnosed."""
        with self.lock:
            events = sorted(self.events, key=lambda e: e[0])
        lines = []
        for rv, kind, obj in events:
            metadata = obj["metadata"]
            if _owner(obj) != technology:
                continue
            if kind == "tech":
                status = obj.get("status") or {}
                serving = status.get("serving") or {}
                shown = {
                    "generation": metadata.get("generation"),
                    "spec.model": ((obj.get("spec") or {}).get("model") or {}).get("version"),
                    "level": status.get("level"),
                    "approvedModel": (status.get("approvedModel") or {}).get("version"),
                    "approvedModels": [m.get("version")
                                       for m in status.get("approvedModels") or []],
                    "pendingModel": (status.get("pendingModel") or {}).get("version"),
                    "knownGood": [m.get("version")
                                  for m in status.get("knownGoodModels") or []],
                    "serving": {k: serving.get(k) for k in (
                        "allowed", "state", "modelVersion", "rollback") if k in serving},
                    "history": [f"{h.get('kind')}:{h.get('from')}->{h.get('to')}"
                                for h in status.get("history") or []][-3:],
                }
            else:
                shown = {
                    "storageUri": _served_uri(obj),
                    "stop": (metadata.get("annotations") or {}).get("serving.kserve.io/stop"),
                }
            lines.append(f"rv {rv} {kind} {metadata['name']}: {json.dumps(shown)}")
        return lines

    def most_pending(self) -> int:
        """The most incidents any technology's stored status held Pending at once (the
        receiver defers alerts beyond 20: domain.alerts)."""
        with self.lock:
            return max((sum(1 for i in (obj.get("status") or {}).get("incidents") or []
                            if i.get("state") == "Pending")
                        for _, kind, obj in self.events if kind == "tech"), default=0)

    def incident_versions(self, technology: str, fingerprint: str) -> list[str]:
        """Each stored version of `technology` in which the alert's incident changed: its
        state and message, or that it is gone (and whether settledAlerts then held it)."""
        with self.lock:
            events = sorted(self.events, key=lambda e: e[0])
        lines, last = [], None
        for rv, kind, obj in events:
            if kind != "tech" or obj["metadata"]["name"] != technology:
                continue
            status = obj.get("status") or {}
            found = next((i for i in status.get("incidents") or []
                          if i.get("fingerprint") == fingerprint), None)
            shown = (f"{found.get('state')}: {found.get('message')}" if found else
                     f"absent ({len((status.get('settledAlerts') or {}).get('keys') or [])} "
                     "settled keys)")
            if shown != last:
                writers = [f"{m.get('manager')}/{m.get('subresource', '')}@{m.get('time')}"
                           for m in obj["metadata"].get("managedFields") or []]
                lines.append(f"rv {rv}: {shown}; managers {writers}")
                last = shown
        return lines

    def served_early(self, checked: dict[str, int]) -> list[str]:
        with self.lock:
            events = sorted(self.events, key=lambda e: e[0])
        latest: dict[str, dict[str, Any]] = {}
        last_version: dict[str, tuple[str, str | None]] = {}  # InferenceService: owner, uri
        before: dict[str, tuple[str | None, bool]] = {}
        problems = []
        checked["InferenceService versions served"] = 0
        for rv, kind, obj in events:
            name = obj["metadata"]["name"]
            if kind == "tech":
                latest[name] = obj.get("status") or {}
                continue
            annotations = obj["metadata"].get("annotations") or {}
            stopped = annotations.get("serving.kserve.io/stop") == "true"
            uri = _served_uri(obj)
            # Whether this version starts serving something (created, resumed, another
            # model), or is the same serving written again (KServe's status).
            previous = before.get(name)
            starts = previous != (uri, stopped)
            before[name] = (uri, stopped)
            owner = _owner(obj)
            last_version[name] = (owner, None if stopped else uri)
            if stopped:
                continue
            checked["InferenceService versions served"] += 1
            status = latest.get(owner) or {}
            allowed = (status.get("serving") or {}).get("allowed")
            if not allowed or (status.get("level") or 0) < SERVING_LEVEL:
                problems.append(f"InferenceService {name} served at rv {rv} while its "
                                f"technology's stored status was level {status.get('level')}, "
                                f"allowed={allowed}")
            # Issue 15: only the approved model (or a rollback's known-good one) is served;
            # a model changed at the serving level waits for its change review.
            approved = _approved(status)
            if (uri not in approved and previous is not None and not previous[1]
                    and _rollback_pending(status) and uri in _known_good(status)):
                approved = {*approved, uri}  # Plan.serving_first: never a resume
                checked["rollbacks served before their status"] = (
                    checked.get("rollbacks served before their status", 0) + 1)
            checked["served models approved"] = checked.get("served models approved", 0) + 1
            if uri not in approved:
                problems.append(f"InferenceService {name} served {uri} at rv {rv} "
                                f"({'starts' if starts else 'keeps'} serving); the "
                                f"stored status approved {sorted(approved)}")
        # Settled: what each InferenceService serves in the end is what its technology's
        # final status approves.
        for name, (owner, uri) in sorted(last_version.items()):
            approved = _approved(latest.get(owner) or {})
            if uri is not None and uri not in approved:
                problems.append(f"InferenceService {name} still serves {uri} once settled; "
                                f"the final status approves {sorted(approved)}")
        return problems


def _owner(obj: dict[str, Any]) -> str:
    """The technology an object belongs to: an InferenceService's label, else its name."""
    metadata = obj["metadata"]
    return str((metadata.get("labels") or {}).get("mltrl.dev/technology", metadata["name"]))


def _served_uri(isvc: dict[str, Any]) -> str | None:
    model = ((isvc.get("spec") or {}).get("predictor") or {}).get("model") or {}
    uri = model.get("storageUri")
    return str(uri) if uri is not None else None


def _approved(status: dict[str, Any]) -> set[str]:
    """The models a technology's status lets its InferenceService serve: the approved
    model (issue 15), or the known-good model of a rollback in force."""
    rollback = ((status.get("serving") or {}).get("rollback") or {}).get("model") or {}
    return {(status.get("approvedModel") or {}).get("storageUri"),
            rollback.get("storageUri")} - {None}


def _rollback_pending(status: dict[str, Any]) -> bool:
    return any(incident.get("action") == "rollback" and incident.get("state") == "Pending"
               for incident in status.get("incidents") or [])


def _known_good(status: dict[str, Any]) -> set[str]:
    return {str(m["storageUri"]) for m in status.get("knownGoodModels") or []
            if m.get("storageUri")}


class Killer(threading.Thread):
    def __init__(self, operator: MonitoredOperator, config: ChaosConfig,
                 rng: random.Random) -> None:
        super().__init__(daemon=True)
        self.operator, self.config, self.rng = operator, config, rng
        self.kills = 0
        self.stopping = threading.Event()
        self.restarting = threading.Lock()

    def run(self) -> None:
        low, high = self.config.kill_between
        while not self.stopping.wait(self.rng.uniform(low, high)):
            with self.restarting:
                self.operator.process.kill()
                self.kills += 1
                try:
                    self.operator.start()
                except AssertionError:  # slow to start under faults: the next round tries
                    continue


def _policy() -> dict[str, Any]:
    # The benchmark's policy, less its `modelChange: allow`: here the built-in default
    # (review at the serving level) holds the model changes, and the observer checks that
    # only the approved model (or a rollback's known-good one) is ever served.
    body = objects.policy("chaos", "mltrl-chaos", SERVING_LEVEL)
    del body["spec"]["modelChange"]
    return body


def _technology(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "mltrl.dev/v1alpha1", "kind": "MLTechnology",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "owner": "alice", "entryLevel": 3, "targetLevel": 9,
            "model": {"version": "1.0.0", "storageUri": f"s3://models/{name}/1.0.0",
                      "format": "sklearn"},
            "serving": {"predictor": {"minReplicas": 1}},
            "monitoring": {"rules": [{"matchers": {"chaos_action": action}, "action": action}
                                     for action in ACTIONS]},
            "retraining": {"jobTemplate": JOB_TEMPLATE},
        },
    }


def _approvals(api: Api, spec: dict[str, Any]) -> list[dict[str, Any]]:
    """bob's approval, stamped as the admission webhook would (this sandbox runs without
    webhooks) on the review's content with the technology's model as stored now."""
    technology = api.get(f"{GROUP}/namespaces/{NAMESPACE}/mltechnologies/{spec['technology']}")
    model = (technology.get("spec") or {}).get("model")
    stamped_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return [objects.approval_on(spec, model, stamped_at)]


def _review(api: Api, name: str, technology: str, from_level: int) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "technology": technology, "fromLevel": from_level, "toLevel": from_level + 1,
        "evidence": [{"name": "unit-tests", "kind": "check", "passed": True,
                      "uri": "https://ci.example.com/run/1"}],
    }
    spec["approvals"] = _approvals(api, spec)
    return {
        "apiVersion": "mltrl.dev/v1alpha1", "kind": "LevelReview",
        "metadata": {"name": name, "namespace": NAMESPACE}, "spec": spec,
    }


def _reapprove_dismissed(api: Api) -> None:
    """A model change dismisses the approvals given before it (issue 11): bob looks again
    and approves the review as it stands now, as a reviewer would."""
    for review in api.items(f"{GROUP}/namespaces/{NAMESPACE}/levelreviews"):
        status = review.get("status") or {}
        if status.get("phase") == "Pending" and status.get("dismissedApprovals"):
            spec = review["spec"]
            api.merge(f"{GROUP}/namespaces/{NAMESPACE}/levelreviews/"
                      f"{review['metadata']['name']}", {"spec": {
                          "approvals": _approvals(api, spec)}})


def _alert(n: int, technology: str, action: str, starts: datetime) -> dict[str, Any]:
    return {
        "status": "firing", "fingerprint": f"{n:016x}",
        "labels": {"alertname": f"Chaos{n}", "mltrl_technology": technology,
                   "namespace": NAMESPACE, "chaos_action": action},
        "annotations": {}, "startsAt": starts.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _post(operator: MonitoredOperator, killer: Killer, alerts: list[dict[str, Any]],
          deadline: float, figures: Figures) -> dict[str, Any]:
    """As Alertmanager does: send again until the answer is 2xx; the receiver's answer."""
    payload = {"version": "4", "status": "firing", "receiver": "mltrl", "alerts": alerts}
    while time.monotonic() < deadline:
        with killer.restarting:
            pass  # not while the operator is being restarted
        try:
            code, answer = operator.post(payload, TOKEN)
        except OSError:
            code = 0
        if code == 200:
            return answer
        if code == 503 and " deferred, " in str(answer.get("error")):
            figures.deferred += 1  # 20 incidents Pending on a technology: sent again
        time.sleep(0.2)
    raise TimeoutError(f"the receiver never took {[a['fingerprint'] for a in alerts]}")


def run(workdir: Path, config: ChaosConfig) -> Figures:
    rng = random.Random(config.seed)
    figures = Figures(config)
    started = time.monotonic()
    deadline = started + config.deadline
    token_file = workdir / "token"
    token_file.write_text(TOKEN + "\n")
    sandbox = FaultySandbox(workdir, config)
    sandbox.start()
    api = Api(sandbox.url)
    observer = Observer(api)
    observer.start()
    operator = MonitoredOperator(sandbox, workdir / "operator.log", token_file)
    killer = Killer(operator, config, random.Random(config.seed + 1))
    try:
        operator.start()
        api.create("/api/v1/namespaces", {"metadata": {"name": NAMESPACE,
                                                       "labels": {"mltrl-chaos": "yes"}}})
        api.create(f"{GROUP}/mltrlpolicies", _policy())
        names = [f"tech-{n}" for n in range(config.technologies)]
        for name in names:
            api.create(f"{GROUP}/namespaces/{NAMESPACE}/mltechnologies", _technology(name))
        killer.start()
        reviews = _drive(api, operator, killer, config, rng, names, figures, deadline)
        killer.stopping.set()
        killer.join()
        figures.kills = killer.kills
        figures.injected = dict(sandbox.faults(rate=0.0)["injected"])
        if not operator._alive():
            operator.start()
        _settle(api, reviews, figures, deadline)
        figures.writes = int(sandbox.settle(quiet_for=3.0, timeout=60)["total_writes"])
        _check(api, reviews, names, figures)
        if any(p.startswith("settlement event of alert ") for p in figures.lost):
            (workdir / "lost-events.json").write_text(json.dumps(
                _lost_event_evidence(api, figures.lost, reviews, observer), indent=1,
                sort_keys=True))
        figures.served_early = observer.served_early(figures.checked)
        figures.checked["most incidents Pending at once on one technology"] = (
            observer.most_pending())
        if figures.served_early:
            # What the API server stored, in order, for each technology a problem names.
            offenders = sorted({n for n in names if any(f" {n} " in p
                                                        for p in figures.served_early)})
            (workdir / "timeline.txt").write_text("\n".join(
                line for name in offenders for line in observer.timeline(name)) + "\n")
    finally:
        killer.stopping.set()
        observer.stopping.set()
        operator.stop()
        sandbox.stop()
        figures.seconds = time.monotonic() - started
    return figures


@dataclass
class Expected:
    reviews: dict[str, str] = field(default_factory=dict)  # review -> technology
    alerts: dict[str, str] = field(default_factory=dict)  # fingerprint -> action
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    """fingerprint -> what the receiver answered for the alert when it took it (200)."""


def _level(api: Api, name: str) -> int | None:
    body = api.get(f"{GROUP}/namespaces/{NAMESPACE}/mltechnologies/{name}")
    level = (body.get("status") or {}).get("level")
    return int(level) if level is not None else None


def _drive(api: Api, operator: MonitoredOperator, killer: Killer, config: ChaosConfig,
           rng: random.Random, names: list[str], figures: Figures, deadline: float) -> Expected:
    expected = Expected()
    promoted = dict.fromkeys(names, 0)
    alerts_left, changes_left = config.alerts, config.model_changes
    sent: list[dict[str, Any]] = []
    starts = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    while time.monotonic() < deadline:
        open_promotions = [n for n in names if promoted[n] < PROMOTIONS_PER_TECHNOLOGY]
        if not (open_promotions or alerts_left or changes_left):
            return expected
        roll = rng.random()
        # Alerts go to technologies that serve (their third review is only opened at
        # level 5), so that rollbacks act on something served.
        serving = [n for n in names if promoted[n] >= 3]
        if open_promotions and (roll < 0.5 or not serving or not (alerts_left or changes_left)):
            name = rng.choice(open_promotions)
            from_level = 3 + promoted[name]
            if _level(api, name) != from_level:
                _reapprove_dismissed(api)
                time.sleep(0.05)  # the previous promotion is not applied yet
                continue
            review = f"{name}-to-{from_level + 1}"
            api.create(f"{GROUP}/namespaces/{NAMESPACE}/levelreviews",
                       _review(api, review, name, from_level))
            expected.reviews[review] = name
            promoted[name] += 1
            figures.promotions += 1
        elif alerts_left and (roll < 0.9 or not changes_left):
            n = config.alerts - alerts_left
            action = ACTIONS[n % len(ACTIONS)]
            alert = _alert(n, rng.choice(serving), action, starts + timedelta(minutes=n))
            batch = [alert]
            if sent and rng.random() < 0.3:  # Alertmanager re-sends long-firing alerts
                batch.append(rng.choice(sent))
                figures.alert_resends += 1
            answer = _post(operator, killer, batch, deadline, figures)
            expected.answers[alert["fingerprint"]] = next(
                (r for r in answer.get("results") or []
                 if r.get("fingerprint") == alert["fingerprint"]), {})
            sent.append(alert)
            expected.alerts[alert["fingerprint"]] = action
            alerts_left -= 1
            figures.alerts += 1
        elif changes_left:
            name = rng.choice(names)
            version = f"1.0.{config.model_changes - changes_left + 1}"
            api.merge(f"{GROUP}/namespaces/{NAMESPACE}/mltechnologies/{name}", {"spec": {
                "model": {"version": version, "storageUri": f"s3://models/{name}/{version}"}}})
            changes_left -= 1
            figures.model_changes += 1
    raise TimeoutError(
        f"the chaos round did not finish before its deadline: promoted {promoted}, "
        f"{alerts_left} alerts and {changes_left} model changes left"
    )


def _unsettled(api: Api, expected: Expected) -> list[str]:
    stuck = []
    for review in api.items(f"{GROUP}/namespaces/{NAMESPACE}/levelreviews"):
        phase = (review.get("status") or {}).get("phase")
        if phase != "Applied":
            stuck.append(f"review {review['metadata']['name']} is {phase}")
    for technology in api.items(f"{GROUP}/namespaces/{NAMESPACE}/mltechnologies"):
        for incident in (technology.get("status") or {}).get("incidents") or []:
            if incident.get("state") == "Pending":
                stuck.append(f"incident {incident['fingerprint']} on "
                             f"{technology['metadata']['name']} is Pending")
    return stuck


def _settle(api: Api, expected: Expected, figures: Figures, deadline: float) -> None:
    def settled() -> bool:
        _reapprove_dismissed(api)
        return not _unsettled(api, expected)

    try:
        eventually(settled,
                   timeout=max(deadline - time.monotonic(), 30), interval=0.5,
                   what="every review applied and every incident settled")
    except AssertionError:
        figures.stuck = _unsettled(api, expected)


def _lost_event_evidence(api: Api, lost: list[str], expected: Expected,
                         observer: Observer) -> dict[str, Any]:
    """For each alert whose settlement event is missing: what the receiver answered, every
    event and every stored incident that names its fingerprint, whether its technology's
    settledAlerts remembers it, and each stored version of that technology in which the
    incident changed (or vanished), so the finding carries what the API server held."""
    fingerprints = [p.split()[4] for p in lost if p.startswith("settlement event of alert ")]
    events = api.items(f"/api/v1/namespaces/{NAMESPACE}/events")
    technologies = api.items(f"{GROUP}/namespaces/{NAMESPACE}/mltechnologies")
    settled_keys = {t["metadata"]["name"]: {
        k.split("@")[0] for k in ((t.get("status") or {}).get("settledAlerts") or {})
        .get("keys") or []} for t in technologies}
    evidence = {}
    for fp in fingerprints:
        answer = expected.answers.get(fp) or {}
        technology = str(answer.get("technology") or "").partition("/")[2]
        evidence[fp] = {
            "receiver answered": answer,
            "in settledAlerts": alert_id(fp, str(answer.get("startsAt"))) in
            settled_keys.get(technology, set()),
            "versions": observer.incident_versions(technology, fp),
            "events": [e for e in events if fp in json.dumps(e)],
            "incidents": [{"technology": t["metadata"]["name"], **i} for t in technologies
                          for i in (t.get("status") or {}).get("incidents") or []
                          if i.get("fingerprint") == fp],
            "history": [{"technology": t["metadata"]["name"], **h} for t in technologies
                        for h in (t.get("status") or {}).get("history") or []
                        if fp in json.dumps(h)],
        }
    return evidence


def _check(api: Api, expected: Expected, names: list[str], figures: Figures) -> None:
    reviews = {r["metadata"]["name"]: r
               for r in api.items(f"{GROUP}/namespaces/{NAMESPACE}/levelreviews")}
    technologies = {t["metadata"]["name"]: t
                    for t in api.items(f"{GROUP}/namespaces/{NAMESPACE}/mltechnologies")}
    events = api.items(f"/api/v1/namespaces/{NAMESPACE}/events")
    jobs = api.items(f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs")
    promoted_events: Counter[str] = Counter()
    settled_events: Counter[str] = Counter()
    for event in events:
        message = event.get("message") or ""
        if event["reason"] == "Promoted" and " by review " in message:
            promoted_events[message.split(" by review ")[1].split(",")[0]] += 1
        if event["reason"] in SETTLEMENT_REASONS and message.startswith("alert "):
            settled_events[message.split("(")[1].split(")")[0]] += 1
    history: dict[str, Counter[str]] = defaultdict(Counter)
    for name, body in technologies.items():
        for entry in (body.get("status") or {}).get("history") or []:
            if entry.get("review"):
                history[name][entry["review"]] += 1
    figures.checked.update({
        "history entries": sum(sum(c.values()) for c in history.values()),
        "Promoted events": sum(promoted_events.values()),
        "settlement events": sum(settled_events.values()),
        "Jobs": len(jobs),
    })
    for review, technology in expected.reviews.items():
        status = (reviews.get(review) or {}).get("status") or {}
        if status.get("phase") == "Applied" and not status.get("appliedAt"):
            figures.lost.append(f"review {review} is Applied without appliedAt")
        for what, count in (("history entry", history[technology][review]),
                            ("Promoted event", promoted_events[review])):
            if count == 0:
                figures.lost.append(f"{what} of review {review}")
            elif count > 1:
                figures.doubled.append(f"{what} of review {review} x{count}")
    jobs_by_fingerprint = Counter(
        (j["metadata"].get("annotations") or {}).get("mltrl.dev/alert-fingerprint")
        for j in jobs)
    for fingerprint, action in expected.alerts.items():
        count = settled_events[fingerprint]
        if count == 0:
            figures.lost.append(f"settlement event of alert {fingerprint} ({action})")
        elif count > 1:
            figures.doubled.append(f"settlement event of alert {fingerprint} x{count}")
        if action == "retrain":
            if jobs_by_fingerprint[fingerprint] == 0:
                figures.lost.append(f"retraining Job of alert {fingerprint}")
            elif jobs_by_fingerprint[fingerprint] > 1:
                figures.doubled.append(f"retraining Job of alert {fingerprint}")


def report(figures: Figures) -> str:
    c = figures.config
    injected = ", ".join(f"{k} {v}" for k, v in sorted(figures.injected.items())) or "none"
    return "\n".join([
        f"- seed {c.seed}, fault rate {c.fault_rate}, latency {c.latency} ms (read,write), "
        f"a SIGKILL every {c.kill_between[0]:g}-{c.kill_between[1]:g} s",
        f"- {figures.promotions} promotions on {c.technologies} technologies, "
        f"{figures.alerts} alerts ({figures.alert_resends} re-sent, {figures.deferred} "
        "notifications deferred and sent again), "
        f"{figures.model_changes} model changes, {figures.kills} operator kills, "
        f"{figures.seconds:.0f} s",
        f"- faults injected: {injected}",
        "- checked: " + ", ".join(f"{n} {what}" for what, n in figures.checked.items()),
        f"- lost: {len(figures.lost)}, doubled: {len(figures.doubled)}, "
        f"stuck: {len(figures.stuck)}, served before the promotion was stored: "
        f"{len(figures.served_early)}",
        *[f"  - {problem}" for problem in
          (figures.lost + figures.doubled + figures.stuck + figures.served_early)[:20]],
    ])


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.run")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--promotions", type=int, default=1000)
    parser.add_argument("--alerts", type=int, default=1000)
    parser.add_argument("--model-changes", type=int, default=100)
    parser.add_argument("--faults", type=float, default=0.2)
    parser.add_argument("--latency", default="1,3")
    parser.add_argument("--kill-every", default="1,5", help="MIN,MAX seconds between kills")
    parser.add_argument("--deadline", type=float, default=3 * 3600)
    parser.add_argument("--workdir", type=Path, default=Path(".sandbox/chaos"))
    parser.add_argument("--report", type=Path, default=None,
                        help="replace the figures between the markers in this file")
    args = parser.parse_args()
    low, high = (float(x) for x in args.kill_every.split(","))
    config = ChaosConfig(seed=args.seed, promotions=args.promotions, alerts=args.alerts,
                         model_changes=args.model_changes, fault_rate=args.faults,
                         latency=args.latency, kill_between=(low, high), deadline=args.deadline)
    args.workdir.mkdir(parents=True, exist_ok=True)
    figures = run(args.workdir, config)
    text = report(figures)
    print(text)
    if args.report is not None:
        _write_report(args.report, text)
    return 0 if figures.clean else 1


BEGIN, END = "<!-- chaos figures: begin -->", "<!-- chaos figures: end -->"


def _write_report(path: Path, text: str) -> None:
    document = path.read_text()
    head, _, rest = document.partition(BEGIN)
    _, _, tail = rest.partition(END)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    path.write_text(f"{head}{BEGIN}\n`make chaos`, {stamp}:\n\n{text}\n{END}{tail}")


__all__ = ["ChaosConfig", "Figures", "Process", "main", "report", "run"]

if __name__ == "__main__":
    raise SystemExit(main())
