"""What every long-running `mltrl` command does: log, stop on a signal, and say plainly
when a port it was asked to listen on is taken."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable

SHUTDOWN_SECONDS = 4.5
"""A clean stop must finish within this; past it the process exits anyway, so a pod
always ends inside the chart's terminationGracePeriodSeconds (docs/operations.md)."""

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    if not verbose:
        # kopf narrates every watch event at INFO; our own events say what matters.
        logging.getLogger("kopf").setLevel(logging.WARNING)
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def _exit_now(code: int, why: str) -> None:
    with contextlib.suppress(Exception):
        print(f"mltrl: {why}", file=sys.stderr, flush=True)
        logging.shutdown()
    os._exit(code)


def stop_on_signals(
    stop: asyncio.Event, *, grace: float = SHUTDOWN_SECONDS
) -> Callable[[], None]:
    """SIGINT or SIGTERM sets `stop`; the process must then be gone within `grace` seconds;
    a second signal exits at once. Returns a function that puts these handlers back, for
    after a library (kopf) has installed its own over them.

    The handlers are installed even if the signal was inherited as ignored: a shell without
    job control starts background commands with SIGINT ignored, which made Ctrl-C-style
    tests pass alone and fail under `make test &` (Go programs such as kubectl do the same)."""
    loop = asyncio.get_running_loop()

    def received(sig: signal.Signals) -> None:
        if stop.is_set():
            _exit_now(128 + sig, f"second {sig.name}: exiting now")
        logging.getLogger("mltrl").info("%s received: stopping", sig.name)
        stop.set()
        loop.call_later(grace, _exit_now, 128 + sig,
                        f"did not stop within {grace:g}s of {sig.name}: exiting now")

    def install() -> None:
        for sig in STOP_SIGNALS:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, received, sig)

    install()
    return install


class PortInUse(RuntimeError):
    """A port given on the command line is taken; the message names the flag."""


PORT_FLAGS = {
    "port": "--port",
    "metrics_port": "--metrics-port",
    "alerts_port": "--alerts-port",
    "webhook_port": "--webhook-port",
}
HOST_OF = {"metrics_port": "metrics_host", "alerts_port": "alerts_host",
           "webhook_port": "webhook_host"}


def check_ports(args: argparse.Namespace) -> None:
    """Before anything starts: each port asked for can be listened on, or one line says
    which flag to change (a traceback from deep inside aiohttp said nothing of the sort)."""
    for attribute, flag in PORT_FLAGS.items():
        port = getattr(args, attribute, None)
        if not port:  # None: off; 0: any free port
            continue
        host = getattr(args, HOST_OF.get(attribute, ""), None) or "127.0.0.1"
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            # As aiohttp listens: a port left in TIME_WAIT by a stopped server is free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as error:
                reason = {
                    errno.EADDRINUSE: "is in use",
                    errno.EACCES: "needs privileges",
                    errno.EADDRNOTAVAIL: f"is not available on {host}",
                }.get(error.errno or 0, error.strerror or str(error))
                hint = " (make sandbox SANDBOX_PORT=N)" if flag == "--port" else ""
                raise PortInUse(
                    f"{flag} {port}: the port {reason}; choose another with {flag}{hint}"
                ) from None
