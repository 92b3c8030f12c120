"""Reviews done with `kubectl mltrl` only, as alice (the owner), bob (QA) and carol (the
product owner), through real kubectl, the admission webhooks and the operator."""

from __future__ import annotations

import json
import threading
from typing import Any

from tests.integration.harness import eventually

from .conftest import PluginSandbox, policy, reconciled, technology


def review_body(sandbox: PluginSandbox, name: str, namespace: str) -> dict[str, Any]:
    body = sandbox.get("lvlreview", name, namespace)
    assert body is not None, f"levelreview {name} is gone"
    return body


def phase(sandbox: PluginSandbox, name: str, namespace: str) -> str | None:
    return (review_body(sandbox, name, namespace).get("status") or {}).get("phase")


def setup(sandbox: PluginSandbox, namespace: str) -> None:
    sandbox.apply([policy(namespace), technology(namespace)])
    reconciled(sandbox, "churn", namespace, 4)


def open_review(sandbox: PluginSandbox, namespace: str) -> str:
    created = sandbox.plugin_json("alice", "review", "new", "churn", "-n", namespace)
    return str(created["review"]["metadata"]["name"])


def test_a_whole_promotion_with_the_plugin_only(sandbox: PluginSandbox, namespace: str) -> None:
    setup(sandbox, namespace)
    ns = ("-n", namespace)
    created = sandbox.plugin_json("alice", "review", "new", "churn", *ns)
    review = created["review"]
    assert review["metadata"]["name"] == "churn-to-5"
    assert (review["spec"]["fromLevel"], review["spec"]["toLevel"]) == (4, 5)
    # the skeleton names every evidence the policy requires, with the command to fill it
    needs = "\n".join(created["needs"])
    assert "kubectl mltrl evidence churn-to-5 unit-tests --passed" in needs
    assert "kubectl mltrl evidence churn-to-5 accuracy --value V" in needs
    # and carries the names in the object, for `kubectl get -o yaml` readers
    hint = review["metadata"]["annotations"]["mltrl.dev/required-evidence"]
    assert json.loads(hint) == [{"name": "unit-tests", "kind": "check"},
                                {"name": "accuracy", "kind": "metric"}]
    # what the plugin says is still needed is what the operator writes in status.unmet
    unmet = eventually(lambda: (review_body(sandbox, "churn-to-5", namespace)
                                .get("status") or {}).get("unmet"), timeout=60,
                       what="the operator's status.unmet")
    shown = sandbox.plugin_json("alice", "status", "churn", *ns)["next"]
    assert shown["review"] == "churn-to-5" and shown["unmet"] == unmet
    assert "missing check 'unit-tests'" in unmet and "missing metric 'accuracy'" in unmet

    sandbox.plugin("alice", "evidence", "churn-to-5", "unit-tests", "--passed",
                   "--uri", "https://ci.example.com/churn/1", *ns)
    sandbox.plugin("alice", "evidence", "churn-to-5", "accuracy", "--value", "0.91", *ns)
    approved = sandbox.plugin("bob", "approve", "churn-to-5", "--role", "qa",
                              "--comment", "tests read", *ns)
    assert 'levelreview "churn-to-5" approved as qa' in approved.stdout
    sandbox.plugin("carol", "approve", "churn-to-5", "--role", "product-owner", *ns)

    reconciled(sandbox, "churn", namespace, 5)
    eventually(lambda: phase(sandbox, "churn-to-5", namespace) == "Applied", timeout=60,
               what="the review Applied")
    spec = review_body(sandbox, "churn-to-5", namespace)["spec"]
    assert [(a["reviewer"], a["role"]) for a in spec["approvals"]] == [
        ("bob", "qa"), ("carol", "product-owner")]
    assert all(a.get("time") for a in spec["approvals"]), "the webhook stamps the time"
    assert {e["name"]: e.get("passed", e.get("value")) for e in spec["evidence"]} == {
        "unit-tests": True, "accuracy": 0.91}
    history = sandbox.plugin("carol", "history", "churn", *ns).stdout
    assert "promotion" in history and "churn-to-5" in history and "bob,carol" in history


