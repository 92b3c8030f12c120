"""Turning views into what people read: kubectl-style tables, words, markdown and HTML."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from html import escape
from typing import Any

import yaml

from mltrl_operator.domain import condition_types as ct
from mltrl_operator.domain.card import NOT_RECORDED, Card, Item

View = dict[str, Any]


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    )


def structured(view: Any, output: str) -> str:
    if output == "json":
        return json.dumps(view, indent=2, default=str)
    return yaml.safe_dump(json.loads(json.dumps(view, default=str)), sort_keys=False)


# --- portfolio, status, history ---------------------------------------------------------
def portfolio_table(view: View, wide_namespace: bool) -> str:
    headers = ["NAME", "LEVEL", "PHASE", "EFFECTIVE", "SERVING", "NEXT", "NEEDS", "OWNER",
               "TEAM", "AT LEVEL"]
    if wide_namespace:
        headers = ["NAMESPACE", *headers]
    rows = []
    for r in view["items"]:
        row = [r["name"], f"{r['level']} {r['levelName']}", r["phase"], r["effectiveLevel"],
               r["serving"], r["nextLevel"] if r["nextLevel"] is not None else "-",
               r["needs"] if r["nextLevel"] is not None else "-", r["owner"], r["team"],
               r["ageAtLevel"]]
        rows.append([r["namespace"], *row] if wide_namespace else row)
    if not rows:
        where = (view["namespace"] and f'namespace "{view["namespace"]}"') or "any namespace"
        return f"No MLTechnologies found in {where}."
    return table(headers, rows)


def status_text(view: View) -> str:
    lines = [
        f"{view['name']} (namespace {view['namespace']}, owner {view['owner']}"
        + (f", team {view['team']}" if view.get("team") else "") + ")",
        f"Level:    {view['level']} {view['levelName']} ({view['phase']}), "
        f"effective {view['effectiveLevel']}, target {view['targetLevel']}, "
        f"at this level for {view['ageAtLevel']}",
    ]
    serving = view["serving"]
    lines.append(f"Serving:  {serving['state']}: {serving['why']}")
    if serving.get("rollback"):
        lines.append(f"          rolled back: {serving['rollback']}")
    if serving.get("waiver"):
        waiver = serving["waiver"]
        lines.append(f"          by waiver {waiver['name']} ({', '.join(waiver['waived'])}) "
                     f"until {waiver['expiresAt']}")
    pending = (view.get("model") or {}).get("pending")
    if pending:
        lines.append(f"Model:    {pending['version']} waits for a change review: "
                     f"{pending['reason']}")
        lines.append(f"          open one: kubectl mltrl review new {view['name']} --type change "
                     f"-n {view['namespace']}")
    expiry = view.get("expiry")
    if expiry:
        lines.append(f"Certified: {'yes' if expiry['certified'] else 'NO'} "
                     f"({expiry['reason']}): {expiry['message']}")
        if expiry["reason"] in (ct.EXPIRING_SOON, ct.EXPIRED):
            lines.append(f"          renew it: kubectl mltrl review new {view['name']} "
                         f"--type recertify -n {view['namespace']}")
    nxt = view["next"]
    if nxt is None:
        lines.append("Next:     at its target level; nothing further to reach")
    else:
        source = f"review {nxt['review']}" if nxt["review"] else "no open review yet"
        lines.append(f"Next:     level {nxt['level']} {nxt['levelName']} ({source}); "
                     f"{len(nxt['unmet'])} still needed:")
        lines += [f"          - {u}" for u in nxt["unmet"]]
        lines += [f"          waived: {', '.join(w['waived'])} (waiver {w['name']} until "
                  f"{w['expiresAt']})" for w in nxt.get("waived") or []]
        if not nxt["review"]:
            lines.append(f"          open one: kubectl mltrl review new {view['name']} "
                         f"-n {view['namespace']}")
    open_reviews = [r for r in view["reviews"] if r["open"]]
    lines.append(f"Reviews:  {len(open_reviews)} open of {len(view['reviews'])}")
    for r in view["reviews"]:
        lines.append(f"          {r['name']}: {r['from']} -> {r['to']} {r['phase']}"
                     + (f" ({len(r['unmet'])} unmet)" if r["unmet"] else ""))
        if r["open"]:
            lines += [f"            - {u}" for u in r["unmet"]]
    incidents = view["openIncidents"]
    lines.append(f"Incidents: {len(incidents)} open of {len(view['incidents'])}")
    for i in view["incidents"][-5:]:
        lines.append(f"          {i.get('alertName')} -> {i.get('action')}: {i.get('state')} "
                     f"{i.get('message', '')}".rstrip())
    waivers = view.get("waivers") or []
    lines.append(f"Waivers:  {len(waivers)}" + ("" if waivers else " (none)"))
    for w in waivers:
        lines.append(f"          {w['name']}: {'counts' if w['counts'] else 'does not count'}"
                     f": {w['why']}")
    lines += [f"Note:     {note}" for note in view["notes"]]
    return "\n".join(lines)


def history_headline(view: View) -> list[str]:
    """Where the history comes from and whether its chain verified: the lines above the
    table (and the dashboard's history section)."""
    where = f"{view['namespace']}/{view['name']}"
    if view["source"] != "audit record":
        return [f"Level history of {where} from {view['source']} (not the audit record)."]
    count = len(view["items"])
    lines = [f"Level history of {where} from the audit record ({count} entries"
             + (", the technology is deleted" if view.get("deleted") else "") + ")."]
    if view.get("verified"):
        lines.append(f"Chain verified: every entry matches its hash and follows the one "
                     f"before it (head {view.get('head') or '-'}).")
    else:
        findings = view.get("findings") or []
        lines.append(f"TAMPERED: the chain does not verify ({len(findings)} finding(s)); "
                     "entries may have been edited or removed:")
        lines += [f"  - {f}" for f in findings]
    return lines


def _levels(value: object) -> str:
    return "-" if value is None else str(value)


def history_table(view: View) -> str:
    head = "\n".join(history_headline(view))
    if not view["items"]:
        return f"{head}\nNo level changes recorded for {view['name']}."
    rows = []
    for t in view["items"]:
        kind = t["kind"] + (f" ({t['switchbackType']})" if t.get("switchbackType") else "")
        rows.append([t["at"], _levels(t.get("from")), _levels(t.get("to")), kind,
                     t.get("cause") or "-", ",".join(t.get("by") or []) or "-",
                     t.get("reason") or ""])
    return head + "\n" + table(["AT", "FROM", "TO", "KIND", "CAUSE", "BY", "REASON"], rows)


# --- cards ------------------------------------------------------------------------------
LinkFor = Callable[[int], str]


def _default_md_link(card: Card) -> LinkFor:
    return lambda level: f"{card.technology}-level-{level}.md"


def _item_md(item: Item, card: Card, link: LinkFor) -> str:
    if item.label == "Cards of earlier levels":
        if not item.entries:
            return f"- **{item.label}:** none (this is the first level reached)"
        links = ", ".join(f"[level {e}]({link(int(e))})" for e in item.entries)
        return f"- **{item.label}:** {links}"
    if item.empty:
        return f"- **{item.label}:** _{NOT_RECORDED}_"
    if item.link:
        return f"- **{item.label}:** <{item.link}>"
    if item.is_list:
        return f"- **{item.label}:**\n" + "\n".join(f"  - {e}" for e in item.entries)
    return f"- **{item.label}:** {item.text}"


def card_markdown(card: Card, link: LinkFor | None = None) -> str:
    link = link or _default_md_link(card)
    out = [f"# {card.title}", ""]
    levels = ", ".join(str(lvl) for lvl in card.levels_reached)
    out.append(f"Versions: one per level reached ({levels}); current level {card.current_level}.")
    for section in card.sections:
        out += ["", f"## {section.title}", ""]
        out += [_item_md(item, card, link) for item in section.items]
    out += ["", "## Gaps", ""]
    out += [f"- {gap}" for gap in card.gaps] or ["- none: every field is filled in"]
    return "\n".join(out) + "\n"


PAGE_STYLE = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;
background:#f6f7f9;line-height:1.45}
header{background:#1d2330;color:#fff;padding:.6rem 1rem;display:flex;flex-wrap:wrap;gap:1rem;
align-items:center}
header a{color:#fff;text-decoration:none;font-weight:600}
header .live{margin-left:auto;font-size:.8rem;opacity:.8}
main{padding:1rem;max-width:1200px;margin:0 auto}
h1{font-size:1.4rem;margin:.2rem 0 1rem}h2{font-size:1.1rem;margin:1.4rem 0 .5rem}
section,.box{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:.8rem 1rem;
margin-bottom:1rem}
dd,a,.tech{overflow-wrap:anywhere}
dl{display:grid;grid-template-columns:minmax(8rem,16rem) 1fr;gap:.3rem 1rem;margin:0}
dt{font-weight:600;color:#47505e}dd{margin:0}
.gap{color:#a33;font-style:italic}
.met{color:#1a7f37}.unmet{color:#a33}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.3rem .5rem;
border-bottom:1px solid #eceff3;vertical-align:top}
.scroll{overflow-x:auto}
.ladder{display:grid;grid-template-columns:repeat(10,minmax(0,1fr));gap:.4rem}
.rung{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:.4rem;min-height:6rem}
.rung h3{font-size:.8rem;margin:0 0 .3rem;color:#47505e}
.phase-Research{border-top:4px solid #d64545}.phase-Prototyping{border-top:4px solid #e8913a}
.phase-Productization{border-top:4px solid #e5c22e}.phase-Deployment{border-top:4px solid #2e9e4f}
.tech{display:block;background:#f0f3f7;border-radius:6px;padding:.3rem;margin:.2rem 0;
font-size:.8rem;color:#1d2330;text-decoration:none;overflow-wrap:anywhere}
.tech small{display:block;color:#5b6472}
.empty-note{color:#5b6472}
.warning{background:#fff4d6;border:1px solid #e5c22e;border-radius:8px;padding:.5rem .8rem}
@media (max-width:800px){.ladder{grid-template-columns:1fr}.rung{min-height:0}
dl{grid-template-columns:1fr}dt{margin-top:.4rem}
table,tbody,tr,td{display:block;width:100%}thead{display:none}
tr{border-bottom:1px solid #dde1e7;padding:.4rem 0}td{border:0;padding:.1rem 0;
overflow-wrap:anywhere}
td[data-label]::before{content:attr(data-label) ": ";font-weight:600;color:#47505e}}
"""


def html_table(headers: Sequence[str], rows: Sequence[Sequence[str]], empty: str,
               classes: Sequence[Sequence[str]] | None = None) -> str:
    """Cells are HTML already escaped. On a phone the rows stack, each cell labelled by its
    column (data-label), so nothing needs a sideways scroll."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    if not rows:
        body = f'<tr><td class="empty-note" colspan="{len(headers)}">{escape(empty)}</td></tr>'
    else:
        body = "".join(
            "<tr>" + "".join(
                f'<td data-label="{escape(h)}"'
                + (f' class="{escape(classes[r][c])}"' if classes and classes[r][c] else "")
                + f">{cell}</td>"
                for c, (h, cell) in enumerate(zip(headers, row, strict=True))
            ) + "</tr>"
            for r, row in enumerate(rows)
        )
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def page(title: str, body: str, nav: str = "") -> str:
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{escape(title)}</title><style>{PAGE_STYLE}</style></head><body>"
        f"{nav}<main id=\"content\">{body}</main></body></html>"
    )


def _item_html(item: Item, link: LinkFor) -> str:
    label = f"<dt>{escape(item.label)}</dt>"
    if item.label == "Cards of earlier levels":
        if not item.entries:
            return label + "<dd>none (this is the first level reached)</dd>"
        links = ", ".join(
            f'<a href="{escape(link(int(e)))}">level {escape(e)}</a>' for e in item.entries
        )
        return label + f"<dd>{links}</dd>"
    if item.empty:
        return label + f'<dd class="gap">{NOT_RECORDED}</dd>'
    if item.link:
        return label + f'<dd><a href="{escape(item.link)}">{escape(item.link)}</a></dd>'
    if item.is_list:
        return label + "<dd><ul>" + "".join(
            f"<li>{escape(e)}</li>" for e in item.entries) + "</ul></dd>"
    return label + f"<dd>{escape(item.text or '')}</dd>"


def card_fragment(card: Card, link: LinkFor | None = None) -> str:
    link = link or (lambda level: f"{card.technology}-level-{level}.html")
    levels = ", ".join(str(lvl) for lvl in card.levels_reached)
    out = [f"<h1>{escape(card.title)}</h1>",
           f"<p>Versions: one per level reached ({escape(levels)}); current level "
           f"{card.current_level}.</p>"]
    for section in card.sections:
        out.append(f"<section><h2>{escape(section.title)}</h2><dl>"
                   + "".join(_item_html(item, link) for item in section.items) + "</dl></section>")
    gaps = "".join(f"<li>{escape(g)}</li>" for g in card.gaps) or "<li>none</li>"
    out.append(f'<section><h2>Gaps</h2><ul class="gap">{gaps}</ul></section>')
    return "".join(out)


def card_html(card: Card, link: LinkFor | None = None) -> str:
    return page(card.title, card_fragment(card, link))


# --- maturity report --------------------------------------------------------------------
def _verdict_md(verdict: dict[str, Any], heading: str) -> list[str]:
    out = [f"## {heading}: {verdict['subject']}: {verdict['name']}", ""]
    if verdict.get("technologies"):
        out.append("Technologies: " + ", ".join(verdict["technologies"]))
        out.append("")
    out.append("| criterion | met | observed |")
    out.append("|---|---|---|")
    for s in verdict["signals"]:
        out.append(f"| {s['criterion']} | {'yes' if s['met'] else 'no'} | {s['observed']} |")
    out += ["", "Missing for the next level:", ""]
    out += [f"- {m}" for m in verdict["missing_for_next"]] or ["- nothing: the top level"]
    return [*out, ""]


def report_markdown(view: View) -> str:
    out = [f"# ML maturity report ({view['scope']}, by {view['grouping']})", ""]
    org = view["organisation"]
    out += _verdict_md(org, "ML capacity stage")
    for team in view["teams"]:
        out += _verdict_md(team, "MLOps maturity")
    out += ["## What a cluster cannot observe", ""]
    out += [f"- {u}" for u in view["unobservable"]]
    return "\n".join(out) + "\n"


def _verdict_html(verdict: dict[str, Any], heading: str) -> str:
    signals = verdict["signals"]
    rows = [[escape(s["criterion"]), "yes" if s["met"] else "no", escape(s["observed"])]
            for s in signals]
    classes = [["", "met" if s["met"] else "unmet", ""] for s in signals]
    missing = "".join(f"<li>{escape(m)}</li>" for m in verdict["missing_for_next"]) \
        or "<li>nothing: the top level</li>"
    techs = ""
    if verdict.get("technologies"):
        techs = "<p>Technologies: " + escape(", ".join(verdict["technologies"])) + "</p>"
    return (
        f"<section><h2>{escape(heading)}: {escape(verdict['subject'])}: "
        f"<span class=\"level\">{escape(verdict['name'])}</span></h2>{techs}"
        + html_table(["criterion", "met", "observed"], rows, "no signals", classes)
        + f"<p>Missing for the next level:</p><ul class=\"unmet\">{missing}</ul></section>"
    )


def report_fragment(view: View) -> str:
    out = [f"<h1>ML maturity report ({escape(view['scope'])}, by {escape(view['grouping'])})</h1>",
           _verdict_html(view["organisation"], "ML capacity stage")]
    out += [_verdict_html(team, "MLOps maturity") for team in view["teams"]]
    out.append("<section><h2>What a cluster cannot observe</h2><ul>"
               + "".join(f"<li>{escape(u)}</li>" for u in view["unobservable"])
               + "</ul></section>")
    return "".join(out)


def report_html(view: View) -> str:
    return page("ML maturity report", report_fragment(view))


def report_table(view: View) -> str:
    org = view["organisation"]
    lines = [f"Organisation: ML capacity stage {org['name']}"]
    lines += [f"  missing for the next stage: {m}" for m in org["missing_for_next"]]
    lines.append("")
    rows = [[t["subject"], t["name"], len(t["technologies"]),
             len(t["missing_for_next"])] for t in view["teams"]]
    grouping = view["grouping"].upper()
    lines.append(table([grouping, "MLOPS LEVEL", "TECHNOLOGIES", "MISSING FOR NEXT"], rows))
    for t in view["teams"]:
        if t["missing_for_next"]:
            lines.append(f"\n{t['subject']} needs for the next level:")
            lines += [f"  - {m}" for m in t["missing_for_next"]]
    return "\n".join(lines)
