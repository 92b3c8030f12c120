"""The portfolio, a technology in words, and its history: tables by default, -o json|yaml
everywhere, read as the user."""

from __future__ import annotations

import yaml

from .conftest import PluginSandbox, policy, reconciled, technology


def test_ls_shows_the_portfolio_and_sorts(sandbox: PluginSandbox, namespace: str) -> None:
    sandbox.apply([policy(namespace), technology(namespace, "churn"),
                   technology(namespace, "ranker", entryLevel=2, owner="dana", team="search")])
    reconciled(sandbox, "churn", namespace, 4)
    reconciled(sandbox, "ranker", namespace, 2)
    table = sandbox.plugin("bob", "ls", "-n", namespace, "--sort-by", "level").stdout
    lines = table.splitlines()
    assert lines[0].split() == ["NAME", "LEVEL", "PHASE", "EFFECTIVE", "SERVING", "NEXT",
                                "NEEDS", "OWNER", "TEAM", "AT", "LEVEL"]
    assert lines[1].startswith("churn ") and "4 Proof of Concept (PoC) Development" in lines[1]
    assert lines[2].startswith("ranker ") and "Research" in lines[2]
    rows = sandbox.plugin_json("bob", "ls", "-n", namespace)["items"]
    churn = next(r for r in rows if r["name"] == "churn")
    # level 5 in this namespace: two evidence, two approvals, two roles
    assert (churn["nextLevel"], churn["needs"]) == (5, 5)
    assert churn["needsList"][0] == "missing check 'unit-tests'"
    assert (churn["owner"], churn["team"], churn["phase"]) == ("alice", "growth", "Prototyping")
    as_yaml = yaml.safe_load(sandbox.plugin("bob", "ls", "-n", namespace, "-o", "yaml").stdout)
    assert {r["name"] for r in as_yaml["items"]} == {"churn", "ranker"}
    everywhere = sandbox.plugin("bob", "ls", "-A").stdout
    assert everywhere.splitlines()[0].startswith("NAMESPACE")
    assert namespace in everywhere


def test_status_in_words(sandbox: PluginSandbox, namespace: str) -> None:
    sandbox.apply([policy(namespace), technology(namespace, "churn")])
    reconciled(sandbox, "churn", namespace, 4)
    text = sandbox.plugin("bob", "status", "churn", "-n", namespace).stdout
    assert f"churn (namespace {namespace}, owner alice, team growth)" in text
    assert "Level:    4 Proof of Concept (PoC) Development (Prototyping)" in text
    assert "Serving:  Disabled" in text
    assert "Next:     level 5 Machine Learning \"Capability\" (no open review yet); " \
        "5 still needed:" in text
    assert f"open one: kubectl mltrl review new churn -n {namespace}" in text
    view = yaml.safe_load(sandbox.plugin("bob", "status", "churn", "-n", namespace,
                                         "-o", "yaml").stdout)
    assert view["next"]["unmet"][0] == "missing check 'unit-tests'"
    assert view["reviews"] == [] and view["incidents"] == []


def test_history_and_a_deleted_technology(sandbox: PluginSandbox, namespace: str) -> None:
    sandbox.apply([policy(namespace), technology(namespace, "churn")])
    reconciled(sandbox, "churn", namespace, 4)
    table = sandbox.plugin("alice", "history", "churn", "-n", namespace).stdout
    assert table.splitlines()[0].split() == ["AT", "FROM", "TO", "KIND", "CAUSE", "BY",
                                             "REASON"]
    assert "entry" in table.splitlines()[1]
    record = sandbox.plugin_json("alice", "history", "churn", "-n", namespace)
    assert record["source"] == "status.history" and record["items"][0]["to"] == 4
    sandbox.kubectl("delete", "mltech", "churn", "-n", namespace)
    gone = sandbox.plugin("alice", "history", "churn", "-n", namespace, check=False)
    assert gone.returncode == 1
    assert f'mltechnology "churn" not found in namespace "{namespace}"' in gone.stderr
    assert "keeps no audit record that outlives the object" in gone.stderr


def test_the_plugin_uses_the_kubeconfig_identity(sandbox: PluginSandbox,
                                                 namespace: str) -> None:
    sandbox.apply([policy(namespace), technology(namespace, "churn")])
    reconciled(sandbox, "churn", namespace, 4)
    created = sandbox.plugin_json("alice", "review", "new", "churn", "-n", namespace)
    name = created["review"]["metadata"]["name"]
    # flags before the command work too, as with kubectl
    sandbox.plugin(None, "--context", "bob", "-n", namespace, "approve", name, "--role", "qa")
    stored = sandbox.get("lvlreview", name, namespace) or {}
    assert [a["reviewer"] for a in stored["spec"]["approvals"]] == ["bob"]
    wrong = sandbox.plugin(None, "ls", "--context", "nobody", check=False)
    assert wrong.returncode == 1, wrong
    assert 'cannot load the kubeconfig: context "nobody"' in wrong.stderr, wrong


def test_a_reviewer_who_may_not_read_policies_sees_what_the_operator_published(
    sandbox: PluginSandbox, namespace: str
) -> None:
    # carol holds only the chart's mltrl-reviewer role, which does not read MLTRLPolicies:
    # the plugin says so and shows the requirements the operator put in status.nextLevel.
    sandbox.apply([policy(namespace), technology(namespace, "churn")])
    reconciled(sandbox, "churn", namespace, 4)
    shown = sandbox.plugin("carol", "status", "churn", "-n", namespace)
    assert "showing what the operator published instead" in shown.stderr
    assert "Next:     level 5 Machine Learning \"Capability\"" in shown.stdout
    assert "the owner's approval does not count (separation of duties)" in shown.stdout
