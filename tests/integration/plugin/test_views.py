"""The portfolio, a technology in words, and its history: tables by default, -o json|yaml
everywhere, read as the user."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

from tests.integration.harness import eventually

from .conftest import AUDITOR, PluginSandbox, policy, reconciled, technology


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


def promote_churn_to_5(sandbox: PluginSandbox, namespace: str) -> None:
    ns = ("-n", namespace)
    sandbox.plugin("alice", "review", "new", "churn", *ns)
    sandbox.plugin("alice", "evidence", "churn-to-5", "unit-tests", "--passed",
                   "--uri", "https://ci.example.com/churn/1", *ns)
    sandbox.plugin("alice", "evidence", "churn-to-5", "accuracy", "--value", "0.91", *ns)
    sandbox.plugin("bob", "approve", "churn-to-5", "--role", "qa", *ns)
    sandbox.plugin("carol", "approve", "churn-to-5", "--role", "product-owner", *ns)
    reconciled(sandbox, "churn", namespace, 5)


def kinds(view: dict[str, Any]) -> list[tuple[str, int | None, int | None]]:
    return [(i["kind"], i.get("from"), i.get("to")) for i in view["items"]]


def audited(sandbox: PluginSandbox, namespace: str,
            last: tuple[str, int | None, int | None]) -> dict[str, Any] | None:
    """The auditor's view of churn's history once its last entry is `last`."""
    view: dict[str, Any] = sandbox.plugin_json(AUDITOR, "history", "churn", "-n", namespace)
    return view if kinds(view)[-1:] == [last] else None


def test_history_comes_from_the_audit_record_and_outlives_the_technology(
    sandbox: PluginSandbox, namespace: str
) -> None:
    sandbox.apply([policy(namespace), technology(namespace, "churn")])
    reconciled(sandbox, "churn", namespace, 4)
    promote_churn_to_5(sandbox, namespace)
    ns = ("-n", namespace)

    # The auditor (mltrl-auditor, cluster-wide read of the records) sees the audit record,
    # its chain verified with the domain's check.
    record = eventually(lambda: audited(sandbox, namespace, ("promotion", 4, 5)),
                        timeout=60, what="the promotion in the audit record")
    assert record["source"] == "audit record" and record["verified"] is True
    assert record["findings"] == [] and record["deleted"] is False
    promotion = record["items"][1]
    assert promotion["cause"] == "review churn-to-5" and promotion["by"] == ["bob", "carol"]
    assert [(a["reviewer"], a["role"]) for a in promotion["approvals"]] == [
        ("bob", "qa"), ("carol", "product-owner")]
    assert {e["name"] for e in promotion["evidence"]} == {"unit-tests", "accuracy"}
    shown = sandbox.plugin(AUDITOR, "history", "churn", *ns)
    lines = shown.stdout.splitlines()
    assert lines[0] == f"Level history of {namespace}/churn from the audit record (2 entries)."
    assert lines[1].startswith("Chain verified: every entry matches its hash")
    assert lines[2].split() == ["AT", "FROM", "TO", "KIND", "CAUSE", "BY", "REASON"]
    assert lines[4].split()[1:7] == ["4", "5", "promotion", "review", "churn-to-5", "bob,carol"]
    assert shown.stderr == ""

    # alice (edit in every namespace) may not read the cluster-scoped records: the plugin
    # shows status.history and says which role to ask for.
    fallback = sandbox.plugin("alice", "history", "churn", *ns)
    assert "ask your platform team for the mltrl-auditor role" in fallback.stderr
    assert "showing status.history instead" in fallback.stderr
    assert fallback.stdout.splitlines()[0] == (
        f"Level history of {namespace}/churn from status.history (not the audit record).")
    assert "promotion" in fallback.stdout and "review churn-to-5" in fallback.stdout
    as_json = sandbox.plugin_json("alice", "history", "churn", *ns)
    assert as_json["source"] == "status.history" and as_json["verified"] is None
    assert kinds(as_json) == [("entry", None, 4), ("promotion", 4, 5)]

    # Deleted: the record outlives the technology, promotions and all.
    sandbox.kubectl("delete", "mltech", "churn", "-n", namespace)
    after = eventually(lambda: audited(sandbox, namespace, ("deletion", 5, None)),
                       timeout=60, what="the deletion in the audit record")
    assert kinds(after) == [("entry", None, 4), ("promotion", 4, 5), ("deletion", 5, None)]
    assert after["verified"] is True and after["deleted"] is True
    assert after["items"][1]["approvals"][0]["reviewer"] == "bob"
    table = sandbox.plugin(AUDITOR, "history", "churn", *ns).stdout
    assert "(3 entries, the technology is deleted)" in table
    assert "review churn-to-5" in table

    # ... and someone who may not read it is told what to do, not shown nothing.
    gone = sandbox.plugin("alice", "history", "churn", *ns, check=False)
    assert gone.returncode == 1
    assert f'mltechnology "churn" not found in namespace "{namespace}"' in gone.stderr
    assert "ask your platform team for the mltrl-auditor role" in gone.stderr


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


def test_status_counts_the_waivers_the_operator_counts(
    sandbox: PluginSandbox, namespace: str
) -> None:
    """The next step comes from evaluate_review with the technology's waivers judged now:
    a waiver carol (named by the policy) approved takes its evidence off; alice's own
    approval of another counts for nothing, and status says why."""
    body = policy(namespace)
    body["spec"]["waivers"] = {"maxDuration": "336h", "approvers": [{"users": ["carol",
                                                                               "alice"]}]}
    sandbox.apply([body, technology(namespace, "churn")])
    reconciled(sandbox, "churn", namespace, 4)
    expires = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for name, evidence in (("no-accuracy", "accuracy"), ("no-tests", "unit-tests")):
        sandbox.kubectl("--context", "alice", "apply", "-f", "-", input=json.dumps({
            "apiVersion": "mltrl.dev/v1alpha1", "kind": "MLTRLWaiver",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"technology": "churn", "reason": "the offline evaluation is rerun",
                     "expiresAt": expires, "waives": {"level": 5, "evidence": [evidence]}},
        }))
    approval = json.dumps([{"op": "add", "path": "/spec/approvals", "value": [{}]}])
    for user, name in (("carol", "no-accuracy"), ("alice", "no-tests")):
        sandbox.kubectl("--context", user, "patch", "mltrlwaiver", name, "-n", namespace,
                        "--type=json", "-p", approval)
    eventually(lambda: ((sandbox.get("mltrlwaiver", "no-accuracy", namespace) or {})
                        .get("status") or {}).get("active"), what="carol's waiver to count")

    view = sandbox.plugin_json("bob", "status", "churn", "-n", namespace)
    assert "missing metric 'accuracy'" not in view["next"]["unmet"]
    assert "missing check 'unit-tests'" in view["next"]["unmet"]  # alice owns churn
    assert [(w["name"], w["waived"], w["approvedBy"]) for w in view["next"]["waived"]] == [
        ("no-accuracy", ["evidence accuracy"], ["carol"])]
    counts = {w["name"]: (w["counts"], w["why"]) for w in view["waivers"]}
    assert counts["no-accuracy"] == (True, f"approved by carol; counts until {expires}")
    assert counts["no-tests"][0] is False
    assert "owners of the technology may not approve" in counts["no-tests"][1]
    text = sandbox.plugin("bob", "status", "churn", "-n", namespace).stdout
    assert "4 still needed:" in text
    assert f"waived: evidence accuracy (waiver no-accuracy until {expires})" in text
    assert "no-tests: does not count: not approved by anyone" in text
    # A new review asks for what the operator will ask for: not the waived evidence.
    created = sandbox.plugin_json("alice", "review", "new", "churn", "-n", namespace)
    needs = "\n".join(created["needs"])
    assert "unit-tests --passed" in needs and "accuracy --value" not in needs
    assert f"waived: evidence accuracy (waiver no-accuracy until {expires})" in needs
