"""A namespace user usually may not read the cluster-scoped MLTRLPolicies nor namespaces:
the plugin then shows what the operator published (status.nextLevel, a review's
status.unmet), computed by the same functions, and says so."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import pytest

from mltrl_operator.cli.kubectl_mltrl import views
from mltrl_operator.cli.kubectl_mltrl.reviewing import evidence, new_review
from mltrl_operator.cli.kubectl_mltrl.session import PluginError, Session
from mltrl_operator.k8s.client import KubeClient
from mltrl_operator.k8s.errors import ApiError, NotFound
from mltrl_operator.k8s.resources import ResourceRef

NOW = datetime(2026, 11, 22, 13, 0, tzinfo=UTC)
FORBIDDEN = {"mltrlpolicies", "namespaces"}

TECH = {
    "metadata": {"name": "fraud", "namespace": "payments", "uid": "u"},
    "spec": {"owner": "alice", "team": "payments-ml", "entryLevel": 6},
    "status": {
        "level": 6,
        "history": [{"to": 6, "kind": "entry", "at": "2026-11-22T12:00:00Z"}],
        "nextLevel": {"level": 7, "name": "Integrations",
                      "requirements": ["check 'integration-tests' has passed",
                                       "needs 2 approvals from distinct reviewers"]},
    },
}
REVIEW = {
    "metadata": {"name": "fraud-to-7", "namespace": "payments"},
    "spec": {"technology": "fraud", "fromLevel": 6, "toLevel": 7},
    "status": {"phase": "Pending", "unmet": ["missing check 'integration-tests'"]},
}


class NamespaceUserClient:
    """Reads technologies and reviews; refused the policies and namespaces."""

    def __init__(self, *objects: dict[str, Any]) -> None:
        self.objects = {"mltechnologies": [o for o in objects if "owner" in o["spec"]],
                        "levelreviews": [o for o in objects if "technology" in o["spec"]]}
        self.created: list[dict[str, Any]] = []

    def _check(self, resource: ResourceRef) -> None:
        if resource.plural in FORBIDDEN:
            raise ApiError(403, {"message": f'{resource.plural} is forbidden: User "bob" '
                                            "cannot list resource", "reason": "Forbidden"})

    async def list(self, resource: ResourceRef, namespace: str | None = None,
                   **_: Any) -> list[dict[str, Any]]:
        self._check(resource)
        return list(self.objects.get(resource.plural, []))

    async def get(self, resource: ResourceRef, namespace: str | None, name: str
                  ) -> dict[str, Any]:
        self._check(resource)
        for item in self.objects.get(resource.plural, []):
            if item["metadata"]["name"] == name:
                return item
        raise NotFound(404, {"message": "not found"})

    async def request(self, method: str, path: str, *, body: Any = None, **_: Any
                      ) -> dict[str, Any]:
        assert method in ("POST", "PATCH")
        self.created.append(body)
        return {"written": body}


def session(*objects: dict[str, Any]) -> Session:
    return Session(cast(KubeClient, NamespaceUserClient(*objects)), "payments")


async def test_ls_shows_the_operators_next_level_and_warns() -> None:
    view = await views.portfolio(session(TECH), NOW)
    row = view["items"][0]
    assert row["needs"] == 2 and row["needsList"][0] == "check 'integration-tests' has passed"
    assert view["needsFrom"] == "operator status"
    assert "cannot read the MLTRLPolicies" in view["warning"]


async def test_status_shows_an_open_reviews_published_unmet() -> None:
    view = await views.technology_status(session(TECH, REVIEW), "fraud", NOW)
    assert view["next"]["review"] == "fraud-to-7"
    assert view["next"]["unmet"] == ["missing check 'integration-tests'"]


async def test_a_review_can_still_be_opened_and_says_what_the_operator_asks() -> None:
    plain = session(TECH)
    body, needs = await new_review(plain, "fraud", None, "entry", None, None, dry_run=False)
    body = body["written"]
    assert body["spec"] == {"technology": "fraud", "fromLevel": 6, "toLevel": 7,
                            "evidence": [], "approvals": []}
    assert needs == ["check 'integration-tests' has passed",
                     "needs 2 approvals from distinct reviewers"]


async def test_evidence_of_unknown_kind_asks_for_kind() -> None:
    with pytest.raises(PluginError, match="give --kind check, metric or document"):
        await evidence(session(TECH, REVIEW), "fraud-to-7", "integration-tests", passed=True,
                       value=None, uri=None, kind=None, description=None)


async def test_the_report_says_it_cannot_tell_about_policies() -> None:
    view = await views.report(session(TECH), "team")
    observed = [s["observed"] for s in view["organisation"]["signals"]]
    assert any("cannot tell: the MLTRLPolicies or namespaces are not readable" in o
               for o in observed)


async def test_the_skeletons_hint_gives_the_kind_when_the_policy_is_unreadable() -> None:
    hinted = {**REVIEW, "metadata": {**REVIEW["metadata"], "annotations": {
        "mltrl.dev/required-evidence": '[{"name":"auc","kind":"metric"}]'}}}
    written = await evidence(session(TECH, hinted), "fraud-to-7", "auc", passed=None,
                             value=0.93, uri=None, kind=None, description=None)
    ops = written["written"]
    assert ops[-1] == {"op": "add", "path": "/spec/evidence",
                       "value": [{"name": "auc", "kind": "metric", "value": 0.93}]}
