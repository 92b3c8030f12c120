"""`kubectl mltrl`: the MLTRL operator for people.

Installed as the `kubectl-mltrl` console script, so `kubectl mltrl ...` works once it is on
PATH. It talks to the cluster as the user (their kubeconfig, context and identity) through
the operator's own credentials code, and every decision it shows (what a review still
needs, a card's gaps, a team's maturity) comes from the operator's domain functions."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from mltrl_operator.api.review import Decision
from mltrl_operator.cli.kubectl_mltrl import render, reviewing, views
from mltrl_operator.cli.kubectl_mltrl.session import PluginError, Session, meta
from mltrl_operator.k8s.errors import ApiError

__all__ = ["main", "parser"]

STRUCTURED = ("json", "yaml")
DOCUMENTS = ("md", "html")


def _common(defaults: bool) -> argparse.ArgumentParser:
    """kubectl's flags, accepted before and after the command (defaults set only once)."""
    common = argparse.ArgumentParser(add_help=False)
    default = (lambda value: value) if defaults else (lambda value: argparse.SUPPRESS)
    common.add_argument("--kubeconfig", default=default(None),
                        help="path to the kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    common.add_argument("--context", default=default(None), help="the kubeconfig context to use")
    common.add_argument("-n", "--namespace", default=default(None),
                        help="the namespace (default: the context's)")
    common.add_argument("-A", "--all-namespaces", action="store_true", default=default(False),
                        help="every namespace (ls, report, dashboard)")
    return common


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="kubectl mltrl", parents=[_common(True)],
        description="MLTRL for people: portfolio, reviews, TRL cards, maturity reports.",
    )
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = _common(False)

    def command(name: str, help_: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_, description=help_, parents=[common])

    def output(p: argparse.ArgumentParser, documents: bool = False) -> None:
        choices = ["table", *STRUCTURED, *(DOCUMENTS if documents else ())]
        p.add_argument("-o", "--output", choices=choices, default="table")

    ls = command("ls", "the portfolio: every technology's level, serving and next step")
    ls.add_argument("--sort-by", default="namespace",
                    help="namespace, name, level, phase, needs, team, owner or age")
    output(ls)

    status = command("status", "one technology in words: level, serving, next level, reviews")
    status.add_argument("technology")
    output(status)

    review = command("review", "level reviews")
    review_sub = review.add_subparsers(dest="review_command", required=True, metavar="ACTION")
    new = review_sub.add_parser("new", parents=[common],
                                help="open a review of TECH to the next level (or --to N)")
    new.add_argument("technology")
    new.add_argument("--to", type=int, dest="to_level")
    new.add_argument("--type", dest="review_type",
                     choices=("entry", "switchback", "change", "recertify"), default="entry",
                     help="entry: a promotion (or with --to below the level, a switchback); "
                     "change: approve the pending model at the current level (with --to "
                     "below the level: a switchback); recertify: renew the current level")
    new.add_argument("--reason", help="why (required for a switchback)")
    new.add_argument("--switchback", choices=("discovery", "embedded", "review"),
                     default="review", help="the kind of switchback (with --to below the level)")
    new.add_argument("--name", help="the review's name (default TECH-to-N)")
    new.add_argument("--dry-run", action="store_true", help="print the review, create nothing")
    output(new)

    ev = command("evidence", "record one piece of evidence on a review")
    ev.add_argument("review")
    ev.add_argument("name", help="the evidence name the policy asks for")
    result = ev.add_mutually_exclusive_group()
    result.add_argument("--passed", action="store_true", default=None)
    result.add_argument("--failed", action="store_true", default=None)
    ev.add_argument("--value", type=float)
    ev.add_argument("--uri")
    ev.add_argument("--kind", choices=("check", "metric", "document"),
                    help="only when the policy does not name this evidence")
    ev.add_argument("--description")
    output(ev)

    debrief = command("debrief", "answer the stage debrief's four questions on a review")
    debrief.add_argument("review")
    debrief.add_argument("--accomplished", help="what was accomplished, and by whom")
    debrief.add_argument("--punted", help="what was punted or de-scoped")
    debrief.add_argument("--learned", help="what was learned")
    debrief.add_argument("--technical-debt", dest="technicalDebt",
                         help="what technical debt was gained or mitigated")
    output(debrief)

    for name, help_ in (("approve", "approve a review as yourself, in a role"),
                        ("reject", "reject a review as yourself, saying why")):
        p = command(name, help_)
        p.add_argument("review")
        p.add_argument("--role", required=name == "approve",
                       help="your role at this review (e.g. qa, product-owner, sre)")
        p.add_argument("--comment", required=name == "reject")
        output(p)

    history = command("history", "every level change of a technology")
    history.add_argument("technology")
    output(history)

    card = command("card", "the TRL card of a technology, one version per level reached")
    card.add_argument("technology")
    card.add_argument("--level", type=int)
    output(card, documents=True)

    report = command("report", "MLOps maturity per team and the organisation's ML capacity")
    report.add_argument("--by", choices=("team", "namespace"), default="team")
    output(report, documents=True)

    dash = command("dashboard", "a read-only web dashboard on loopback, as you")
    dash.add_argument("--port", type=int, default=8765)
    dash.add_argument("--address", default="127.0.0.1",
                      help="loopback only: 127.0.0.1 or ::1")
    return top


