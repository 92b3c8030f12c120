"""`mltrl`: run the operator, start the sandbox, or regenerate the CRDs."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from mltrl_operator.alerts.config import ConfigError
from mltrl_operator.api import crdgen
from mltrl_operator.cli.options import parser
from mltrl_operator.cli.process import configure_logging
from mltrl_operator.webhooks.config import WebhookConfigError

__all__ = ["main", "parser"]


def _crds(args: argparse.Namespace) -> int:
    for path in crdgen.write(Path(args.directory)):
        print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging(args.verbose)
    if args.command == "crds":
        return _crds(args)
    # Imported here: `mltrl run` in a cluster never needs the sandbox's modules.
    if args.command == "run":
        from mltrl_operator.cli.run import run as runner
    elif args.command == "audit":
        from mltrl_operator.cli.audit import audit as runner
    elif args.command == "waivers":
        from mltrl_operator.cli.waivers import waivers as runner
    else:
        from mltrl_operator.cli.sandbox import sandbox as runner
    try:
        return asyncio.run(runner(args))
    except (ConfigError, WebhookConfigError) as error:
        print(f"mltrl {args.command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130

