"""The results as Markdown tables: readable in a terminal, pasteable into docs/benchmarks.md."""

from __future__ import annotations

from typing import Any


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def table(header: list[str], rows: list[list[Any]]) -> str:
    cells = [header] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
             for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _latency_row(label: str, summary: dict[str, Any]) -> list[Any]:
    return [
        label, summary.get("n"), summary.get("p50"), summary.get("p95"), summary.get("p99"),
        (summary.get("x_bare_kopf") or {}).get("p50"),
        (summary.get("x_bare_kopf") or {}).get("p99"),
        (summary.get("round_trips") or {}).get("p50"),
        (summary.get("round_trips") or {}).get("p99"),
    ]


def latencies(results: dict[str, Any]) -> str:
    sandbox = results["baseline"]["sandbox"]
    bare = results["baseline"]["bare_kopf"]
    ops = results["operator"]
    rows = [
        _latency_row("sandbox GET round trip (the RTT unit)", sandbox["get_ms"]),
        _latency_row("sandbox PATCH round trip", sandbox["patch_ms"]),
        _latency_row("sandbox custom-resource status PATCH round trip",
                     sandbox.get("status_patch_ms") or {}),
        _latency_row("sandbox write -> watch event", sandbox["write_to_watch_ms"]),
        _latency_row("bare kopf: write -> its status patch seen", bare["reaction_ms"]),
        _latency_row("promotion: approval -> level in status", ops["promotion"]["to_level_ms"]),
        _latency_row("promotion: approval -> InferenceService exists",
                     ops["promotion"]["to_inference_service_ms"]),
        _latency_row("promotion: approval -> review Applied",
                     ops["promotion"]["to_review_applied_ms"]),
        _latency_row("level-only promotion: approval -> level",
                     ops["promotion_level_only"]["to_level_ms"]),
        _latency_row("rollback alert: POST -> 200 answer", ops["alert_rollback"]["to_answer_ms"]),
        _latency_row("rollback alert: POST -> InferenceService patched",
                     ops["alert_rollback"]["to_inference_service_ms"]),
        _latency_row("rollback alert: POST -> incident Acted in status",
                     ops["alert_rollback"]["to_recorded_ms"]),
        _latency_row("demote alert: POST -> InferenceService stopped",
                     ops["alert_demote"]["to_inference_service_ms"]),
        _latency_row("demote alert: POST -> demotion recorded",
                     ops["alert_demote"]["to_recorded_ms"]),
    ]
    header = ["latency (ms)", "n", "p50", "p95", "p99", "p50 x bare", "p99 x bare",
              "p50 RTTs", "p99 RTTs"]
    return table(header, rows)


def _writes(breakdown: dict[str, int], count: int) -> str:
    if not count:
        return "-"
    return ", ".join(f"{name} {n / count:g}" for name, n in sorted(breakdown.items()))


def costs(results: dict[str, Any]) -> str:
    ops = results["operator"]
    bare = results["baseline"]["bare_kopf"]["cost"]
    rows = []
    for label, section in (
        ("promotion that starts serving (4 -> 5)", ops["promotion"]["cost"]),
        ("promotion, level only (3 -> 4)", ops["promotion_level_only"]["cost"]),
        ("rollback alert", ops["alert_rollback"]["cost"]),
        ("demotion alert", ops["alert_demote"]["cost"]),
        ("bare kopf reaction", bare),
    ):
        count = section["actions"]
        rows.append([label, section["requests_per_action"], section["writes_per_action"],
                     _writes(section["writes"], count)])
    idle = ops["idle"]
    rows.append([f"idle, per minute ({results['meta']['config']['world']} technologies)",
                 idle["requests_per_minute"], idle["writes_per_minute"],
                 _writes(idle["writes"], 1) if idle["writes"] else "none"])
    return table(["API cost", "requests", "writes", "writes by kind (per action)"], rows)


def _start_ups(runs: list[dict[str, Any]], floor: bool = False) -> str:
    rows = [
        [run["who"], run["technologies"], run["seconds_to_current"], run.get("x_bare_kopf"),
         *([run.get("floor_seconds") if run["who"] == "mltrl" else "-"] if floor else []),
         run["peak_rss_mib"], run.get("rss_x_bare_kopf"), run["cpu_seconds"],
         run.get("sandbox_cpu_seconds"), run["requests_until_settled"],
         run["writes_until_settled"],
         sum(((run.get("inflight") or {}).get("rejected") or {}).values())]
        for run in runs
    ]
    return table(["start-up", "technologies (+ reviews)", "s to all current", "x bare",
                  *(["floor s"] if floor else []), "peak RSS MiB", "RSS x bare", "CPU s",
                  "sandbox CPU s", "requests", "writes", "429s"], rows)


def latency_runs(results: dict[str, Any]) -> str:
    latency = results["latency"]
    return (f"start-up at {latency['read_ms']:g} ms per read, {latency['write_ms']:g} ms per "
            "write (the sandbox's --latency), behind kube-apiserver's in-flight limits of 400 "
            "reads and 200 writes; floor: the requests the operator made, at that latency, "
            "100 at a time (its client's Etiquette.in_flight; bare kopf sends without a "
            "limit, and meets the server's):\n\n"
            + _start_ups(latency["runs"], floor=True))


def scaling(results: dict[str, Any]) -> str:
    text = _start_ups(results["scale"]["runs"])
    growth = dict(results["scale"].get("growth") or {})
    between = growth.pop("between", None)
    if between:
        n1, n2 = between
        text += f"\n\ngrowth exponent k (y ~ n^k) between {n1} and {n2}:\n\n" + table(
            ["who", "k: s to all current", "k: CPU s", "k: peak RSS", "k: peak RSS above empty"],
            [[who, k.get("seconds_to_current"), k.get("cpu_seconds"), k.get("peak_rss"),
              k.get("peak_rss_above_empty")] for who, k in growth.items()],
        )
    empty = results["scale"].get("empty_rss_mib")
    if empty:
        text += f"\n\noperator peak RSS with an empty cluster: {empty} MiB"
    variants = results["scale"].get("variants") or {}
    text += "".join(f"\n- {who}: {what}" for who, what in variants.items())
    return text


def goals(results: dict[str, Any]) -> str:
    rows = [[t["target"], t["goal"], t["value"],
             "n/a (size)" if t["met"] is None else ("met" if t["met"] else "MISSED")]
            for t in results["targets"]]
    return table(["target", "goal", "value", ""], rows)


def render(results: dict[str, Any]) -> str:
    m = results["meta"]["machine"]
    head = (f"mltrl-operator benchmark of {results['meta'].get('revision')}, "
            f"{results['meta']['started']}, "
            f"{results['meta']['seconds']} s: {m['cpus']} CPUs ({m['cpu_model']}), "
            f"{m['memory_gib']} GiB, Python {m['python']}, kopf {m['kopf']}, "
            f"load {m['load_average_at_start']} -> {m.get('load_average_at_end')}")
    parts = [head]
    if "operator" in results:
        parts += [latencies(results), costs(results)]
    if results["scale"]["runs"]:
        parts.append(scaling(results))
    if "latency" in results:
        parts.append(latency_runs(results))
    return "\n\n".join([*parts, goals(results)]) + "\n"