Handler = Callable[[Session, argparse.Namespace], Awaitable[str]]


def _warn(view: dict[str, Any]) -> None:
    if view.get("warning"):
        print(f"warning: {view['warning']}; showing what the operator published instead",
              file=sys.stderr)


async def _ls(session: Session, args: argparse.Namespace) -> str:
    view = await views.portfolio(session, views.now_utc(), args.sort_by)
    _warn(view)
    if args.output in STRUCTURED:
        return render.structured(view, args.output)
    return render.portfolio_table(view, session.all_namespaces)


async def _status(session: Session, args: argparse.Namespace) -> str:
    view = await views.technology_status(session, args.technology, views.now_utc())
    _warn(view)
    if args.output in STRUCTURED:
        return render.structured(view, args.output)
    return render.status_text(view)


async def _review_new(session: Session, args: argparse.Namespace) -> str:
    body, needs = await reviewing.new_review(
        session, args.technology, args.to_level, args.review_type, args.reason, args.name,
        args.dry_run, args.switchback,
    )
    if args.output in STRUCTURED:
        return render.structured({"review": body, "needs": needs}, args.output)
    name = meta(body).get("name")
    verb = "would be created (dry run)" if args.dry_run else "created"
    head = (f'levelreview "{name}" {verb} in namespace "{session.namespace}": '
            f"{body['spec']['technology']} {body['spec']['fromLevel']} -> "
            f"{body['spec']['toLevel']}")
    return "\n".join([head, "It needs:", *(f"  - {n}" for n in needs)])


async def _evidence(session: Session, args: argparse.Namespace) -> str:
    passed = True if args.passed else False if args.failed else None
    body = await reviewing.evidence(
        session, args.review, args.name, passed=passed, value=args.value, uri=args.uri,
        kind=args.kind, description=args.description,
    )
    if args.output in STRUCTURED:
        return render.structured(body, args.output)
    return f'evidence "{args.name}" recorded on levelreview "{args.review}"'


async def _debrief(session: Session, args: argparse.Namespace) -> str:
    answers = {key: getattr(args, key) for key in reviewing.DEBRIEF_FIELDS}
    body = await reviewing.debrief(session, args.review, answers)
    if args.output in STRUCTURED:
        return render.structured(body, args.output)
    return f'debrief recorded on levelreview "{args.review}"'


def _decider(decision: Decision) -> Handler:
    async def handler(session: Session, args: argparse.Namespace) -> str:
        body = await reviewing.decide(session, args.review, decision=decision,
                                      role=args.role or "reviewer", comment=args.comment)
        if args.output in STRUCTURED:
            return render.structured(body, args.output)
        verb = "approved" if decision is Decision.APPROVE else "rejected"
        return f'levelreview "{args.review}" {verb} as {args.role or "reviewer"}'
    return handler


async def _history(session: Session, args: argparse.Namespace) -> str:
    view = await views.history(session, args.technology)
    if view.get("note"):
        print(f"note: {view['note']}", file=sys.stderr)
    if view.get("verified") is False:
        print(f"warning: the audit record of {session.namespace}/{args.technology} does not "
              "verify: it was edited or cut after it was recorded (mltrl audit verify says "
              "where)", file=sys.stderr)
    if args.output in STRUCTURED:
        return render.structured(view, args.output)
    return render.history_table(view)


async def _card(session: Session, args: argparse.Namespace) -> str:
    card = await views.card(session, args.technology, args.level)
    if args.output in STRUCTURED:
        return render.structured(views.card_view(card), args.output)
    if args.output == "html":
        return render.card_html(card)
    return render.card_markdown(card)


async def _report(session: Session, args: argparse.Namespace) -> str:
    view = await views.report(session, args.by)
    _warn(view)
    if args.output in STRUCTURED:
        return render.structured(view, args.output)
    if args.output == "md":
        return render.report_markdown(view)
    if args.output == "html":
        return render.report_html(view)
    return render.report_table(view)


async def _dashboard(session: Session, args: argparse.Namespace) -> str:
    from mltrl_operator.cli.kubectl_mltrl.dashboard import serve

    await serve(session, args.address, args.port)
    return ""


HANDLERS: dict[str, Handler] = {
    "ls": _ls,
    "status": _status,
    "review": _review_new,
    "evidence": _evidence,
    "debrief": _debrief,
    "approve": _decider(Decision.APPROVE),
    "reject": _decider(Decision.REJECT),
    "history": _history,
    "card": _card,
    "report": _report,
    "dashboard": _dashboard,
}


async def _run(args: argparse.Namespace) -> str:
    session = Session.open(args.kubeconfig, args.context, args.namespace, args.all_namespaces)
    try:
        return await HANDLERS[args.command](session, args)
    finally:
        await session.close()


def main(argv: list[str] | None = None) -> int:
    args: Any = parser().parse_args(argv)
    try:
        text = asyncio.run(_run(args))
    except PluginError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except ApiError as error:
        print(f"error: the API server refused: {error.body.get('message') or error}",
              file=sys.stderr)
        return 1
    except OSError as error:
        print(f"error: cannot reach the API server: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    if text:
        print(text.rstrip("\n"))
    return 0
