"""`mltrl sandbox`: the command's options, found by `mltrl` through the entry point group
`mltrl.commands` (see pyproject.toml beside this file). The launcher, which runs the
operator beside the API server, is imported only when the command runs."""

from __future__ import annotations

import argparse

from mltrl_operator.cli.options import add_monitoring, add_trusted_group
from mltrl_operator.webhooks.configuration import operator_username

from .inflight import add_inflight_options


class SandboxCommand:
    help = "start a local sandbox API server with the operator running in it"

    def add_arguments(self, sandbox: argparse.ArgumentParser) -> None:
        sandbox.add_argument("--port", type=int, default=8001, help="port to listen on (0: any)")
        sandbox.add_argument("--dir", default=".sandbox", help="where to write the kubeconfig")
        sandbox.add_argument(
            "--no-operator", action="store_true", help="start the API server only"
        )
        sandbox.add_argument(
            "--no-kserve", action="store_true",
            help="do not run the stand-in that marks InferenceServices Ready",
        )
        sandbox.add_argument(
            "--tls", action="store_true",
            help="serve HTTPS with a made-up CA (in the kubeconfig); implied by --user",
        )
        sandbox.add_argument(
            "--user", action="append", default=[], metavar="NAME[=GROUP,...]",
            help="a user kubectl can act as (--user NAME): adds a token user and a context "
            "of that name to the kubeconfig; repeatable. Service accounts "
            "(system:serviceaccount:NS:NAME) get their groups. Like in a cluster, a user "
            "may do nothing until a (Cluster)RoleBinding grants it",
        )
        sandbox.add_argument("--faults", default=None, metavar="RATE",
                             help="fail this share of API requests (0-1), as "
                             "mltrl_sandbox.faults")
        sandbox.add_argument("--latency", default=None, metavar="READ_MS,WRITE_MS",
                             help="delay API reads and writes by about this many milliseconds")
        sandbox.add_argument("--fault-seed", type=int, default=0, help="seed for --faults")
        add_inflight_options(sandbox)
        webhooks = sandbox.add_argument_group("admission webhooks")
        webhooks.add_argument(
            "--webhooks", action="store_true",
            help="run the admission webhooks in the operator (as its service account "
            f"{operator_username()}, with the chart's RBAC) and register them with the "
            "sandbox; implies --tls",
        )
        add_trusted_group(webhooks)
        add_monitoring(sandbox)

    async def run(self, args: argparse.Namespace) -> int:
        from .launcher import sandbox

        return await sandbox(args)


COMMAND = SandboxCommand()
