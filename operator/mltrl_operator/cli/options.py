"""The `mltrl` command line."""

from __future__ import annotations

import argparse
from typing import Any

from mltrl_operator.alerts.config import (
    DEFAULT_INFERENCE_SERVICE_LABEL,
    DEFAULT_NAMESPACE_LABEL,
    DEFAULT_TECHNOLOGY_LABEL,
    MAX_BODY_BYTES,
    TOKEN_ENV,
)
from mltrl_operator.k8s.client import Etiquette

from .plugins import plugin_commands

DEFAULT_PEERING = "mltrl-operator"


def add_monitoring(command: argparse.ArgumentParser) -> None:
    group = command.add_argument_group("monitoring")
    group.add_argument(
        "--metrics-port", type=int, default=None,
        help="serve Prometheus metrics at :PORT/metrics (default: off)",
    )
    group.add_argument("--metrics-host", default="0.0.0.0", help="address for the metrics")
    group.add_argument(
        "--alerts-port", type=int, default=None,
        help="serve the Alertmanager webhook receiver at :PORT/alerts (default: off)",
    )
    group.add_argument("--alerts-host", default="0.0.0.0", help="address for the receiver")
    group.add_argument(
        "--alerts-token-file", default=None,
        help=f"file holding the bearer token Alertmanager must send (or ${TOKEN_ENV}); "
        "the receiver refuses to start without one",
    )
    group.add_argument("--alerts-tls-cert", default=None, help="serve the receiver over TLS")
    group.add_argument("--alerts-tls-key", default=None, help="the TLS certificate's key")
    group.add_argument(
        "--alerts-client-ca", default=None,
        help="require client certificates signed by this CA (mTLS)",
    )
    group.add_argument(
        "--alerts-technology-label", default=DEFAULT_TECHNOLOGY_LABEL,
        help="alert label naming the MLTechnology (default: %(default)s)",
    )
    group.add_argument(
        "--alerts-namespace-label", default=DEFAULT_NAMESPACE_LABEL,
        help="alert label naming its namespace (default: %(default)s)",
    )
    group.add_argument(
        "--alerts-inferenceservice-label", default=DEFAULT_INFERENCE_SERVICE_LABEL,
        help="alert label naming an InferenceService, whose mltrl.dev/technology label "
        "names the technology (default: %(default)s)",
    )
    group.add_argument(
        "--alerts-max-body-bytes", type=int, default=MAX_BODY_BYTES,
        help="larger notifications are refused with 413 (default: %(default)s)",
    )


def _add_webhooks(command: argparse.ArgumentParser) -> None:
    group = command.add_argument_group("admission webhooks")
    group.add_argument(
        "--webhook-port", type=int, default=None,
        help="serve the admission webhooks over HTTPS at :PORT (default: off)",
    )
    group.add_argument("--webhook-host", default="0.0.0.0", help="address for the webhooks")
    group.add_argument("--webhook-cert", default=None, help="the serving certificate (PEM)")
    group.add_argument("--webhook-key", default=None, help="the certificate's key (PEM)")
    add_trusted_group(group)


def add_trusted_group(group: Any) -> None:
    group.add_argument(
        "--webhook-trusted-group", action="append", default=[], metavar="GROUP",
        help="members may record LevelReview approvals in other reviewers' names, e.g. "
        "system:serviceaccounts:ci (repeatable; default: nobody)",
    )


