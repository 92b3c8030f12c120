"""`mltrl` finds `mltrl sandbox` only through the `mltrl.commands` entry points: without
the sandbox's distribution it offers `run` and `crds` and says where `sandbox` comes from."""

from __future__ import annotations

import pytest

from mltrl_operator.cli import main, parser, plugins


def test_without_the_sandbox_installed_there_is_no_sandbox_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(plugins, "entry_points", lambda group: [])
    assert "{run,audit,waivers,crds}" in parser().format_usage()
    with pytest.raises(SystemExit) as exited:
        main(["sandbox"])
    assert exited.value.code == 2
    assert "invalid choice: 'sandbox'" in capsys.readouterr().err
    assert "mltrl-sandbox package" in parser().format_help()


def test_the_installed_sandbox_adds_its_command() -> None:
    commands = plugins.plugin_commands()
    assert list(commands) == ["sandbox"]
    assert "sandbox" in parser().format_usage()
