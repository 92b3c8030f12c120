"""Subcommands other distributions add to `mltrl` (the entry point group `mltrl.commands`).

The sandbox (`mltrl sandbox`, distribution mltrl-sandbox) is one: the operator never
imports it, and its image does not contain it, so the operator only finds it here, by
name, when it is installed beside it.
"""

from __future__ import annotations

import argparse
from collections.abc import Coroutine
from importlib.metadata import entry_points
from typing import Any, Protocol

GROUP = "mltrl.commands"


class PluginCommand(Protocol):
    """What an entry point in `mltrl.commands` names."""

    help: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> Coroutine[Any, Any, int]: ...


def plugin_commands() -> dict[str, PluginCommand]:
    """Installed plugin commands by name; the built-in ones (run, crds) cannot be replaced."""
    found: dict[str, PluginCommand] = {}
    for point in entry_points(group=GROUP):
        if point.name not in ("run", "crds"):
            found[point.name] = point.load()
    return found
