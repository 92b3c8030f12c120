"""The sandbox API server's own CPU per request, for the requests the operator and bare
kopf send (not part of `make bench`: a tool for working on the sandbox).

    python -m e2e.bench.sandbox_cost [--n 1000] [--world 200] [--watches 2] [--only a,b]

Starts the sandbox in its own process (e2e/bench/sandbox_main.py) on a world the
operator makes current (so statuses, managed fields, audit records and events are the
operator's own) and stops the operator; then, with `--watches` watches open on every kind
written (the operator's and the benchmark's), sends each kind of request `--n` times, one
at a time, and reads the sandbox's CPU time (/proc) before and after: CPU per request,
which does not depend on the machine's load the way a latency does. The wall-clock median
is printed beside it. To compare with another version of the sandbox, run the same command
with that version's `operator/` first on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from e2e.bench import objects
from e2e.bench.procs import Proc
from e2e.bench.scenarios import (
    Operator,
    Sandbox,
    review_current,
    technology_current,
    until_current,
    watching,
)
from e2e.bench.watch import CONFIGMAPS, BenchClient, Obj
from mltrl_operator.k8s.client import watch_events
from mltrl_operator.k8s.resources import (
    AUDIT_RECORDS,
    EVENTS,
    INFERENCE_SERVICES,
    REVIEWS,
    TECHNOLOGIES,
    ResourceRef,
)

WATCHED = (TECHNOLOGIES, REVIEWS, INFERENCE_SERVICES, EVENTS, AUDIT_RECORDS, CONFIGMAPS)


async def _drain(client: BenchClient, resource: ResourceRef, seen: dict[str, int]) -> None:
    async for _ in watch_events(client, resource, timeout_seconds=3600):
        seen[resource.plural] = seen.get(resource.plural, 0) + 1


class Requests:
    """One request of each kind, on the world's objects in turn (`i` picks which)."""

    def __init__(self, client: BenchClient, listed: dict[str, list[Obj]], namespace: str):
        self.client = client
        self.listed = listed
        self.namespace = namespace
        self.versions: dict[tuple[str, str], str] = {}
        self.records: dict[str, tuple[str, list[Obj]]] = {}

    def _pick(self, kind: str, i: int) -> Obj:
        items = self.listed[kind]
        return items[i % len(items)]

    async def get_technology(self, i: int) -> None:
        m = self._pick("technologies", i)["metadata"]
        await self.client.get(TECHNOLOGIES, m["namespace"], m["name"])

    async def patch_configmap(self, i: int) -> None:
        await self.client.patch(CONFIGMAPS, self.namespace, "sandbox-cost",
                                {"metadata": {"annotations": {"n": str(i)}}})

    async def _status(self, resource: ResourceRef, kind: str, i: int) -> None:
        """As the operator does: a merge patch of what changed (a condition's message),
        conditional on the resourceVersion the last answer gave."""
        obj = self._pick(kind, i)
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        conditions = copy.deepcopy(obj["status"]["conditions"])
        conditions[0]["message"] = f"sandbox cost {i}"
        version = self.versions.get(key, obj["metadata"]["resourceVersion"])
        patch = {"metadata": {"resourceVersion": version}, "status": {"conditions": conditions}}
        stored = await self.client.patch(resource, key[0], key[1], patch, subresource="status")
        self.versions[key] = stored["metadata"]["resourceVersion"]

    async def technology_status(self, i: int) -> None:
        await self._status(TECHNOLOGIES, "technologies", i)

    async def review_status(self, i: int) -> None:
        await self._status(REVIEWS, "reviews", i)

    async def patch_inference_service(self, i: int) -> None:
        m = self._pick("inferenceservices", i)["metadata"]
        await self.client.patch(INFERENCE_SERVICES, m["namespace"], m["name"],
                                {"metadata": {"annotations": {"sandbox-cost/n": str(i)}}})

    async def create_inference_service(self, i: int) -> None:
        body = copy.deepcopy(self._pick("inferenceservices", i))
        m = body["metadata"]
        body.pop("status", None)
        body["metadata"] = {"name": f"sandbox-cost-{i}", "namespace": m["namespace"],
                            "labels": m.get("labels") or {},
                            "annotations": m.get("annotations") or {}}
        await self.client.create(INFERENCE_SERVICES, m["namespace"], body)

    async def create_event(self, i: int) -> None:
        body = copy.deepcopy(self._pick("events", i))
        namespace = body["metadata"]["namespace"]
        body["metadata"] = {"name": f"sandbox-cost-{i}", "namespace": namespace}
        await self.client.create(EVENTS, namespace, body)

    async def append_audit_record(self, i: int) -> None:
        """As the audit store appends: the chunk's entries and one more, conditional."""
        record = self._pick("records", i)
        name = record["metadata"]["name"]
        version, entries = self.records.get(
            name, (record["metadata"]["resourceVersion"], record["spec"]["entries"])
        )
        extra = {**copy.deepcopy(entries[-1]), "id": f"sandbox-cost-{i}"}
        patch = {"metadata": {"resourceVersion": version},
                 "spec": {"entries": [*entries, extra]}}
        stored = await self.client.patch(AUDIT_RECORDS, None, name, patch)
        self.records[name] = (stored["metadata"]["resourceVersion"], stored["spec"]["entries"])

    async def create_audit_record(self, i: int) -> None:
        body = copy.deepcopy(self._pick("records", i))
        body.pop("status", None)
        body["metadata"] = {"name": f"sandbox-cost-{i}",
                            "labels": body["metadata"].get("labels") or {}}
        body["spec"]["technology"] = f"sandbox-cost-{i}"
        await self.client.create(AUDIT_RECORDS, None, body)

    def kinds(self) -> dict[str, Callable[[int], Awaitable[None]]]:
        return {
            "GET technology": self.get_technology,
            "PATCH configmap": self.patch_configmap,
            "PATCH mltechnologies/status": self.technology_status,
            "PATCH levelreviews/status": self.review_status,
            "PATCH inferenceservice": self.patch_inference_service,
            "POST inferenceservice": self.create_inference_service,
            "POST event": self.create_event,
            "PATCH mltrlauditrecord (append)": self.append_audit_record,
            "POST mltrlauditrecord": self.create_audit_record,
        }


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(args.workdir)
    world = objects.build_world(args.world, promote=20, rollback=10, demote=10)
    sandbox = Sandbox(work, world)
    await sandbox.start()
    proc: Proc = sandbox.proc
    try:
        client = sandbox.client
        async with watching(client, TECHNOLOGIES, REVIEWS) as watches:
            operator = Operator(sandbox, "mltrl")
            current = until_current(
                watches, [technology_current(world), review_current(world)],
                [set(world.technologies), world.review_keys()], 600, "the operator",
            )
            await operator.start()
            await current
            await client.settle()
            await operator.stop()
        seen: dict[str, int] = {}
        drains = [asyncio.create_task(_drain(client, resource, seen))
                  for resource in WATCHED for _ in range(args.watches)]
        await asyncio.sleep(1.0)
        listed = {
            "technologies": [t for t in await client.list(TECHNOLOGIES)
                             if (t.get("status") or {}).get("conditions")],
            "reviews": [r for r in await client.list(REVIEWS)
                        if (r.get("status") or {}).get("conditions")],
            "inferenceservices": await client.list(INFERENCE_SERVICES),
            "events": await client.list(EVENTS),
            "records": await client.list(AUDIT_RECORDS),
        }
        namespace = world.namespaces[0]
        await client.create(CONFIGMAPS, namespace,
                            {"metadata": {"name": "sandbox-cost", "namespace": namespace}})
        kinds = Requests(client, listed, namespace).kinds()
        wanted = args.only.split(",") if args.only else list(kinds)
        results: dict[str, Any] = {}
        for name in wanted:
            one = kinds[name]
            await one(-1)  # warm
            await asyncio.sleep(0.3)
            before = proc.cpu_seconds() or 0.0
            walls = []
            for i in range(args.n):
                started = time.perf_counter()
                await one(i)
                walls.append(time.perf_counter() - started)
            await asyncio.sleep(0.3)  # the watches' events are sent meanwhile
            used = (proc.cpu_seconds() or 0.0) - before
            results[name] = {"cpu_ms": round(used / args.n * 1000, 3),
                             "wall_p50_ms": round(statistics.median(walls) * 1000, 3)}
            print(f"{name}: {results[name]}", flush=True)
        for task in drains:
            task.cancel()
        return {"per_request": results, "watch_events": seen,
                "load": [round(x, 2) for x in os.getloadavg()]}
    finally:
        await sandbox.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m e2e.bench.sandbox_cost")
    parser.add_argument("--n", type=int, default=1000, help="requests of each kind")
    parser.add_argument("--world", type=int, default=200, help="technologies (and reviews)")
    parser.add_argument("--watches", type=int, default=2, help="watches on each kind written")
    parser.add_argument("--only", default="", help="comma-separated kinds (default: all)")
    parser.add_argument("--workdir", default=".sandbox/cost")
    result = asyncio.run(measure(parser.parse_args()))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