def test_the_first_decision_on_a_review_without_a_list(sandbox: PluginSandbox,
                                                       namespace: str) -> None:
    setup(sandbox, namespace)
    # written by hand, without spec.approvals or spec.evidence at all
    sandbox.apply({"apiVersion": "mltrl.dev/v1alpha1", "kind": "LevelReview",
                   "metadata": {"name": "bare", "namespace": namespace},
                   "spec": {"technology": "churn", "fromLevel": 4, "toLevel": 5}})
    assert "approvals" not in review_body(sandbox, "bare", namespace)["spec"]
    sandbox.plugin("bob", "approve", "bare", "--role", "qa", "-n", namespace)
    sandbox.plugin("alice", "evidence", "bare", "unit-tests", "--passed", "-n", namespace)
    spec = review_body(sandbox, "bare", namespace)["spec"]
    assert [a["reviewer"] for a in spec["approvals"]] == ["bob"]
    assert [e["name"] for e in spec["evidence"]] == ["unit-tests"]
    assert spec["evidence"][0]["kind"] == "check", "the kind comes from the policy"


def test_changing_ones_decision_never_touches_anyone_elses(sandbox: PluginSandbox,
                                                           namespace: str) -> None:
    setup(sandbox, namespace)
    name = open_review(sandbox, namespace)
    sandbox.plugin("carol", "approve", name, "--role", "product-owner", "--comment", "ok",
                   "-n", namespace)
    carols = review_body(sandbox, name, namespace)["spec"]["approvals"][0]
    sandbox.plugin("bob", "approve", name, "--role", "qa", "--comment", "first look",
                   "-n", namespace)
    sandbox.plugin("bob", "approve", name, "--role", "qa", "--comment", "second look",
                   "-n", namespace)
    approvals = review_body(sandbox, name, namespace)["spec"]["approvals"]
    assert approvals[0] == carols, "carol's approval is byte for byte what she wrote"
    assert [(a["reviewer"], a.get("comment")) for a in approvals] == [
        ("carol", "ok"), ("bob", "second look")]


