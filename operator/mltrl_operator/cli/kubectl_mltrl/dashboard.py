"""`kubectl mltrl dashboard`: a read-only web view, served on loopback, as the user.

Nothing new to secure on the cluster's side: the pages are rendered here from reads made
with the user's own kubeconfig identity, so they show exactly what `kubectl get` would
let the user see. The server listens on loopback only, answers GET only, and refuses
requests whose Host is not the loopback address it listens on (a web page elsewhere cannot
reach it through DNS rebinding). Pages update without a reload: the server watches
technologies and reviews and tells open pages over server-sent events to fetch their
content again; a page that loses the event stream polls instead."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from html import escape
from urllib.parse import quote

from aiohttp import web

from mltrl_operator.cli.kubectl_mltrl import render, views
from mltrl_operator.cli.kubectl_mltrl.session import PluginError, Session
from mltrl_operator.domain.levels import LEVEL_NAMES, phase_of
from mltrl_operator.k8s.client import watch_events
from mltrl_operator.k8s.errors import ApiError
from mltrl_operator.k8s.resources import REVIEWS, TECHNOLOGIES, ResourceRef

logger = logging.getLogger(__name__)
SESSION = web.AppKey("session", Session)
DEBOUNCE = 0.3

LIVE_SCRIPT = """
<script>
(function(){
  var status=document.getElementById('live');
  function refresh(){
    var url=location.pathname+location.search+(location.search?'&':'?')+'fragment=1';
    fetch(url).then(function(r){return r.text();}).then(function(html){
      document.getElementById('content').innerHTML=html;
      status.textContent='updated '+new Date().toLocaleTimeString();
      window.mltrlRefreshes=(window.mltrlRefreshes||0)+1;
    });
  }
  var polling=null;
  function poll(){
    if(!polling){ polling=setInterval(refresh,5000); status.textContent='polling'; }
  }
  if(window.EventSource){
    var source=new EventSource('/events');
    source.onmessage=function(){ refresh(); };
    source.onopen=function(){ status.textContent='live'; };
    source.onerror=function(){ if(source.readyState===2){ poll(); } };
  } else { poll(); }
})();
</script>
"""


class Changes:
    """A counter the watches bump; the event streams wait for it to move."""

    def __init__(self) -> None:
        self.version = 0
        self._moved = asyncio.Condition()

    async def bump(self) -> None:
        async with self._moved:
            self.version += 1
            self._moved.notify_all()

    async def wait_past(self, seen: int) -> int:
        async with self._moved:
            await self._moved.wait_for(lambda: self.version > seen)
            return self.version


CHANGES: web.AppKey[Changes] = web.AppKey("changes")


def _nav(scope: str) -> str:
    return (
        "<header><a href=\"/\">MLTRL portfolio</a><a href=\"/report\">Maturity report</a>"
        f"<span>{escape(scope)}</span><span class=\"live\" id=\"live\">connecting</span></header>"
    )


def _tech_href(namespace: str, name: str, suffix: str = "") -> str:
    return f"/t/{quote(namespace)}/{quote(name)}{suffix}"


async def _portfolio(session: Session, request: web.Request) -> tuple[str, str]:
    view = await views.portfolio(session, views.now_utc(), "level")
    rungs = []
    for level in range(10):
        techs = "".join(
            f"<a class=\"tech\" href=\"{_tech_href(r['namespace'], r['name'])}\">"
            f"{escape(r['name'])}<small>{escape(r['namespace'])} · {escape(r['serving'])}"
            + (f" · needs {r['needs']} for {r['nextLevel']}" if r["nextLevel"] is not None
               else " · at target")
            + "</small></a>"
            for r in view["items"] if r["level"] == level
        )
        rungs.append(
            f"<div class=\"rung phase-{phase_of(level)}\"><h3>{level} "
            f"{escape(LEVEL_NAMES[level])}</h3>{techs}</div>"
        )
    rows = [
        [f"<a href=\"{_tech_href(r['namespace'], r['name'])}\">{escape(r['name'])}</a>",
         escape(r["namespace"]), f"{r['level']} {escape(r['levelName'])}", escape(r["phase"]),
         escape(r["serving"]), str(r["needs"]) if r["nextLevel"] is not None else "-",
         escape(r["owner"]), escape(r["team"]), escape(r["ageAtLevel"])]
        for r in view["items"]
    ]
    table = render.html_table(
        ["name", "namespace", "level", "phase", "serving", "needs", "owner", "team",
         "at level"], rows, "no technologies")
    body = (
        f"<h1>Portfolio: {len(view['items'])} technologies</h1>{_warning(view)}"
        f"<div class=\"ladder\">{''.join(rungs)}</div>"
        f"<h2>Every technology</h2><section>{table}</section>"
    )
    return "MLTRL portfolio", body


def _warning(view: dict[str, object]) -> str:
    text = view.get("warning")
    if not text:
        return ""
    return (f'<p class="warning">{escape(str(text))}; showing what the operator published '
            "instead.</p>")


def _list(items: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{escape(i)}</li>" for i in items) + "</ul>" if items else ""


async def _technology(session: Session, request: web.Request) -> tuple[str, str]:
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    scoped = replace(session, namespace=namespace, all_namespaces=False)
    level_param = request.query.get("level")
    level = int(level_param) if level_param and level_param.isdigit() else None
    status = await views.technology_status(scoped, name, views.now_utc())
    history = await views.history(scoped, name)
    card = await views.card(scoped, name, level)
    nxt = status["next"]
    next_html = (
        "<p>At its target level.</p>" if nxt is None else
        f"<p>Level {nxt['level']} {escape(nxt['levelName'])}: "
        + (f"review {escape(nxt['review'])}" if nxt["review"] else "no open review")
        + f", {len(nxt['unmet'])} still needed</p>{_list(nxt['unmet'])}"
    )
    serving = status["serving"]
    reviews = render.html_table(
        ["review", "levels", "phase", "unmet", "approved by"],
        [[escape(str(r["name"])), f"{r['from']} → {r['to']}", escape(r["phase"]),
          _list(r["unmet"]), escape(", ".join(r["approvedBy"]))] for r in status["reviews"]],
        "no reviews")
    incidents = render.html_table(
        ["alert", "action", "state", "message"],
        [[escape(i.get("alertName", "")), escape(i.get("action", "")),
          escape(i.get("state", "")), escape(i.get("message", ""))]
         for i in status["incidents"]],
        "no incidents")
    changes = render.html_table(
        ["at", "from", "to", "kind", "cause", "by"],
        [[escape(t["at"]), str(t.get("from", "-")), str(t.get("to", "-")), escape(t["kind"]),
          escape(t.get("cause") or ""), escape(", ".join(t.get("by") or []))]
         for t in history["items"]],
        "no level changes")
    # Where the history comes from, whether its chain verified, and why not the record.
    provenance = "".join(
        f'<p class="{"warning" if line.startswith(("TAMPERED", "  -")) else "source"}">'
        f"{escape(line)}</p>" for line in render.history_headline(history))
    if history.get("note"):
        provenance += f'<p class="warning">{escape(str(history["note"]))}.</p>'
    changes = provenance + changes
    card_html = render.card_fragment(
        card, lambda lvl: _tech_href(namespace, name, f"?level={lvl}#card")
    )
    body = (
        f"<h1>{escape(name)} <small>({escape(namespace)})</small></h1>{_warning(status)}"
        "<section><h2>Status</h2><dl>"
        f"<dt>Level</dt><dd id=\"level\">{status['level']} {escape(status['levelName'])} "
        f"({escape(status['phase'])})</dd>"
        f"<dt>Effective level</dt><dd>{status['effectiveLevel']}</dd>"
        f"<dt>Owner</dt><dd>{escape(status['owner'])}</dd>"
        f"<dt>Serving</dt><dd>{escape(serving['state'])}: {escape(serving['why'])}</dd>"
        f"<dt>At this level for</dt><dd>{escape(status['ageAtLevel'])}</dd>"
        f"</dl><h2>Next level</h2>{next_html}</section>"
        f"<section><h2>Reviews</h2>{reviews}</section>"
        f"<section><h2>Incidents</h2>{incidents}</section>"
        f"<section><h2>History</h2>{changes}</section>"
        f"<div id=\"card\" class=\"box\">{card_html}</div>"
    )
    return f"{name}: MLTRL", body


async def _report(session: Session, request: web.Request) -> tuple[str, str]:
    by = request.query.get("by", "team")
    view = await views.report(session, by if by in ("team", "namespace") else "team")
    return "ML maturity report", _warning(view) + render.report_fragment(view)


Page = Callable[[Session, web.Request], Awaitable[tuple[str, str]]]


def _page(builder: Page) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        session = request.app[SESSION]
        try:
            title, body = await builder(session, request)
            code = 200
        except PluginError as error:
            title, body, code = "Not found", f"<h1>Not found</h1><p>{escape(str(error))}</p>", 404
        except ApiError as error:
            title, body, code = "Refused", f"<h1>The API server refused</h1><p>" \
                f"{escape(str(error.body.get('message') or error))}</p>", 502
        if request.query.get("fragment"):
            return web.Response(text=body, content_type="text/html", status=code)
        scope = "all namespaces" if session.all_namespaces else f"namespace {session.namespace}"
        html = render.page(title, body, _nav(scope)).replace("</body>", LIVE_SCRIPT + "</body>")
        return web.Response(text=html, content_type="text/html", status=code)
    return handler


async def _events(request: web.Request) -> web.StreamResponse:
    changes: Changes = request.app[CHANGES]
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache"})
    await response.prepare(request)
    seen = changes.version
    await response.write(b": connected\n\n")
    while True:
        try:
            seen = await asyncio.wait_for(changes.wait_past(seen), timeout=15)
            await asyncio.sleep(DEBOUNCE)
            seen = changes.version
            await response.write(f"data: {seen}\n\n".encode())
        except TimeoutError:
            await response.write(b": keep-alive\n\n")
        except (ConnectionResetError, asyncio.CancelledError):
            break
    return response


async def _watch(session: Session, resource: ResourceRef, changes: Changes) -> None:
    version: str | None = None
    while True:
        try:
            if version is None:
                listed = await session.client.request("GET", resource.path(session.scope))
                version = (listed.get("metadata") or {}).get("resourceVersion")
            async for event in watch_events(session.client, resource, namespace=session.scope,
                                            resource_version=version, timeout_seconds=120):
                obj = event.get("object") or {}
                if event.get("type") == "ERROR":
                    version = None  # expired: list again
                    break
                version = (obj.get("metadata") or {}).get("resourceVersion") or version
                await changes.bump()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            logger.warning("watching %s failed, retrying: %s", resource.plural, error)
            version = None
            await asyncio.sleep(2)


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


@web.middleware
async def _only_loopback_reads(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    if request.method not in ("GET", "HEAD"):
        raise web.HTTPMethodNotAllowed(request.method, ["GET", "HEAD"])
    host = (request.host or "").rsplit(":", 1)[0].strip("[]")
    if not _loopback(host):
        raise web.HTTPForbidden(text="this dashboard answers only on loopback addresses")
    return await handler(request)


def application(session: Session) -> web.Application:
    app = web.Application(middlewares=[_only_loopback_reads])
    app[SESSION] = session
    app[CHANGES] = Changes()
    app.router.add_get("/", _page(_portfolio))
    app.router.add_get("/t/{namespace}/{name}", _page(_technology))
    app.router.add_get("/report", _page(_report))
    app.router.add_get("/events", _events)
    app.router.add_get("/healthz", lambda _: _ok())

    async def watches(app: web.Application) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(_watch(session, r, app[CHANGES]))
                 for r in (TECHNOLOGIES, REVIEWS)]
        yield
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.cleanup_ctx.append(watches)
    return app


async def _ok() -> web.Response:
    return web.Response(text="ok")


async def serve(session: Session, address: str, port: int) -> None:
    if not _loopback(address):
        raise PluginError(f"--address {address} is not a loopback address: the dashboard "
                          "acts with your credentials and serves only you (127.0.0.1 or ::1)")
    runner = web.AppRunner(application(session), handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, address, port)
    try:
        await site.start()
    except OSError as error:
        await runner.cleanup()
        raise PluginError(
            f"cannot listen on {address}:{port}: {error}; pick another --port"
        ) from None
    shown = f"[{address}]" if ":" in address else address
    print(f"dashboard on http://{shown}:{port}/ (read-only, as you); Ctrl-C stops it",
          flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
