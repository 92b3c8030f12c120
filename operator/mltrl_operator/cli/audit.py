"""`mltrl audit verify|export [NS/]TECH`: read a technology's audit record, whether or not
the technology still exists.

verify: exit 0 when every entry matches its hash and follows the one before it, 1 when
something is wrong (each finding says which chunk and entry and what broke) or there is no
record, 2 when the cluster cannot be read.
export: the entries as JSON Lines on stdout, oldest first; problems go to stderr and make
the exit code 1, but every readable entry is still written.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

from mltrl_operator.domain.audit import Verification, verify
from mltrl_operator.k8s.audit_store import (
    StoredRecord,
    read_all_audit_records,
    read_audit_record,
)
from mltrl_operator.k8s.client import KubeClient
from mltrl_operator.k8s.connection import CredentialsError, load_connection
from mltrl_operator.k8s.errors import ApiError


def target(text: str, default_namespace: str) -> tuple[str, str]:
    """`NS/TECH` or `TECH` (in the kubeconfig context's namespace)."""
    namespace, _, name = text.rpartition("/")
    if not name or "/" in namespace:
        raise ValueError(f"{text!r}: expected [NAMESPACE/]TECHNOLOGY")
    return namespace or default_namespace, name


def check(record: StoredRecord, expect_head: str | None) -> Verification:
    verification = verify(
        record.chunks, namespace=record.namespace, technology=record.technology,
        expect_head=expect_head,
    )
    if record.parsed.unreadable:
        verification = Verification(
            record.parsed.unreadable + verification.findings, verification.entries,
            verification.chunks, verification.head,
        )
    return verification


def report(record: StoredRecord, verification: Verification, out: TextIO) -> int:
    where = f"{record.namespace}/{record.technology}"
    if not record.bodies:
        print(f"no audit record for {where}", file=out)
        return 1
    print(
        f"audit record of {where}: {len(record.bodies)} chunk(s), {verification.entries} "
        f"entries, head {verification.head or '(none)'}",
        file=out,
    )
    if verification.intact:
        print("intact: every entry matches its hash and follows the entry before it", file=out)
        return 0
    print(f"TAMPERED: {len(verification.findings)} finding(s)", file=out)
    for finding in verification.findings:
        print(f"  {finding}", file=out)
    return 1


def export(record: StoredRecord, out: TextIO) -> None:
    for entry in record.entries:
        line = {"namespace": record.namespace, "technology": record.technology,
                **entry.to_wire()}
        out.write(json.dumps(line, sort_keys=False, ensure_ascii=False) + "\n")


async def audit(args: argparse.Namespace) -> int:
    if getattr(args, "all", False):
        return await verify_all(args)
    if not args.technology:
        print("mltrl audit: name a [NAMESPACE/]TECHNOLOGY (or --all to verify every record)",
              file=sys.stderr)
        return 2
    try:
        connection = load_connection(args.kubeconfig, args.context)
        namespace, name = target(args.technology, args.namespace or connection.default_namespace)
    except (CredentialsError, ValueError, OSError) as error:
        print(f"mltrl audit: {error}", file=sys.stderr)
        return 2
    try:
        async with KubeClient(connection) as client:
            record = await read_audit_record(client, namespace, name)
    except (ApiError, OSError) as error:
        print(f"mltrl audit: cannot read the audit record of {namespace}/{name}: {error}",
              file=sys.stderr)
        return 2
    verification = check(record, getattr(args, "expect_head", None))
    if args.action == "verify":
        return report(record, verification, sys.stdout)
    export(record, sys.stdout)
    if not record.bodies or not verification.intact:
        return report(record, verification, sys.stderr)
    return 0


async def verify_all(args: argparse.Namespace) -> int:
    """Every record in the cluster; exit 1 when any is not intact."""
    try:
        async with KubeClient(load_connection(args.kubeconfig, args.context)) as client:
            records = await read_all_audit_records(client)
    except (CredentialsError, ApiError, OSError) as error:
        print(f"mltrl audit: cannot read the audit records: {error}", file=sys.stderr)
        return 2
    worst = 0
    for record in records:
        worst = max(worst, report(record, check(record, None), sys.stdout))
    print(f"{len(records)} record(s), {'all intact' if not worst else 'NOT all intact'}")
    return worst
