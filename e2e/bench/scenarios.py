"""The scenarios: each starts its own sandbox (seeded with a world) and operator, measures,
and stops everything it started, also when it fails."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from e2e.bench import objects
from e2e.bench.figures import per, summary_ms
from e2e.bench.objects import World
from e2e.bench.procs import MLTRL, PYTHON, Proc, free_port, mib, wait_for
from e2e.bench.watch import (
    CONFIGMAPS,
    ISVCS,
    BenchClient,
    Key,
    Obj,
    Predicate,
    Watch,
    key_of,
    wait_all,
)
from mltrl_operator.domain.plan import PROMOTED
from mltrl_operator.k8s.resources import REVIEWS, TECHNOLOGIES

ALERT_TOKEN = "bench-alerts-token"
REACTION_TIMEOUT = 30.0


@dataclass(frozen=True)
class Config:
    world: int = 1000
    promotions: int = 200
    steps: int = 50
    rollbacks: int = 100
    demotes: int = 100
    idle_seconds: float = 60.0
    rtt_samples: int = 500
    scale: tuple[int, ...] = (1000, 10000)
    variants: tuple[str, ...] = ("mltrl", "bare-kopf")
    """Who is started at each scale (see VARIANTS)."""
    gap: float = 0.05
    """Pause between one measured write and the next, so each is measured on its own."""
    start_timeout: float = 3600.0
    quiet: float = 1.5
    """Seconds without a write before the API server counts as settled."""
    main: bool = True
    """Scenarios 1-3, 5 and the start-up at `scale`; False for a `--latency` or `--large`
    run, which measures start-up only."""
    latency: str = ""
    """"READ_MS,WRITE_MS": also start up at `latency_scale` on a sandbox that slow."""
    latency_scale: tuple[int, ...] = (10000,)


QUICK = Config(
    world=40, promotions=10, steps=4, rollbacks=4, demotes=4, idle_seconds=3.0,
    rtt_samples=50, scale=(40, 160), start_timeout=90.0, latency_scale=(160,),
)

OPERATOR_CONCURRENCY = 100
"""Requests the operator has in flight at most: its client's `Etiquette.in_flight`
(mltrl_operator.k8s.client), below the API server's limits of 400 reads and 200 writes.
The floor of a start-up at a latency divides by it."""


def floor_seconds(requests: int, writes: int, read_ms: float, write_ms: float) -> float:
    """The least time `requests` (of which `writes`) can take at that latency, however
    the operator ordered them, with OPERATOR_CONCURRENCY in flight."""
    busy_ms = writes * write_ms + (requests - writes) * read_ms
    return round(busy_ms / OPERATOR_CONCURRENCY / 1000, 3)



def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- processes ----------------------------------------------------------------------------


class Sandbox:
    """The sandbox API server in its own process, seeded with a world before it listens."""

    def __init__(
        self, workdir: Path, world: World | None, quiet: float = 1.5, latency: str | None = None
    ) -> None:
        self.quiet = quiet
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.world = world
        self.kubeconfig = self.dir / "kubeconfig"
        self.ready = self.dir / "ready"
        args = [PYTHON, "-m", "e2e.bench.sandbox_main", "--kubeconfig", str(self.kubeconfig),
                "--ready", str(self.ready)]
        if world is not None:
            seed = self.dir / "seed.json"
            seed.write_text(json.dumps(world.objects))
            args += ["--seed", str(seed)]
        if latency:
            args += ["--latency", latency]
        self.proc = Proc("sandbox", args, self.dir / "sandbox.log")
        self._client: BenchClient | None = None
        self.seed_seconds = 0.0

    @property
    def client(self) -> BenchClient:
        assert self._client is not None, "the sandbox is not running"
        return self._client

    async def start(self) -> Sandbox:
        self.ready.unlink(missing_ok=True)  # from an earlier run in the same directory
        self.proc.start()

        async def ready() -> bool:
            return self.ready.exists() and bool(self.ready.read_text())

        await wait_for(ready, self.proc, timeout=600, what="the sandbox to listen")
        info = json.loads(self.ready.read_text())
        self.seed_seconds = float(info["seed_seconds"])
        self._client = BenchClient(str(self.kubeconfig), quiet=self.quiet)
        return self

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.close()
        self.proc.stop()


VARIANTS = {
    "mltrl": "the operator: mltrl run",
    "bare-kopf": "kopf with one handler that sets status.observedGeneration",
    "bare-kopf-index": "the same, plus one trivial kopf index on both kinds (shows the "
    "cost of kopf's index gate; quadratic, so not run by default)",
}


class Operator:
    """`mltrl run` (with its alert receiver) or a baseline, in its own process."""

    def __init__(self, sandbox: Sandbox, variant: str = "mltrl") -> None:
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
        bare = variant.startswith("bare")
        self.bare = bare
        self.name = variant
        self.health = f"http://127.0.0.1:{free_port()}/healthz"
        self.alerts_port = free_port()
        token_file = sandbox.dir / "alerts-token"
        token_file.write_text(ALERT_TOKEN + "\n")
        if bare:
            args = [PYTHON, "-m", "e2e.bench.bare_kopf"]
            if variant == "bare-kopf-index":
                args.append("--index")
        else:
            args = [MLTRL, "run", "--alerts-host", "127.0.0.1",
                    "--alerts-port", str(self.alerts_port),
                    "--alerts-token-file", str(token_file)]
        args += ["--kubeconfig", str(sandbox.kubeconfig), "--liveness", self.health]
        self.proc = Proc(self.name, args, sandbox.dir / f"{self.name}.log")
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))

    @property
    def started_at(self) -> float:
        return self.proc.started_at

    async def start(self) -> Operator:
        self.proc.start()

        async def alive() -> bool:
            try:
                async with self.session.get(self.health) as response:
                    return response.status == 200
            except aiohttp.ClientError:
                return False

        await wait_for(alive, self.proc, timeout=300, what=f"{self.name} to start")
        return self

    async def post_alert(self, payload: Obj) -> int:
        url = f"http://127.0.0.1:{self.alerts_port}/alerts"
        headers = {"Authorization": f"Bearer {ALERT_TOKEN}"}
        async with self.session.post(url, json=payload, headers=headers) as response:
            await response.read()
            return response.status

    def memory(self) -> dict[str, Any]:
        return {"peak_rss_mib": mib(self.proc.peak_rss_kib()),
                "rss_mib": mib(self.proc.rss_kib()),
                "cpu_seconds": self.proc.cpu_seconds()}

    async def stop(self) -> None:
        await self.session.close()
        # kopf takes about 5 s to shut down gracefully; nothing here needs it to.
        self.proc.stop(timeout=0.3)


@contextlib.asynccontextmanager
async def sandbox_running(
    workdir: Path, world: World | None, quiet: float = 1.5, latency: str | None = None
) -> AsyncIterator[Sandbox]:
    sandbox = Sandbox(workdir, world, quiet, latency)
    try:
        yield await sandbox.start()
    finally:
        await sandbox.stop()


@contextlib.asynccontextmanager
async def watching(client: BenchClient, *resources: Any) -> AsyncIterator[list[Watch]]:
    watches: list[Watch] = []
    try:
        for resource in resources:
            watches.append(await Watch(client, resource).start())
        yield watches
    finally:
        for watch in watches:
            await watch.stop()


# --- what "current" means --------------------------------------------------------------------


def _approval(world: objects.World, key: objects.Key) -> Obj:
    """bob's approval of the technology's review, stamped as the webhook would stamp it."""
    tech = world.technologies[key]
    body = objects.review(key[1], key[0], tech.entry_level, approved=False)
    return objects.approval(body, key[1], tech.serving)


def _status(obj: Obj) -> Obj:
    return obj.get("status") or {}


def _observed(obj: Obj) -> bool:
    return bool(_status(obj).get("observedGeneration") == obj["metadata"].get("generation"))


def technology_current(world: World) -> Predicate:
    """Reconciled at its generation, at the level its review leads to."""
    def predicate(obj: Obj) -> bool:
        tech = world.technologies.get(key_of(obj))
        level = tech.expected_level if tech else _status(obj).get("level")
        return _observed(obj) and _status(obj).get("level") == level
    return predicate


def review_current(world: World) -> Predicate:
    """Evaluated at its generation: Applied when it was approved, else Pending."""
    approved = {(t.key[0], t.review): t.approved for t in world.technologies.values()}

    def predicate(obj: Obj) -> bool:
        phase = "Applied" if approved.get(key_of(obj)) else "Pending"
        return _observed(obj) and _status(obj).get("phase") == phase
    return predicate


def _sample(watch: Watch, pending: set[Key], limit: int = 3) -> str:
    shown = []
    for key in sorted(pending)[:limit]:
        obj = watch.objects.get(key) or {}
        shown.append(f"{key}: generation {obj.get('metadata', {}).get('generation')} "
                     f"status {json.dumps(_status(obj))[:300]}")
    return "\n".join(shown)


async def until_current(
    watches: list[Watch], predicates: list[Predicate], keys: list[set[Key]], timeout: float,
    what: str,
) -> float:
    """Arrival time of the event that made the last object current."""
    tracked = [watch.track(k, p) for watch, k, p in zip(watches, keys, predicates, strict=True)]
    try:
        arrivals = await wait_all([f for _, f in tracked], watches, timeout, what)
    except TimeoutError as error:
        details = "\n".join(_sample(w, pending) for w, (pending, _) in zip(watches, tracked,
                                                                           strict=True))
        raise TimeoutError(f"{error}; still pending e.g.:\n{details}") from None
    return max(arrivals)


# --- requests and writes ---------------------------------------------------------------------


def cost(stats: Obj, count: int, own: dict[str, int]) -> dict[str, Any]:
    """What the operator asked of the API server per action: the bench's own requests
    (`own`, by "verb resource") are taken out."""
    requests = dict(stats["requests"])
    writes = {k: v for k, v in stats["writes"].items()}
    for name, n in own.items():
        requests[name] = requests.get(name, 0) - n
        verb, resource = name.split(" ", 1)
        part = "status" if resource.endswith("/status") else "main"
        write = f"{verb} {resource.removesuffix('/status')} {part}"
        if write in writes:
            writes[write] -= n
    requests = {k: v for k, v in requests.items() if v}
    writes = {k: v for k, v in writes.items() if v}
    total_requests, total_writes = sum(requests.values()), sum(writes.values())
    return {
        "actions": count,
        "requests_per_action": per(total_requests, count),
        "writes_per_action": per(total_writes, count),
        "requests": requests,
        "writes": writes,
    }


# --- scenario 5 (part): the sandbox's own round trip -----------------------------------------


def _annotated(value: str) -> Predicate:
    def predicate(obj: Obj) -> bool:
        return bool((obj["metadata"].get("annotations") or {}).get("bench/n") == value)
    return predicate


async def round_trips(sandbox: Sandbox, world: World, samples: int) -> dict[str, Any]:
    client = sandbox.client
    ns = world.namespaces[0]
    some = next(iter(world.technologies))
    await client.create(CONFIGMAPS, ns, {"metadata": {"name": "bench-rtt", "namespace": ns}})
    gets, patches, echoes = [], [], []
    for _ in range(samples):
        started = time.perf_counter()
        await client.get(TECHNOLOGIES, some[0], some[1])
        gets.append(time.perf_counter() - started)
    async with watching(client, CONFIGMAPS) as (watch,):
        for n in range(samples):
            mark = {"metadata": {"annotations": {"bench/n": str(n)}}}
            future = watch.until((ns, "bench-rtt"), _annotated(str(n)))
            started = time.perf_counter()
            await client.patch(CONFIGMAPS, ns, "bench-rtt", mark)
            patches.append(time.perf_counter() - started)
            [arrived] = await wait_all([future], [watch], REACTION_TIMEOUT, "a watch echo")
            echoes.append(arrived - started)
    return {
        "get_ms": summary_ms(gets),
        "patch_ms": summary_ms(patches),
        "status_patch_ms": summary_ms(await status_round_trips(client, some, samples)),
        "write_to_watch_ms": summary_ms(echoes),
    }


async def status_round_trips(client: BenchClient, key: Key, samples: int) -> list[float]:
    """A custom resource's status PATCH as the operator sends it: a merge patch of what
    changed (one condition's message) in a technology's full status, conditional on the
    resourceVersion the last answer gave. Measured before any operator runs."""
    status = objects.operator_status(key[1])
    written = await client.patch(TECHNOLOGIES, key[0], key[1], {"status": status},
                                 subresource="status")
    seconds = []
    for n in range(samples):
        conditions = [dict(c) for c in status["conditions"]]
        conditions[0]["message"] = f"bench {n}"
        patch = {"metadata": {"resourceVersion": written["metadata"]["resourceVersion"]},
                 "status": {"conditions": conditions}}
        started = time.perf_counter()
        written = await client.patch(TECHNOLOGIES, key[0], key[1], patch, subresource="status")
        seconds.append(time.perf_counter() - started)
    return seconds


# --- shared steps ----------------------------------------------------------------------------


async def start_and_wait(
    sandbox: Sandbox, world: World, watches: list[Watch], *, variant: str, timeout: float,
    stack: contextlib.AsyncExitStack,
) -> tuple[Operator, dict[str, Any]]:
    """Start an operator on a seeded world; time until every status is current."""
    techs, reviews = watches[0], watches[1]
    predicates: list[Predicate]
    if variant.startswith("bare"):
        predicates = [_observed, _observed]
    else:
        predicates = [technology_current(world), review_current(world)]
    keys = [set(world.technologies), world.review_keys()]
    operator = Operator(sandbox, variant)
    stack.push_async_callback(operator.stop)
    tracked = asyncio.create_task(until_current(
        watches[:2], predicates, keys, timeout, f"{operator.name} to make every status current"
    ))
    try:
        await operator.start()
        alive = time.perf_counter() - operator.started_at
        last = await tracked
    finally:
        if not tracked.done():
            tracked.cancel()
    seconds = last - operator.started_at
    stats = await sandbox.client.stats()
    settled = await sandbox.client.settle()
    result = {
        "technologies": world.size,
        "reviews": len(keys[1]),
        "seconds_to_current": round(seconds, 3),
        "seconds_to_alive": round(alive, 3),
        "requests_until_current": stats["total_requests"],
        "writes_until_current": stats["total_writes"],
        "requests_until_settled": settled["total_requests"],
        "writes_until_settled": settled["total_writes"],
        "writes_by_kind_until_current": stats["writes"],
        "writes_by_kind_until_settled": settled["writes"],
        "watch_events_seen": techs.events + reviews.events,
        **operator.memory(),
    }
    return operator, result


async def measured(
    label: str, count: int, gap: float,
    one: Callable[[int], Awaitable[list[float]]],
) -> list[list[float]]:
    """Run `one(i)` count times, one at a time; collect its latencies."""
    results: list[list[float]] = []
    for i in range(count):
        results.append(await one(i))
        if gap:
            await asyncio.sleep(gap)
    log(f"  {label}: {count} done")
    return results


def column(rows: list[list[float]], index: int) -> list[float]:
    return [row[index] for row in rows]


# --- scenario 5: the bare kopf baseline -------------------------------------------------------


async def baseline(config: Config, world: World, workdir: Path) -> dict[str, Any]:
    log(f"baseline: sandbox round trips and bare kopf on {world.size} technologies")
    async with contextlib.AsyncExitStack() as stack:
        sandbox = await stack.enter_async_context(
            sandbox_running(workdir / "baseline", world, config.quiet)
        )
        rtt = await round_trips(sandbox, world, config.rtt_samples)
        watches = await stack.enter_async_context(watching(sandbox.client, TECHNOLOGIES, REVIEWS))
        operator, start = await start_and_wait(
            sandbox, world, watches, variant="bare-kopf", timeout=config.start_timeout,
            stack=stack,
        )
        reviews = watches[1]
        keys = world.roles["promote"][: config.promotions]
        await sandbox.client.reset_stats()

        async def react(i: int) -> list[float]:
            ns = keys[i][0]
            review = world.technologies[keys[i]].review
            generation = reviews.objects[(ns, review)]["metadata"]["generation"]
            future = reviews.until((ns, review), lambda o: (
                _status(o).get("observedGeneration") or 0) > generation)
            started = time.perf_counter()
            approval = _approval(world, keys[i])
            await sandbox.client.patch(REVIEWS, ns, review,
                                       {"spec": {"approvals": [approval]}})
            [arrived] = await wait_all([future], watches, REACTION_TIMEOUT, "bare kopf")
            return [arrived - started]

        rows = await measured("bare kopf reactions", len(keys), config.gap, react)
        stats = await sandbox.client.settle()
        return {
            "sandbox": {**rtt, "seed_seconds": round(sandbox.seed_seconds, 2)},
            "bare_kopf": {
                "start": start,
                "reaction_ms": summary_ms(column(rows, 0)),
                "cost": cost(stats, len(keys), {"patch levelreviews.mltrl.dev": len(keys)}),
                **operator.memory(),
            },
        }
    raise AssertionError("unreachable")


# --- scenarios 1, 2 and 3 on one world with the operator --------------------------------------


def _versions(obj: Obj) -> list[str]:
    return [m.get("version") for m in _status(obj).get("knownGoodModels") or []]


def _serving_state(obj: Obj) -> str | None:
    return (_status(obj).get("serving") or {}).get("state")


def _storage_uri(obj: Obj) -> str | None:
    return (((obj.get("spec") or {}).get("predictor") or {}).get("model") or {}).get("storageUri")


def _stopped(obj: Obj) -> bool:
    return (obj["metadata"].get("annotations") or {}).get("serving.kserve.io/stop") == "true"


def _incident_state(obj: Obj, fingerprint: str) -> str | None:
    for incident in _status(obj).get("incidents") or []:
        if incident.get("fingerprint") == fingerprint:
            return str(incident.get("state"))
    return None


async def _gather_limited(calls: list[Awaitable[Any]], limit: int = 16) -> None:
    gate = asyncio.Semaphore(limit)

    async def one(call: Awaitable[Any]) -> None:
        async with gate:
            await call

    await asyncio.gather(*(one(c) for c in calls))


async def prepare_alerts(sandbox: Sandbox, world: World, watches: list[Watch],
                         timeout: float) -> float:
    """Give the alerted technologies a serving history: KServe's stand-in marks the
    InferenceServices Ready (1.0.0 becomes known good), then the rollback ones move to
    1.1.0 (known good too), so a rollback has somewhere to go. The stand-in is stopped
    before anything is measured."""
    from mltrl_sandbox.client import SandboxClient
    from mltrl_sandbox.kserve import KServeStandIn

    started = time.perf_counter()
    techs = watches[0]
    rollback, demote = world.roles["rollback"], world.roles["demote"]
    stop = asyncio.Event()
    stand_in = asyncio.create_task(KServeStandIn(SandboxClient(sandbox.client.url)).run(stop))
    try:
        await until_current(
            [techs], [lambda o: _serving_state(o) == "Serving" and "1.0.0" in _versions(o)],
            [set(rollback + demote)], timeout, "the alerted technologies to serve 1.0.0",
        )
        await _gather_limited([
            sandbox.client.patch(TECHNOLOGIES, ns, name,
                                 {"spec": {"model": objects.model(name, "1.1.0")}})
            for ns, name in rollback
        ])
        await until_current(
            [techs], [lambda o: _serving_state(o) == "Serving" and _versions(o) == ["1.0.0",
                                                                                   "1.1.0"]],
            [set(rollback)], timeout, "the rollback technologies to serve 1.1.0",
        )
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(stand_in, timeout=10)
    await sandbox.client.settle()
    return time.perf_counter() - started


async def operator_scenarios(config: Config, world: World, workdir: Path) -> dict[str, Any]:
    log(f"operator: promotions, alerts and API cost with {world.size} technologies")
    async with contextlib.AsyncExitStack() as stack:
        sandbox = await stack.enter_async_context(
            sandbox_running(workdir / "operator", world, config.quiet)
        )
        client = sandbox.client
        watches = await stack.enter_async_context(
            watching(client, TECHNOLOGIES, REVIEWS, ISVCS)
        )
        techs, reviews, isvcs = watches
        operator, start = await start_and_wait(
            sandbox, world, watches, variant="mltrl", timeout=config.start_timeout,
            stack=stack,
        )
        log(f"  started: every status current after {start['seconds_to_current']} s")
        setup_seconds = await prepare_alerts(sandbox, world, watches, config.start_timeout)
        log(f"  alert set-up (KServe stand-in) took {setup_seconds:.1f} s")
        result: dict[str, Any] = {"start": start}

        # Scenario 1: promotions that open the serving gate (4 -> 5 creates the InferenceService).
        def approve(keys: list[Key], level: int, with_isvc: bool) -> Callable[
            [int], Awaitable[list[float]]
        ]:
            async def one(i: int) -> list[float]:
                ns, name = keys[i]
                review = world.technologies[keys[i]].review
                waits = [
                    techs.until((ns, name), lambda o: _status(o).get("level") == level),
                    reviews.until((ns, review), lambda o: _status(o).get("phase") == "Applied"),
                ]
                if with_isvc:
                    waits.append(isvcs.until((ns, name), lambda o: True))
                started = time.perf_counter()
                approval = _approval(world, keys[i])
                await client.patch(REVIEWS, ns, review, {"spec": {"approvals": [approval]}})
                arrived = await wait_all(waits, watches, REACTION_TIMEOUT, f"promotion of {name}")
                return [t - started for t in arrived]
            return one

        promote = world.roles["promote"][: config.promotions]
        await client.reset_stats()
        rows = await measured("promotions to 5", len(promote), config.gap,
                              approve(promote, objects.MINIMUM_SERVING_LEVEL, True))
        stats = await client.settle()
        own = {"patch levelreviews.mltrl.dev": len(promote)}
        result["promotion"] = {
            "count": len(promote),
            "to_level_ms": summary_ms(column(rows, 0)),
            "to_review_applied_ms": summary_ms(column(rows, 1)),
            "to_inference_service_ms": summary_ms(column(rows, 2)),
            "cost": cost(stats, len(promote), own),
        }

        # Scenario 3: promotions that change the level only (3 -> 4), for the write count.
        step = world.roles["step"][: config.steps]
        await client.reset_stats()
        rows = await measured("promotions to 4", len(step), config.gap,
                              approve(step, 4, False))
        stats = await client.settle()
        result["promotion_level_only"] = {
            "count": len(step),
            "to_level_ms": summary_ms(column(rows, 0)),
            "to_review_applied_ms": summary_ms(column(rows, 1)),
            "cost": cost(stats, len(step), {"patch levelreviews.mltrl.dev": len(step)}),
        }

        # Scenario 3: idle.
        await client.settle()
        await client.reset_stats()
        log(f"  idle for {config.idle_seconds:g} s")
        await asyncio.sleep(config.idle_seconds)
        stats = await client.stats()
        minutes = config.idle_seconds / 60
        result["idle"] = {
            "seconds": config.idle_seconds,
            "requests_per_minute": round(stats["total_requests"] / minutes, 2),
            "writes_per_minute": round(stats["total_writes"] / minutes, 2),
            "requests": stats["requests"],
            "writes": stats["writes"],
        }

        # Scenario 2: alert to action.
        posted: list[int] = []

        def alert(keys: list[Key], alert_name: str, rollback: bool) -> Callable[
            [int], Awaitable[list[float]]
        ]:
            async def one(i: int) -> list[float]:
                ns, name = keys[i]
                fingerprint = hashlib.sha256(f"{ns}/{name}/{alert_name}".encode()).hexdigest()[:16]
                if rollback:
                    target = f"s3://models/{name}/1.0.0"
                    waits = [
                        isvcs.until((ns, name), lambda o: _storage_uri(o) == target),
                        techs.until((ns, name),
                                    lambda o: _incident_state(o, fingerprint) == "Acted"),
                    ]
                else:
                    waits = [
                        isvcs.until((ns, name), _stopped),
                        techs.until((ns, name),
                                    lambda o: _status(o).get("level") == objects.DEMOTE_TO
                                    and _incident_state(o, fingerprint) == "Acted"),
                    ]
                payload = objects.alert_notification(name, ns, alert_name, fingerprint)
                started = time.perf_counter()
                posted.append(await operator.post_alert(payload))
                answered = time.perf_counter()
                arrived = await wait_all(waits, watches, REACTION_TIMEOUT, f"alert on {name}")
                return [answered - started, *(t - started for t in arrived)]
            return one

        for kind, keys, alert_name in (
            ("rollback", world.roles["rollback"][: config.rollbacks], objects.ROLLBACK_ALERT),
            ("demote", world.roles["demote"][: config.demotes], objects.DEMOTE_ALERT),
        ):
            await client.settle()
            await client.reset_stats()
            rows = await measured(f"{kind} alerts", len(keys), config.gap,
                                  alert(keys, alert_name, kind == "rollback"))
            stats = await client.settle()
            result[f"alert_{kind}"] = {
                "count": len(keys),
                "to_answer_ms": summary_ms(column(rows, 0)),
                "to_inference_service_ms": summary_ms(column(rows, 1)),
                "to_recorded_ms": summary_ms(column(rows, 2)),
                "cost": cost(stats, len(keys), {}),
            }
        if any(code != 200 for code in posted):
            raise RuntimeError(f"the receiver answered {sorted(set(posted))}")
        result["operator"] = operator.memory()
        result["sandbox"] = {"cpu_seconds": sandbox.proc.cpu_seconds(),
                             "peak_rss_mib": mib(sandbox.proc.peak_rss_kib())}
        return result
    raise AssertionError("unreachable")


# --- scenario 4: scale -------------------------------------------------------------------------


async def scale(
    config: Config, size: int, workdir: Path, variant: str, latency: str | None = None
) -> dict[str, Any]:
    """Start-up on `size` technologies and reviews; with `latency` ("READ_MS,WRITE_MS"),
    on a sandbox that answers as slowly as that, behind kube-apiserver's in-flight limits."""
    who = variant
    world = objects.build_world(size)
    at = f" at latency {latency} ms" if latency else ""
    log(f"scale: {who} starting on {size} technologies with {size} reviews{at}")
    async with contextlib.AsyncExitStack() as stack:
        label = f"scale-{size}-{variant}" + (f"-latency-{latency.replace(',', '-')}"
                                             if latency else "")
        sandbox = await stack.enter_async_context(
            sandbox_running(workdir / label, world, config.quiet, latency)
        )
        watches = await stack.enter_async_context(
            watching(sandbox.client, TECHNOLOGIES, REVIEWS)
        )
        sandbox_cpu = sandbox.proc.cpu_seconds() or 0.0
        operator, start = await start_and_wait(
            sandbox, world, watches, variant=variant, timeout=config.start_timeout,
            stack=stack,
        )
        # The API server shares the machine: its CPU over the same span attributes the time.
        start["sandbox_cpu_seconds"] = round((sandbox.proc.cpu_seconds() or 0.0) - sandbox_cpu, 2)
        log(f"  {who}: every status current after {start['seconds_to_current']} s, "
            f"peak RSS {start['peak_rss_mib']} MiB")
        await asyncio.sleep(0)
        start["seed_seconds"] = round(sandbox.seed_seconds, 2)
        start["promoted_at_start"] = sum(t.approved for t in world.technologies.values())
        if not operator.bare:
            # Each promotion is applied, and announced, once (one Promoted event on its
            # technology): a stale snapshot acting twice shows here (and in the writes after
            # "current") even when the end state is right.
            events = await sandbox.client.request("GET", "/api/v1/events")
            start["promoted_events"] = sum(
                1 for event in events.get("items", []) if event.get("reason") == PROMOTED
            )
        start["after_settling"] = operator.memory()
        start["sandbox_peak_rss_mib"] = mib(sandbox.proc.peak_rss_kib())
        # Requests the sandbox turned away (429) at its in-flight limits, and its peak.
        start["inflight"] = await sandbox.client.request("GET", "/sandbox/inflight")
        return start
    raise AssertionError("unreachable")
