"""The suite refuses any cluster that is not obviously a throwaway one."""

from __future__ import annotations

import pytest

from e2e.cluster import refuse_unless_throwaway


@pytest.mark.parametrize("context", ["kind-mltrl-e2e", "k3d-ci"])
def test_throwaway_contexts_are_accepted(context: str) -> None:
    refuse_unless_throwaway(context)


@pytest.mark.parametrize("context", ["production", "gke_acme_europe-west1_main", ""])
def test_any_other_context_is_refused(context: str) -> None:
    with pytest.raises(SystemExit, match="refusing to run the e2e suite"):
        refuse_unless_throwaway(context)


def test_an_explicitly_allowed_context_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLTRL_E2E_ALLOWED_CONTEXT", "lab-cluster")
    refuse_unless_throwaway("lab-cluster")
