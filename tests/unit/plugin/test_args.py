"""kubectl's flags before or after the command; documents only where they make sense."""

from __future__ import annotations

import pytest

from mltrl_operator.cli.kubectl_mltrl import parser


def test_flags_before_and_after_the_command_mean_the_same() -> None:
    before = parser().parse_args(["--context", "bob", "-n", "payments", "ls"])
    after = parser().parse_args(["ls", "--context", "bob", "-n", "payments"])
    for args in (before, after):
        assert (args.context, args.namespace, args.all_namespaces) == ("bob", "payments", False)
    assert parser().parse_args(["ls", "-A"]).all_namespaces is True


def test_documents_only_for_cards_and_reports(capsys: pytest.CaptureFixture[str]) -> None:
    assert parser().parse_args(["card", "fraud", "-o", "html"]).output == "html"
    assert parser().parse_args(["report", "-o", "md"]).output == "md"
    with pytest.raises(SystemExit):
        parser().parse_args(["ls", "-o", "md"])
    assert "invalid choice: 'md'" in capsys.readouterr().err


def test_a_rejection_needs_a_comment_and_an_approval_a_role() -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["reject", "r"])
    with pytest.raises(SystemExit):
        parser().parse_args(["approve", "r"])
    args = parser().parse_args(["review", "new", "fraud", "--to", "8", "--dry-run"])
    assert (args.command, args.review_command, args.to_level, args.dry_run) == (
        "review", "new", 8, True)
