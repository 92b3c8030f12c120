"""Shared helpers for the delivery tests: repository paths, the generator scripts under
tools/, optional dependencies that must be there in CI, and Argo CD's Lua runner."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from tests.ci import unavailable

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "mltrl-operator"
HEALTH = REPO / "manifests" / "argocd" / "health"


def require(module: str) -> ModuleType:
    """Import a test dependency: a missing one skips locally and fails in CI."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        unavailable(f"{module} is not installed ({error}); see tests/delivery/README.md")


@cache
def tool(name: str) -> ModuleType:
    """A script under tools/, imported as a module."""
    spec = importlib.util.spec_from_file_location(f"tools_{name}", REPO / "tools" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class _PlainLoader(yaml.SafeLoader):
    """YAML as Argo CD hands it to Lua (through JSON): timestamps stay strings."""


_PlainLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_yaml(path: Path) -> Any:
    return yaml.load(path.read_text(), Loader=_PlainLoader)  # a SafeLoader subclass


def run_health_check(script: str, obj: dict[str, Any]) -> dict[str, Any]:
    """Run a health.lua as Argo CD does: Lua 5.1, the object as the global `obj`, the
    chunk's return value is {status, message}; no io, os, package or debug library."""
    lua51 = require("lupa.lua51")
    runtime = lua51.LuaRuntime(register_eval=False, register_builtins=False)
    globals_ = runtime.globals()
    for name in ("io", "os", "package", "debug", "require", "module", "dofile", "loadfile",
                 "python"):
        globals_[name] = None
    assert runtime.eval("_VERSION") == "Lua 5.1"
    globals_.obj = runtime.table_from(obj, recursive=True)
    result = runtime.execute(script)
    assert result is not None, "a health check must return a table"
    return {str(key): value for key, value in result.items()}
