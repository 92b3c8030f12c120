"""`python -m e2e.bench`: run the scenarios, print the table, write the JSON."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from e2e.bench import objects, report
from e2e.bench.figures import exponent, ratio, relative
from e2e.bench.procs import REPO
from e2e.bench.scenarios import (
    QUICK,
    VARIANTS,
    Config,
    baseline,
    floor_seconds,
    log,
    operator_scenarios,
    scale,
)

PERCENTILES = ("p50", "p95", "p99")
T = TypeVar("T")


def revision() -> str:
    """The commit measured, marked when the work tree differs from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                              check=False).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "operator")
    return f"{commit}{' + uncommitted changes in operator/' if dirty else ''}"


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_kib = 0
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                memory_kib = int(line.split()[1])
    return {
        "cpus": len(os.sched_getaffinity(0)),
        "cpu_model": cpu,
        "memory_gib": round(memory_kib / 1024**2, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "kopf": metadata.version("kopf"),
        "aiohttp": metadata.version("aiohttp"),
        "pydantic": metadata.version("pydantic"),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def in_round_trips(summary: dict[str, Any], rtt: dict[str, Any]) -> dict[str, Any]:
    """Each percentile in units of the sandbox's median GET round trip."""
    return {key: ratio(summary.get(key), rtt.get("p50")) for key in PERCENTILES}


def _derive(results: dict[str, Any]) -> None:
    """Ratios to bare kopf and to the sandbox's round trip, growth exponents, targets."""
    if "baseline" in results:
        _derive_reactions(results)
    for section in ("scale", "latency"):
        if section in results:
            _ratios_to_bare(results[section]["runs"])
    _derive_growth(results)
    results["targets"] = targets(results)


def _ratios_to_bare(runs: list[dict[str, Any]]) -> None:
    bares = {r["technologies"]: r for r in runs if r["who"] == "bare-kopf"}
    for run in runs:
        other = bares.get(run["technologies"])
        if other and run is not other:
            run["x_bare_kopf"] = ratio(run["seconds_to_current"], other["seconds_to_current"])
            run["rss_x_bare_kopf"] = ratio(run["peak_rss_mib"], other["peak_rss_mib"])


def _derive_reactions(results: dict[str, Any]) -> None:
    bare = results["baseline"]["bare_kopf"]["reaction_ms"]
    rtt = results["baseline"]["sandbox"]["get_ms"]
    ops = results["operator"]
    for section, fields in (
        ("promotion", ("to_level_ms", "to_inference_service_ms")),
        ("promotion_level_only", ("to_level_ms",)),
        ("alert_rollback", ("to_inference_service_ms", "to_recorded_ms")),
        ("alert_demote", ("to_inference_service_ms", "to_recorded_ms")),
    ):
        for field in fields:
            summary = ops[section][field]
            summary["x_bare_kopf"] = relative(summary, bare, PERCENTILES)
            summary["round_trips"] = in_round_trips(summary, rtt)
    bare_summary = results["baseline"]["bare_kopf"]["reaction_ms"]
    bare_summary["round_trips"] = in_round_trips(bare_summary, rtt)
    # what one request costs the sandbox, in its own GET round trips
    sandbox = results["baseline"]["sandbox"]
    for name in ("patch_ms", "status_patch_ms", "write_to_watch_ms"):
        if name in sandbox:
            sandbox[name]["round_trips"] = in_round_trips(sandbox[name], rtt)


def _derive_growth(results: dict[str, Any]) -> None:
    runs = results["scale"]["runs"]
    growth: dict[str, Any] = {}
    sizes = sorted({r["technologies"] for r in runs})
    if len(sizes) >= 2:
        n1, n2 = sizes[0], sizes[-1]
        growth["between"] = [n1, n2]
        by = {(r["who"], r["technologies"]): r for r in runs}
        for who in dict.fromkeys(r["who"] for r in runs):
            small, large = by.get((who, n1)), by.get((who, n2))
            if not small or not large:
                continue
            growth[who] = {
                "seconds_to_current": exponent(n1, small["seconds_to_current"], n2,
                                               large["seconds_to_current"]),
                "peak_rss": exponent(n1, small["peak_rss_mib"], n2, large["peak_rss_mib"]),
                # CPU is the work done, whatever else the machine ran meanwhile.
                "cpu_seconds": exponent(n1, small["cpu_seconds"], n2, large["cpu_seconds"]),
            }
        empty = results["scale"].get("empty_rss_mib")
        small, large = by.get(("mltrl", n1)), by.get(("mltrl", n2))
        if empty and small and large and "mltrl" in growth:
            growth["mltrl"]["peak_rss_above_empty"] = exponent(
                n1, small["peak_rss_mib"] - empty, n2, large["peak_rss_mib"] - empty
            )
    results["scale"]["growth"] = growth


def _target(name: str, goal: str, value: Any, met: bool | None) -> dict[str, Any]:
    return {"target": name, "goal": goal, "value": value, "met": met}


LARGE = 50_000
FULL = 10_000


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 17's targets, against what this run measured (sections it ran)."""
    found: list[dict[str, Any]] = []
    if "operator" in results:
        found += _reaction_targets(results)
    runs = results["scale"]["runs"]
    mine = {r["technologies"]: r for r in runs if r["who"] == "mltrl"}
    for n, run in sorted(mine.items()):
        full = n >= FULL
        seconds, rss = run["seconds_to_current"], run["peak_rss_mib"]
        rss_x = run.get("rss_x_bare_kopf")
        found.append(_target(f"{n} technologies: all statuses current", "<= 120 s", seconds,
                             seconds <= 120 if full and n < LARGE else None))
        found.append(_target(f"{n} technologies: peak RSS vs bare kopf's", "<= 1.5x", rss_x,
                             None if rss_x is None or not full else rss_x <= 1.5))
        if n >= LARGE:
            found.append(_target(f"{n} technologies: peak RSS", "< 1024 MiB", rss, rss < 1024))
        announced, promoted = run.get("promoted_events"), run["promoted_at_start"]
        found.append(_target(
            f"{n} technologies: each promotion at start-up announced once",
            f"= {promoted} Promoted events", announced, announced == promoted,
        ))
    growth = (results["scale"].get("growth") or {}).get("mltrl") or {}
    between = (results["scale"].get("growth") or {}).get("between") or []
    for key in ("seconds_to_current", "peak_rss") if between else ():
        value = growth.get(key)
        found.append(_target(
            f"growth exponent {'-'.join(map(str, between))}, {key.replace('_', ' ')}",
            "<= 1 (linear)", value, None if value is None else value <= 1.0,
        ))
    latency: dict[str, Any] = results.get("latency") or {}
    for run in latency.get("runs", []):
        if run["who"] != "mltrl":
            continue
        n, seconds = run["technologies"], run["seconds_to_current"]
        found.append(_target(
            f"{n} technologies at latency {latency['read_ms']:g},{latency['write_ms']:g} ms: "
            f"all current (floor {run['floor_seconds']} s)", "<= 120 s", seconds,
            seconds <= 120 if n >= FULL else None,
        ))
    return found


def _reaction_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    ops = results["operator"]
    bare_p99 = results["baseline"]["bare_kopf"]["reaction_ms"].get("p99")
    alert_rtts = ops["alert_rollback"]["to_inference_service_ms"]["round_trips"].get("p99")
    promo_p99 = ops["promotion"]["to_level_ms"].get("p99")
    level_writes = ops["promotion_level_only"]["cost"]["writes_per_action"]
    serving_writes = ops["promotion"]["cost"]["writes_per_action"]
    alert_writes = max(ops[f"alert_{kind}"]["cost"]["writes_per_action"]
                       for kind in ("rollback", "demote"))
    idle = ops["idle"]
    return [
        _target("alert to InferenceService patched, p99, in round trips", "<= 10",
                alert_rtts, alert_rtts is not None and alert_rtts <= 10),
        _target("promotion (level in status), p99 vs bare kopf p99", "<= 1.25x",
                ratio(promo_p99, bare_p99),
                promo_p99 is not None and bool(bare_p99) and promo_p99 <= 1.25 * bare_p99),
        _target("writes per promotion (level only)", "<= 3", level_writes,
                level_writes is not None and level_writes <= 3),
        _target("writes per promotion that starts serving", "<= 5", serving_writes,
                serving_writes is not None and serving_writes <= 5),
        _target("writes per alert action (rollback, demotion: the larger)", "<= 4",
                alert_writes, alert_writes is not None and alert_writes <= 4),
        _target("writes and requests per minute idle", "0",
                f"{idle['writes_per_minute']:g}, {idle['requests_per_minute']:g}",
                idle["writes_per_minute"] == 0 and idle["requests_per_minute"] == 0),
    ]


async def run(config: Config, workdir: Path) -> dict[str, Any]:
    started = time.perf_counter()
    results: dict[str, Any] = {
        "meta": {
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "config": {**config.__dict__, "scale": list(config.scale),
                       "variants": list(config.variants)},
            "machine": machine(),
            "revision": revision(),
            "sandbox": "a separate process (e2e/bench/sandbox_main.py)",
        }
    }
    if config.main:
        world = objects.build_world(
            config.world, promote=config.promotions, step=config.steps,
            rollback=config.rollbacks, demote=config.demotes,
        )
        results["baseline"] = await baseline(config, world, workdir)
        results["operator"] = await operator_scenarios(config, world, workdir)
    runs = []
    for size in config.scale:
        for variant in config.variants:
            runs.append({"who": variant, **await scale(config, size, workdir, variant)})
    results["scale"] = {"runs": runs, "variants": {v: VARIANTS[v] for v in config.variants}}
    results["scale"]["empty_rss_mib"] = await _empty_rss(workdir, config.quiet)
    if config.latency:
        read_ms, write_ms = (float(x) for x in config.latency.split(","))
        latency_runs = []
        for size in config.latency_scale:
            for variant in config.variants:
                run_ = await scale(config, size, workdir, variant, config.latency)
                run_["floor_seconds"] = floor_seconds(
                    run_["requests_until_current"], run_["writes_until_current"],
                    read_ms, write_ms,
                )
                latency_runs.append({"who": variant, **run_})
        results["latency"] = {"read_ms": read_ms, "write_ms": write_ms, "runs": latency_runs}
    _derive(results)
    results["meta"]["seconds"] = round(time.perf_counter() - started, 1)
    results["meta"]["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return results


async def _empty_rss(workdir: Path, quiet: float) -> float | None:
    """The operator's peak RSS with nothing to do: what the growth is measured above."""
    from e2e.bench.scenarios import Operator, sandbox_running

    async with sandbox_running(workdir / "empty", None, quiet) as sandbox:
        operator = Operator(sandbox)
        try:
            await operator.start()
            await sandbox.client.settle()
            peak: float | None = operator.memory()["peak_rss_mib"]
            return peak
        finally:
            await operator.stop()


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m e2e.bench",
        description="Benchmark the operator against the sandbox API server and bare kopf.",
    )
    parser.add_argument("--quick", action="store_true",
                        help="small sizes, for a smoke run (under a minute)")
    parser.add_argument("--out", type=Path, default=None,
                        help="where to write the JSON (default: bench-results/<time>.json)")
    parser.add_argument("--scale", default=None,
                        help="comma-separated technology counts for scenario 4 "
                        "(default 1000,10000; --quick 40,160)")
    parser.add_argument("--world", type=int, default=None,
                        help="technologies present in scenarios 1-3 (default 1000)")
    parser.add_argument("--promotions", type=int, default=None, help="default 200")
    parser.add_argument("--alerts", type=int, default=None,
                        help="rollback alerts, and as many demotion alerts (default 100)")
    parser.add_argument("--idle-seconds", type=float, default=None, help="default 60")
    parser.add_argument("--variants", default=None,
                        help="who starts at each scale, comma-separated (default: "
                        + ",".join(Config().variants) + "; known: " + ", ".join(VARIANTS) + ")")
    parser.add_argument("--latency", default=None, metavar="READ_MS,WRITE_MS",
                        help="only start-up (mltrl and bare kopf) on a sandbox this slow, "
                        "behind kube-apiserver's in-flight limits, at --latency-scale")
    parser.add_argument("--latency-scale", default=None,
                        help="technology counts for --latency (default 10000; --quick 160)")
    parser.add_argument("--large", action="store_true",
                        help=f"only start-up, at {FULL} and {LARGE} technologies (+ reviews), "
                        "or at --scale's sizes")
    parser.add_argument("--report", type=Path, default=None, metavar="JSON",
                        help="print the tables of an earlier run's JSON, run nothing")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep logs here (default: a temporary directory)")
    return parser.parse_args(argv)


def config_from(args: argparse.Namespace) -> Config:
    base = QUICK if args.quick else Config()
    changes: dict[str, Any] = {}
    if args.scale:
        changes["scale"] = tuple(int(n) for n in args.scale.split(",") if n)
    if args.world is not None:
        changes["world"] = args.world
    if args.promotions is not None:
        changes["promotions"] = args.promotions
    if args.alerts is not None:
        changes["rollbacks"] = changes["demotes"] = args.alerts
    if args.idle_seconds is not None:
        changes["idle_seconds"] = args.idle_seconds
    if args.latency:
        changes.update(main=False, scale=(), latency=args.latency)
    if args.latency_scale:
        changes["latency_scale"] = tuple(int(n) for n in args.latency_scale.split(",") if n)
    if args.large:
        # --scale with --large: only start-up, at the sizes given.
        changes.update(main=False, scale=changes.get("scale") or (FULL, LARGE),
                       start_timeout=7200.0)
    if args.variants:
        changes["variants"] = tuple(v for v in args.variants.split(",") if v)
        unknown = set(changes["variants"]) - set(VARIANTS)
        if unknown:
            raise SystemExit(f"unknown variants {sorted(unknown)}; known: {', '.join(VARIANTS)}")
    return Config(**{**base.__dict__, **changes})


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.report:
        print(report.render(json.loads(args.report.read_text())))
        return 0
    config = config_from(args)
    out = args.out or REPO / "bench-results" / (
        datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + ("-quick" if args.quick else "") + ".json"
    )
    with tempfile.TemporaryDirectory(prefix="mltrl-bench-") as scratch:
        workdir = args.workdir or Path(scratch)
        try:
            results = asyncio.run(_cancel_on_sigterm(run(config, workdir)))
        except KeyboardInterrupt:
            return 130
        except Exception:
            log(f"failed; logs under {workdir}")
            if args.workdir is None:
                _show_logs(workdir)
            raise
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(report.render(results))
    log(f"wrote {out}")
    return 0


async def _cancel_on_sigterm(work: Coroutine[Any, Any, T]) -> T:
    """SIGTERM (e.g. from `timeout`) cancels the run, so every `finally` stops its processes."""
    task = asyncio.ensure_future(work)
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await task
    except asyncio.CancelledError:
        raise KeyboardInterrupt from None


def _show_logs(workdir: Path) -> None:
    for path in sorted(workdir.rglob("*.log")):
        tail = path.read_text(errors="replace").splitlines()[-30:]
        print(f"--- {path.relative_to(workdir)} (last lines)", file=sys.stderr)
        print("\n".join(tail), file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
