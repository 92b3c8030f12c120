"""`mltrl`: run the operator, regenerate the CRDs, or a plugin's command (`mltrl sandbox`)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from mltrl_operator.alerts.config import ConfigError
from mltrl_operator.api import crdgen
from mltrl_operator.cli.options import parser
from mltrl_operator.cli.plugins import plugin_commands
from mltrl_operator.cli.process import PortInUse, check_ports, configure_logging
from mltrl_operator.k8s.connection import CredentialsError
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
    try:
        check_ports(args)
        # Imported here: each command loads only the modules it needs.
        if args.command == "run":
            from mltrl_operator.cli.run import run

            return asyncio.run(run(args))
        if args.command == "audit":
            from mltrl_operator.cli.audit import audit

            return asyncio.run(audit(args))
        if args.command == "waivers":
            from mltrl_operator.cli.waivers import waivers

            return asyncio.run(waivers(args))
        return asyncio.run(plugin_commands()[args.command].run(args))
    except (ConfigError, WebhookConfigError, CredentialsError, PortInUse) as error:
        print(f"mltrl {args.command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130

