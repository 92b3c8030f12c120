"""TRL cards for fraud-detection at levels 6 and 7, and the maturity report over the
examples plus a few generated teams, as bob and carol read them."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

from .conftest import CI, PluginSandbox, policy, reconciled, technology

CARD_FIELDS = (
    "Name", "ID", "This card's level", "Current level", "Cards of earlier levels", "Owner",
    "Reviewers (R&D and product)", "Requirements", "Verification and validation (V&V)", "Code",
    "Ethics checklist status", "Coupled components", "Top-level requirements",
    "Model and algorithm details", "Intended use", "Unacceptable uses",
    "Testing status (evidence at this level's review)", "Datasets with versions",
    "Caveats and known edge cases", "Key assumptions", "Accomplished, and by whom",
)


class Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.links: list[str] = []

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.links += [v or "" for k, v in attrs if k == "href"]


def parsed(html: str) -> Text:
    parser = Text()
    parser.feed(html)
    return parser


def test_fraud_detection_cards_at_6_and_7(fraud_detection_at_7: PluginSandbox) -> None:
    sandbox = fraud_detection_at_7
    ns = ("-n", "payments")
    at_7 = sandbox.plugin("bob", "card", "fraud-detection", "-o", "md", *ns).stdout
    assert at_7.startswith("# TRL card: fraud-detection at level 7 (Integrations)\n")
    for label in CARD_FIELDS:
        assert f"**{label}:**" in at_7, label
    assert "**Cards of earlier levels:** [level 6](fraud-detection-level-6.md)" in at_7
    assert "  - check integration-tests: passed (https://ci.example.com/payments/" \
        "fraud-detection/runs/812)" in at_7
    assert "  - metric auc: = 0.94" in at_7
    assert "  - bob (qa)\n  - carol (product-owner)" in at_7
    assert "  - transactions 2026-10" in at_7
    assert "**Key assumptions:** _not recorded_" in at_7
    assert "## Gaps\n\n" in at_7 and "- Testing and data: Key assumptions" in at_7
    assert "**Learned:** Feature freshness matters more than model size" in at_7
    assert "- Stage debrief: Punted or de-scoped" in at_7
    assert "- Stage debrief: Learned" not in at_7
    assert "promotion from level 6" in at_7 and "by review fraud-detection-to-7" in at_7

    at_6 = sandbox.plugin("carol", "card", "fraud-detection", "--level", "6", "-o", "md",
                          *ns).stdout
    assert at_6.startswith("# TRL card: fraud-detection at level 6 (Application Development)")
    assert "**Current level:** level 7 (Integrations)" in at_6
    assert "**Cards of earlier levels:** none (this is the first level reached)" in at_6
    assert "**Testing status (evidence at this level's review):** _not recorded_" in at_6
    assert "entry at" in at_6

    html_7 = sandbox.plugin("bob", "card", "fraud-detection", "-o", "html", *ns).stdout
    page = parsed(html_7)
    text = " ".join(page.text)
    assert html_7.startswith("<!doctype html>")
    assert "TRL card: fraud-detection at level 7 (Integrations)" in text
    assert "fraud-detection-level-6.html" in page.links
    assert "https://git.example.com/payments/fraud-detection" in page.links
    assert "not recorded" in text
    html_6 = sandbox.plugin("bob", "card", "fraud-detection", "--level", "6", "-o", "html",
                            *ns).stdout
    assert "TRL card: fraud-detection at level 6" in " ".join(parsed(html_6).text)
    as_json = sandbox.plugin_json("bob", "card", "fraud-detection", *ns)
    assert as_json["levels_reached"] == [6, 7] and as_json["level"] == 7
    never = sandbox.plugin("bob", "card", "fraud-detection", "--level", "3", *ns, check=False)
    assert never.returncode == 1
    assert "fraud-detection never reached level 3; it has cards for levels 6, 7 " \
        "(in namespace \"payments\")" in never.stderr


FULL: dict[str, Any] = {
    "model": {"version": "3.1.0", "storageUri": "s3://models/ranker/3.1.0", "format": "onnx"},
    "card": {"datasets": [{"name": "clicks", "version": "2026-09"}],
             "code": "https://git.example.com/search/ranker"},
    "monitoring": {"rules": [{"alertName": "RankerStale", "action": "retrain"},
                             {"alertName": "RankerErrors", "action": "rollback"}]},
    "retraining": {"jobTemplate": {"template": {"spec": {
        "restartPolicy": "Never",
        "containers": [{"name": "train", "image": "registry.example.com/ranker-train:3"}]}}}},
}


def promote(sandbox: PluginSandbox, namespace: str, name: str, second: str, uri: bool) -> None:
    ns = ("-n", namespace)
    review = sandbox.plugin_json("alice", "review", "new", name, *ns)["review"]["metadata"]["name"]
    link = ("--uri", f"https://ci.example.com/{name}/9") if uri else ()
    sandbox.plugin("alice", "evidence", review, "unit-tests", "--passed", *link, *ns)
    sandbox.plugin("alice", "evidence", review, "accuracy", "--value", "0.9", *ns)
    sandbox.plugin("bob", "approve", review, "--role", "qa", *ns)
    sandbox.plugin(second, "approve", review, "--role", "product-owner", *ns)
    reconciled(sandbox, name, namespace, 5)


def verdict(report: dict[str, Any], team: str) -> dict[str, Any]:
    found: dict[str, Any] = next(t for t in report["teams"] if t["subject"] == team)
    return found


def test_report_over_the_examples_and_generated_teams(
    fraud_detection_at_7: PluginSandbox, namespace: str
) -> None:
    sandbox = fraud_detection_at_7
    automation, starter = f"automation-{namespace}", f"starter-{namespace}"
    sandbox.apply([
        policy(namespace),
        technology(namespace, "ranker", team=automation, **FULL),
        technology(namespace, "tagger", team=starter),
        technology(namespace, "sketch", team=starter, entryLevel=1),
    ])
    reconciled(sandbox, "ranker", namespace, 4)
    reconciled(sandbox, "tagger", namespace, 4)
    promote(sandbox, namespace, "ranker", CI, uri=True)   # released by a CI identity
    promote(sandbox, namespace, "tagger", "carol", uri=False)

    report = sandbox.plugin_json("bob", "report", "-A")
    top = verdict(report, automation)
    assert top["name"] == "4 Full MLOps automated operations", top
    assert top["missing_for_next"] == []
    low = verdict(report, starter)
    assert low["name"] == "1 DevOps but no MLOps"
    assert low["missing_for_next"][0] == ("models version controlled: no technology names a "
                                          "model artifact (spec.model)")
    assert verdict(report, "payments-ml")["name"] == "2 Automated training"
    research = verdict(report, "research-bio")
    assert research["name"] == "0 No MLOps"
    assert research["signals"][0]["met"] is False
    organisation = report["organisation"]
    # Every namespace with technologies has a policy (since issue 11 the examples' research
    # policy covers default, binding research-lead): formalised, so Widespread; Mature
    # still needs every team to release through CI (the starter team does not).
    assert organisation["name"] == "Widespread"
    assert not any("namespaces covered by an MLTRLPolicy" in m
                   for m in organisation["missing_for_next"]), organisation["missing_for_next"]
    assert any("every team releases through CI" in m
               for m in organisation["missing_for_next"]), organisation["missing_for_next"]
    assert report["unobservable"]

    table = sandbox.plugin("bob", "report", "-A").stdout
    assert table.startswith("Organisation: ML capacity stage Widespread")
    # carol (mltrl-reviewer only) may not read namespaces: the report says it cannot tell
    # which policies govern them, and does not count them formalised
    blind = sandbox.plugin("carol", "report", "-A").stdout
    assert blind.startswith("Organisation: ML capacity stage Spreading")
    assert "cannot tell" in blind
    assert f"{automation}" in table and "4 Full MLOps automated operations" in table
    markdown = sandbox.plugin("carol", "report", "-A", "-o", "md").stdout
    assert markdown.startswith("# ML maturity report (all namespaces, by team)")
    assert f"## MLOps maturity: {starter}: 1 DevOps but no MLOps" in markdown
    assert "| [2 Automated training] models version controlled | no |" in markdown
    assert "## What a cluster cannot observe" in markdown
    html = sandbox.plugin("carol", "report", "-A", "-o", "html").stdout
    assert "ML capacity stage: organisation: " in " ".join(parsed(html).text)

    by_namespace = sandbox.plugin_json("bob", "report", "-n", namespace, "--by", "namespace")
    assert [t["subject"] for t in by_namespace["teams"]] == [namespace]
    assert by_namespace["scope"] == namespace
