"""`mltrl waivers [NS/]TECH [--at TIME]`: the technology's waivers and whether each counts,
now or at another instant ("will it still count on Tuesday?"). The answer is
`domain.waivers.waiver_applies`, the decision the webhooks and the operator make."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from mltrl_operator.api.waiver import MLTRLWaiverSpec
from mltrl_operator.cli.audit import target
from mltrl_operator.domain.durations import parse_instant
from mltrl_operator.domain.owners import stored_owners
from mltrl_operator.domain.policy import matching_policies
from mltrl_operator.domain.waivers import WaiverDecision, waiver_applies, waiver_policy
from mltrl_operator.k8s.client import KubeClient
from mltrl_operator.k8s.connection import CredentialsError, load_connection
from mltrl_operator.k8s.errors import ApiError, NotFound
from mltrl_operator.k8s.lookups import NamespaceLabels, read_policies
from mltrl_operator.k8s.resources import TECHNOLOGIES, WAIVERS

Body = dict[str, Any]


def decisions(
    waivers: list[Body], technology: Body | None, name: str, policy: Any, at: datetime
) -> list[tuple[str, WaiverDecision]]:
    owners = stored_owners(technology)  # every owner since its level (issue 11)
    found = []
    for body in waivers:
        metadata = body.get("metadata") or {}
        try:
            spec = MLTRLWaiverSpec.model_validate({"expiresAt": "", **(body.get("spec") or {})})
            created = parse_instant(str(metadata.get("creationTimestamp")))
        except ValueError as error:
            found.append((str(metadata.get("name")), WaiverDecision(False, f"unreadable: {error}")))
            continue
        if spec.technology != name:
            continue
        if technology is None:
            found.append((str(metadata.get("name")),
                          WaiverDecision(False, f"no MLTechnology {name}")))
            continue
        found.append((str(metadata.get("name")), waiver_applies(
            spec, technology=name, created_at=created, policy=policy, owners=owners, now=at,
        )))
    return found


def show(rows: list[tuple[str, WaiverDecision]], out: TextIO) -> None:
    width = max([len("NAME"), *(len(name) for name, _ in rows)])
    print(f"{'NAME':<{width}}  COUNTS  WHY", file=out)
    for name, decision in rows:
        print(f"{name:<{width}}  {'yes' if decision.applies else 'no':<6}  {decision.reason}",
              file=out)


async def waivers(args: argparse.Namespace) -> int:
    try:
        connection = load_connection(args.kubeconfig, args.context)
        namespace, name = target(args.technology, args.namespace or connection.default_namespace)
        at = parse_instant(args.at) if args.at else datetime.now(UTC).replace(microsecond=0)
    except (CredentialsError, ValueError, OSError) as error:
        print(f"mltrl waivers: {error}", file=sys.stderr)
        return 2
    try:
        async with KubeClient(connection) as client:
            try:
                technology: Body | None = await client.get(TECHNOLOGIES, namespace, name)
            except NotFound:
                technology = None
            bodies = await client.list(WAIVERS, namespace)
            labels = await NamespaceLabels(client, ttl=0).of(namespace)
            policy = waiver_policy(matching_policies(await read_policies(client), labels))
    except (ApiError, OSError) as error:
        print(f"mltrl waivers: cannot read {namespace}/{name}: {error}", file=sys.stderr)
        return 2
    rows = decisions(bodies, technology, name, policy, at)
    if not rows:
        print(f"no waivers for {namespace}/{name}", file=sys.stdout)
        return 0
    show(rows, sys.stdout)
    return 0