def test_concurrent_decisions_on_an_empty_review_both_land(sandbox: PluginSandbox,
                                                           namespace: str) -> None:
    setup(sandbox, namespace)
    name = open_review(sandbox, namespace)
    errors: list[str] = []

    def approve(user: str, role: str) -> None:
        result = sandbox.plugin(user, "approve", name, "--role", role, "-n", namespace,
                                check=False)
        if result.returncode:
            errors.append(result.stderr)

    threads = [threading.Thread(target=approve, args=("bob", "qa")),
               threading.Thread(target=approve, args=("carol", "product-owner"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    approvals = review_body(sandbox, name, namespace)["spec"]["approvals"]
    assert sorted(a["reviewer"] for a in approvals) == ["bob", "carol"]


def test_a_rejection_is_final_and_the_plugin_says_what_to_do(sandbox: PluginSandbox,
                                                             namespace: str) -> None:
    setup(sandbox, namespace)
    name = open_review(sandbox, namespace)
    sandbox.plugin("carol", "reject", name, "--role", "product-owner", "--comment",
                   "no product need yet", "-n", namespace)
    eventually(lambda: phase(sandbox, name, namespace) == "Rejected", timeout=60,
               what="the review Rejected")
    late = sandbox.plugin("bob", "approve", name, "--role", "qa", "-n", namespace, check=False)
    assert late.returncode == 1
    assert (f'levelreview "{name}" in namespace "{namespace}" is Rejected: it is a record and '
            "cannot change; open a new review with kubectl mltrl review new churn "
            f"-n {namespace}") in late.stderr
    rejection = sandbox.plugin("bob", "reject", name, "-n", namespace, check=False)
    assert rejection.returncode == 2 and "--comment" in rejection.stderr


def test_the_owner_cannot_approve_her_own_promotion(sandbox: PluginSandbox,
                                                    namespace: str) -> None:
    setup(sandbox, namespace)
    name = open_review(sandbox, namespace)
    refused = sandbox.plugin("alice", "approve", name, "--role", "qa", "-n", namespace,
                             check=False)
    assert refused.returncode == 1
    assert f'levelreview "{name}" in namespace "{namespace}" refused the change' in refused.stderr
    assert "alice owns mltech churn and may not approve its promotion" in refused.stderr
    assert "approvals" not in review_body(sandbox, name, namespace)["spec"] or \
        review_body(sandbox, name, namespace)["spec"]["approvals"] == []


def test_errors_name_the_object_the_namespace_and_what_to_do(sandbox: PluginSandbox,
                                                             namespace: str) -> None:
    setup(sandbox, namespace)
    missing = sandbox.plugin("bob", "approve", "nope", "--role", "qa", "-n", namespace,
                             check=False)
    assert missing.returncode == 1
    assert missing.stderr.strip() == (
        f'error: levelreview "nope" not found in namespace "{namespace}": list them with '
        f"kubectl get lvlreview -n {namespace}")
    no_tech = sandbox.plugin("alice", "review", "new", "ghost", "-n", namespace, check=False)
    assert no_tech.returncode == 1 and (
        f'mltechnology "ghost" not found in namespace "{namespace}": list them with '
        f"kubectl get mltech -n {namespace}") in no_tech.stderr
    name = open_review(sandbox, namespace)
    no_result = sandbox.plugin("alice", "evidence", name, "unit-tests", "-n", namespace,
                               check=False)
    assert no_result.returncode == 1
    assert "evidence 'unit-tests' is a check: give --passed or --failed" in no_result.stderr
    too_far = sandbox.plugin("alice", "review", "new", "churn", "--to", "6", "-n", namespace,
                             check=False)
    assert too_far.returncode == 1 and "would be invalid" in too_far.stderr
    assert "one level at a time" in too_far.stderr


def test_a_switchback_by_review_and_a_dry_run(sandbox: PluginSandbox, namespace: str) -> None:
    setup(sandbox, namespace)
    ns = ("-n", namespace)
    dry = sandbox.plugin_json("alice", "review", "new", "churn", "--dry-run", *ns)
    assert dry["review"]["metadata"]["name"] == "churn-to-5"
    assert "kubectl mltrl evidence churn-to-5 unit-tests --passed --uri URL" in dry["needs"][0]
    assert sandbox.get("lvlreview", "churn-to-5", namespace) is None, "a dry run creates nothing"
    # 4 is the entry level: there is nothing to go back to yet
    below = sandbox.plugin("alice", "review", "new", "churn", "--type", "change", "--to", "3",
                           "--reason", "x", *ns, check=False)
    assert below.returncode == 1 and "below the technology's entry level 4" in below.stderr
    unreasoned = sandbox.plugin("alice", "review", "new", "churn", "--type", "change", "--to",
                                "5", *ns, check=False)
    assert unreasoned.returncode == 1 and "--type change moves churn down" in unreasoned.stderr


def test_change_and_recertify_reviews_keep_the_level(
    sandbox: PluginSandbox, namespace: str
) -> None:
    setup(sandbox, namespace)
    ns = ("-n", namespace)
    # No model waits for a change review: the plugin says so and creates nothing.
    nothing = sandbox.plugin("alice", "review", "new", "churn", "--type", "change", *ns,
                             check=False)
    assert nothing.returncode == 1
    assert "churn has no model waiting for a change review" in nothing.stderr
    moving = sandbox.plugin("alice", "review", "new", "churn", "--type", "recertify",
                            "--to", "5", *ns, check=False)
    assert moving.returncode == 1 and "keeps churn at level 4" in moving.stderr
    created = sandbox.plugin_json("alice", "review", "new", "churn", "--type", "recertify",
                                  *ns)
    review = created["review"]
    assert review["metadata"]["name"] == "churn-recertify-4"
    assert (review["spec"]["type"], review["spec"]["fromLevel"],
            review["spec"]["toLevel"]) == ("recertify", 4, 4)
    # It meets level 4's own rule, as a promotion to 4 would.
    hint = json.loads(review["metadata"]["annotations"]["mltrl.dev/required-evidence"])
    assert hint, created
    pending = eventually(
        lambda: (s := sandbox.get("lvlreview", "churn-recertify-4", namespace) or {}).get(
            "status", {}).get("phase") and s["status"], what="the operator to evaluate it")
    assert pending["phase"] == "Pending", pending