class _ShowDefaults(argparse.HelpFormatter):
    """Every option's help ends with its default, unless it says it already or has none."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        unset = default is None or default is False or default == [] or default == ""
        if "%(default)" in text or "default:" in text or unset:
            return text
        if default is argparse.SUPPRESS or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


def _add_audit(commands: Any) -> None:
    audit = commands.add_parser(
        "audit", help="verify or export a technology's audit record (also once deleted)",
        formatter_class=_ShowDefaults,
    )
    actions = audit.add_subparsers(dest="action", required=True)
    for action, text in (
        ("verify", "check the record's hash chain; exit 1 naming each edited or missing entry"),
        ("export", "write the record's entries as JSON Lines, oldest first"),
    ):
        command = actions.add_parser(action, help=text, formatter_class=_ShowDefaults)
        command.add_argument("technology", metavar="[NAMESPACE/]TECHNOLOGY",
                             nargs="?" if action == "verify" else None)
        command.add_argument("-n", "--namespace", default=None,
                             help="the namespace when TECHNOLOGY has none (default: the "
                             "kubeconfig context's)")
        command.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG)")
        command.add_argument("--context", help="kubeconfig context to use")
        if action == "verify":
            command.add_argument("--all", action="store_true",
                                 help="verify every technology's record in the cluster")
            command.add_argument(
                "--expect-head", default=None, metavar="SHA256",
                help="the head hash noted at an earlier verify: catches a record rewritten "
                "or cut short since",
            )


def _add_waivers(commands: Any) -> None:
    waivers = commands.add_parser(
        "waivers", help="list a technology's waivers and whether each counts now (or --at)",
        formatter_class=_ShowDefaults,
    )
    waivers.add_argument("technology", metavar="[NAMESPACE/]TECHNOLOGY")
    waivers.add_argument("-n", "--namespace", default=None,
                         help="the namespace when TECHNOLOGY has none")
    waivers.add_argument("--at", default=None, metavar="TIME",
                         help="decide at this RFC 3339 time instead of now")
    waivers.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG)")
    waivers.add_argument("--context", help="kubeconfig context to use")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="mltrl", description="ML Technology Readiness Levels on Kubernetes.",
        epilog="`mltrl sandbox` comes with the mltrl-sandbox package (a test and demo "
        "harness, installed beside the operator in development).",
        formatter_class=_ShowDefaults,
    )
    root.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    commands = root.add_subparsers(dest="command", required=True)

    run = commands.add_parser(
        "run", help="run the operator against a cluster", formatter_class=_ShowDefaults
    )
    run.add_argument(
        "--kubeconfig",
        help="kubeconfig file, or files separated by ':' and merged as kubectl does "
        "(default: $KUBECONFIG, else the pod's service account, else ~/.kube/config)",
    )
    run.add_argument("--context", help="kubeconfig context to use (default: its current one)")
    api = run.add_argument_group("API etiquette")
    api.add_argument(
        "--qps", type=float, default=Etiquette.qps,
        help="client-side limit on the operator's own requests per second, sustained "
        "(0: no limit)",
    )
    api.add_argument(
        "--burst", type=int, default=Etiquette.burst,
        help="requests that may go at once after a quiet spell",
    )
    api.add_argument(
        "--request-timeout", type=float, default=Etiquette.timeout,
        help="seconds for one API request",
    )
    run.add_argument(
        "--liveness", default=None, help="serve kopf's liveness probe, e.g. http://0.0.0.0:8080/healthz"
    )
    run.add_argument(
        "--peering", nargs="?", const=DEFAULT_PEERING, default=None, metavar="NAME",
        help="high availability: take part in the kopf ClusterKopfPeering NAME (default "
        f"{DEFAULT_PEERING}); only the live replica of highest priority acts",
    )
    run.add_argument(
        "--priority", type=int, default=None,
        help="this replica's peering priority (default: random, so replicas differ)",
    )
    run.add_argument(
        "--clock-file", default=None, metavar="PATH",
        help="testing only: take the current time from PATH (one RFC 3339 time, read again "
        "when the file changes) instead of the system clock",
    )
    add_monitoring(run)
    _add_webhooks(run)

    for name, command in plugin_commands().items():
        command.add_arguments(
            commands.add_parser(name, help=command.help, formatter_class=_ShowDefaults)
        )

    _add_audit(commands)
    _add_waivers(commands)

    crds = commands.add_parser(
        "crds", help="regenerate the CRDs from the API models", formatter_class=_ShowDefaults
    )
    crds.add_argument("directory", nargs="?", default="crds")
    return root
