"""The operator's cache: kept current by watch events, and policies parsed once per change."""

from __future__ import annotations

from typing import Any

import pytest

from mltrl_operator.api.policy import MLTRLPolicySpec
from mltrl_operator.controllers.cache import ClusterCache
from mltrl_operator.controllers.context import ReadYourWrites
from mltrl_operator.controllers.view import ClusterView
from mltrl_operator.k8s.resource_versions import compare_resource_versions
from mltrl_operator.k8s.resources import (
    INFERENCE_SERVICES,
    NAMESPACES,
    POLICIES,
    REVIEWS,
    TECHNOLOGIES,
    WAIVERS,
)


def _meta(name: str, namespace: str | None = None, version: str = "1") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "resourceVersion": version}
    if namespace:
        meta["namespace"] = namespace
    return meta


def technology(name: str, components: tuple[str, ...] = (), version: str = "1") -> dict[str, Any]:
    return {
        "metadata": _meta(name, "ml", version),
        "spec": {"components": [{"name": c} for c in components]} if components else {},
    }


def review(name: str, technology: str) -> dict[str, Any]:
    return {"metadata": _meta(name, "ml"), "spec": {"technology": technology}}


def policy(name: str, minimum: int, team: str = "ml") -> dict[str, Any]:
    return {"metadata": _meta(name), "spec": {
        "namespaceSelector": {"matchLabels": {"team": team}},
        "serving": {"minimumLevel": minimum},
    }}


def namespace(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {**_meta(name), "labels": labels}}


def test_events_add_change_and_remove_technologies() -> None:
    cache = ClusterCache()
    cache.apply(TECHNOLOGIES, None, technology("ranker"))
    cache.apply(TECHNOLOGIES, "ADDED", technology("scorer"))
    assert sorted(cache.technology_keys()) == [("ml", "ranker"), ("ml", "scorer")]
    cache.apply(TECHNOLOGIES, "MODIFIED", technology("ranker", version="2"))
    assert cache.technology("ml", "ranker")["metadata"]["resourceVersion"] == "2"  # type: ignore[index]
    cache.apply(TECHNOLOGIES, "DELETED", technology("ranker", version="2"))
    assert cache.technology("ml", "ranker") is None
    assert cache.technology_keys(["other"]) == []


def test_composites_follow_their_component_lists() -> None:
    cache = ClusterCache()
    cache.apply(TECHNOLOGIES, None, technology("pipeline", ("ranker", "scorer")))
    assert cache.composites_of("ml", "ranker") == [("ml", "pipeline")]
    cache.apply(TECHNOLOGIES, "MODIFIED", technology("pipeline", ("scorer",)))
    assert cache.composites_of("ml", "ranker") == []
    assert cache.composites_of("ml", "scorer") == [("ml", "pipeline")]
    cache.apply(TECHNOLOGIES, "DELETED", technology("pipeline", ("scorer",)))
    assert cache.composites_of("ml", "scorer") == []


def test_reviews_are_found_by_their_technology_even_when_it_changes() -> None:
    cache = ClusterCache()
    cache.apply(REVIEWS, None, review("to-5", "ranker"))
    cache.apply(REVIEWS, None, review("to-6", "ranker"))
    assert [r["metadata"]["name"] for r in cache.reviews_of("ml", "ranker")] == ["to-5", "to-6"]
    cache.apply(REVIEWS, "MODIFIED", review("to-6", "scorer"))
    assert [r["metadata"]["name"] for r in cache.reviews_of("ml", "ranker")] == ["to-5"]
    assert [r["metadata"]["name"] for r in cache.reviews_of("ml", "scorer")] == ["to-6"]
    cache.apply(REVIEWS, "DELETED", review("to-5", "ranker"))
    assert cache.reviews_of("ml", "ranker") == []
    assert cache.sizes()["reviews"] == 1


def test_waivers_are_found_by_their_technology_and_judged_from_the_view() -> None:
    cache = ClusterCache()
    waiver = {"metadata": {**_meta("skip-bias", "ml"), "creationTimestamp":
                           "2026-03-01T00:00:00Z"},
              "spec": {"technology": "ranker", "reason": "booked", "waives": {"level": 5},
                       "expiresAt": "2026-03-08T00:00:00Z"}}
    cache.apply(WAIVERS, None, waiver)
    cache.apply(WAIVERS, None, {"metadata": _meta("broken", "ml"),
                                "spec": {"technology": "ranker"}})
    assert [w["metadata"]["name"] for w in cache.waivers_of("ml", "ranker")] == [
        "skip-bias", "broken"]
    # An unreadable waiver counts for nothing; the readable one goes to the domain as is.
    (facts,) = ClusterView(cache).waiver_facts("ml", "ranker")
    assert (facts.name, facts.spec.expires_at) == ("skip-bias", "2026-03-08T00:00:00Z")
    cache.apply(WAIVERS, "DELETED", waiver)
    assert [w["metadata"]["name"] for w in cache.waivers_of("ml", "ranker")] == ["broken"]
    assert sorted(cache.keys(WAIVERS)) == [("ml", "broken")]
    assert cache.sizes()["waivers"] == 1


def test_namespaces_and_inference_services() -> None:
    cache = ClusterCache()
    cache.apply(NAMESPACES, None, namespace("ml", team="ml"))
    assert cache.namespace_labels("ml") == {"kubernetes.io/metadata.name": "ml", "team": "ml"}
    assert cache.namespace_labels("nowhere") is None
    cache.apply(NAMESPACES, "DELETED", namespace("ml"))
    assert cache.namespaces() == []
    isvc = {"metadata": _meta("ranker", "ml")}
    cache.apply(INFERENCE_SERVICES, "ADDED", isvc)
    assert cache.inference_service("ml", "ranker") is isvc
    cache.apply(INFERENCE_SERVICES, "DELETED", isvc)
    assert cache.inference_service("ml", "ranker") is None


def test_the_view_prefers_our_own_writes_until_the_watch_shows_them() -> None:
    cache, writes = ClusterCache(), ReadYourWrites()
    old = technology("ranker", version="1")
    cache.apply(TECHNOLOGIES, None, old)
    stored = technology("ranker", version="2")
    writes.remember(("MLTechnology", "ml", "ranker"), old, stored)
    view = ClusterView(cache, writes)
    assert view.technology("ml", "ranker") == stored
    cache.apply(TECHNOLOGIES, "MODIFIED", stored)
    assert view.technology("ml", "ranker") == stored  # the cache's copy, caught up
    assert view.writes.fresh(("MLTechnology", "ml", "ranker"), old) is old  # forgotten


def test_the_cache_keeps_technologies_and_reviews_compact_and_hands_out_copies() -> None:
    cache = ClusterCache()
    body = technology("ranker", version="1")
    body["metadata"]["managedFields"] = [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]
    cache.apply(TECHNOLOGIES, None, body)
    first, second = cache.technology("ml", "ranker"), cache.technology("ml", "ranker")
    assert first == second and first is not second
    assert first is not None and "managedFields" not in first["metadata"]
    assert first["spec"] == body["spec"]
    first["spec"]["owner"] = "mallory"  # a caller's edit never reaches the cache
    assert cache.technology("ml", "ranker") == second


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    original = MLTRLPolicySpec.model_validate.__func__  # type: ignore[attr-defined]

    def counting(cls: type[MLTRLPolicySpec], value: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(cls, value, *args, **kwargs)

    monkeypatch.setattr(MLTRLPolicySpec, "model_validate", classmethod(counting))
    return calls


def test_policies_are_parsed_once_per_change(parses: list[int]) -> None:
    cache = ClusterCache()
    cache.apply(NAMESPACES, None, namespace("a", team="ml"))
    cache.apply(NAMESPACES, None, namespace("b", team="other"))
    cache.apply(POLICIES, None, policy("strict", 7))
    cache.apply(POLICIES, None, policy("loose", 3, team="other"))
    view = ClusterView(cache)
    for _ in range(3):
        assert view.policy_for("a").minimum_serving_level == 7
        assert view.policy_for("b").minimum_serving_level == 3
    assert [p.name for p in view.policies()] == ["loose", "strict"]
    assert len(parses) == 2
    version = cache.policies.version
    # Its status written back: the same spec, nothing to parse or fan out.
    cache.apply(POLICIES, "MODIFIED", {**policy("strict", 7), "status": {"namespaces": ["a"]}})
    assert cache.policies.version == version
    assert view.policy_for("a").minimum_serving_level == 7
    assert len(parses) == 2


def test_a_changed_or_removed_policy_applies_at_once() -> None:
    cache = ClusterCache()
    cache.apply(NAMESPACES, None, namespace("a", team="ml"))
    cache.apply(POLICIES, None, policy("strict", 7))
    view = ClusterView(cache)
    assert view.policy_for("a").minimum_serving_level == 7
    cache.apply(POLICIES, "MODIFIED", policy("strict", 8))
    assert view.policy_for("a").minimum_serving_level == 8
    cache.apply(NAMESPACES, "MODIFIED", namespace("a", team="nobody"))
    assert view.policy_for("a").sources == ()
    cache.apply(NAMESPACES, "MODIFIED", namespace("a", team="ml"))
    cache.apply(POLICIES, "DELETED", policy("strict", 8))
    assert view.policy_for("a").sources == ()


def test_a_policy_that_cannot_be_read_fails_every_reconcile_rather_than_stop_applying() -> None:
    cache = ClusterCache()
    cache.apply(POLICIES, None, {"metadata": _meta("broken"), "spec": {"serving": "yes"}})
    with pytest.raises(ValueError):
        ClusterView(cache).policy_for("a")


def test_our_own_write_handed_back_is_not_taken_for_the_watch_catching_up() -> None:
    """A reconcile freshens what the view already freshened: the cache still holds the old
    snapshot, so forgetting our write here would let the next reconcile act on it again."""
    cache, writes = ClusterCache(), ReadYourWrites()
    old = review("ranker-to-5", "ranker")
    cache.apply(REVIEWS, None, old)
    stored = {**review("ranker-to-5", "ranker"), "status": {"phase": "Applied"}}
    stored["metadata"]["resourceVersion"] = "2"
    writes.remember(("LevelReview", "ml", "ranker-to-5"), old, stored)
    view = ClusterView(cache, writes)
    [seen] = view.reviews_of("ml", "ranker")
    assert seen == stored
    assert writes.fresh(("LevelReview", "ml", "ranker-to-5"), seen) is seen
    [again] = view.reviews_of("ml", "ranker")  # the watch has not delivered version 2 yet
    assert again["status"] == {"phase": "Applied"}
    delivered = {**stored, "metadata": {**stored["metadata"]}}
    cache.apply(REVIEWS, "MODIFIED", delivered)
    assert view.reviews_of("ml", "ranker") == [delivered]


def test_what_the_operator_never_reads_is_not_kept() -> None:
    cache = ClusterCache()
    body = technology("ranker")
    body["metadata"]["managedFields"] = [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]
    body["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": '{"spec": {}}',
        "team.example.com/owner": "ml-platform",
    }
    cache.apply(TECHNOLOGIES, "ADDED", body)
    kept = cache.technology("ml", "ranker")
    assert kept is not None
    assert "managedFields" not in kept["metadata"]
    assert kept["metadata"]["annotations"] == {"team.example.com/owner": "ml-platform"}
    assert kept["metadata"]["resourceVersion"] == "1"
    assert "managedFields" in body["metadata"]  # the event's own body is left alone


def test_a_write_someone_made_before_ours_does_not_undo_ours_in_the_view() -> None:
    """KServe writes an InferenceService's status (version 11) just before our stop (12);
    its event reaches the watch after our PATCH returned. The view keeps our stop: taking
    version 11 for the watch having caught up would plan on an InferenceService that
    serves, and a stop already made would not be made again."""
    cache, writes = ClusterCache(), ReadYourWrites()
    ref = ("InferenceService", "ml", "ranker")
    serving = {"metadata": _meta("ranker", "ml", "10"), "spec": {}}
    cache.apply(INFERENCE_SERVICES, None, serving)
    stopped = {"metadata": {**_meta("ranker", "ml", "12"),
                            "annotations": {"serving.kserve.io/stop": "true"}}, "spec": {}}
    writes.remember(ref, serving, stopped)
    view = ClusterView(cache, writes)
    kserve = {"metadata": _meta("ranker", "ml", "11"), "spec": {}, "status": {"url": "u"}}
    cache.apply(INFERENCE_SERVICES, "MODIFIED", kserve)
    assert view.inference_service("ml", "ranker") == stopped
    # The watch delivers our write, or anything after it: the view follows the watch.
    later = {**stopped, "metadata": {**stopped["metadata"], "resourceVersion": "13"}}
    cache.apply(INFERENCE_SERVICES, "MODIFIED", later)
    assert view.inference_service("ml", "ranker") == later
    assert writes.fresh(ref, kserve) is kserve  # forgotten once caught up


def test_resource_versions_compare_as_kubernetes_defines_them() -> None:
    assert compare_resource_versions("9", "10") == -1
    assert compare_resource_versions("10", "10") == 0
    assert compare_resource_versions("100", "99") == 1
    # Not comparable (KEP-5504: positive integers without leading zeros): equality only.
    for other in ("", "0", "010", "abc", "1.5"):
        assert compare_resource_versions(other, "10") is None


def test_a_deleted_object_seen_again_at_an_older_version_stays_deleted() -> None:
    cache, writes = ClusterCache(), ReadYourWrites()
    ref = ("InferenceService", "ml", "ranker")
    body = {"metadata": _meta("ranker", "ml", "10"), "spec": {}}
    cache.apply(INFERENCE_SERVICES, None, body)
    writes.remember(ref, body, None)
    view = ClusterView(cache, writes)
    assert view.inference_service("ml", "ranker") is None
    # A re-list from a lagging cache hands back a version from before the deletion.
    cache.apply(INFERENCE_SERVICES, "MODIFIED", {"metadata": _meta("ranker", "ml", "9"),
                                                 "spec": {}})
    assert view.inference_service("ml", "ranker") is None
    recreated = {"metadata": _meta("ranker", "ml", "15"), "spec": {}}
    cache.apply(INFERENCE_SERVICES, "ADDED", recreated)
    assert view.inference_service("ml", "ranker") == recreated


class PagedApi:
    """Lists technologies in pages of one, the first listing cut short by an expired
    continue token (a technology deleted meanwhile); every other kind is empty."""

    async def pages(self, resource: Any) -> Any:
        def page(*names: str) -> list[dict[str, Any]]:
            return [{"metadata": {"namespace": "ns", "name": n, "uid": n},
                     "spec": {"targetLevel": 4}} for n in names]

        if resource == TECHNOLOGIES:
            yield False, page("a")
            yield False, page("gone")
            yield True, page("a")  # 410: listed again from the start
            yield False, page("b")
        else:
            yield False, []


async def test_priming_takes_a_page_at_a_time_and_forgets_a_list_that_started_over() -> None:
    from mltrl_operator.controllers.cache import prime

    cache, api = ClusterCache(), PagedApi()
    await prime(api, cache)  # type: ignore[arg-type]
    assert sorted(cache.technology_keys()) == [("ns", "a"), ("ns", "b")]


def test_a_review_is_read_by_name_and_follows_a_move_to_another_technology() -> None:
    cache = ClusterCache()
    cache.apply(REVIEWS, None, review("ranker-to-5", "ranker"))
    assert cache.review("ml", "ranker-to-5") == review("ranker-to-5", "ranker")
    cache.apply(REVIEWS, "MODIFIED", review("ranker-to-5", "scorer"))
    found = cache.review("ml", "ranker-to-5")
    assert found is not None and found["spec"]["technology"] == "scorer"
    assert cache.reviews_of("ml", "ranker") == []
    cache.apply(REVIEWS, "DELETED", review("ranker-to-5", "scorer"))
    assert cache.review("ml", "ranker-to-5") is None


def test_an_event_showing_our_write_forgets_it_at_once_and_an_older_one_does_not() -> None:
    """Our writes are held until the watch shows them, not until the object is next read:
    at start-up that read comes after the whole work queue (issue 17)."""
    cache, writes = ClusterCache(), ReadYourWrites()
    view = ClusterView(cache, writes)
    ref = ("MLTechnology", "ml", "ranker")
    old = technology("ranker", version="1")
    view.observe(TECHNOLOGIES, None, old)
    stored = {**technology("ranker", version="3"), "status": {"level": 5}}
    writes.remember(ref, old, stored)
    # An event from before our write (someone else's version 2) changes nothing we see.
    view.observe(TECHNOLOGIES, "MODIFIED", technology("ranker", version="2"))
    assert view.technology("ml", "ranker") == stored
    assert writes.fresh(ref, old) == stored
    # The event of our write: forgotten at once, with nobody reading the technology.
    view.observe(TECHNOLOGIES, "MODIFIED", {**stored, "metadata": {**stored["metadata"]}})
    assert writes.fresh(ref, old) is old
    assert view.technology("ml", "ranker") == stored


def test_a_deletion_we_made_is_forgotten_once_the_watch_shows_it() -> None:
    cache, writes = ClusterCache(), ReadYourWrites()
    view = ClusterView(cache, writes)
    ref = ("InferenceService", "ml", "ranker")
    serving = {"metadata": _meta("ranker", "ml", "10"), "spec": {}}
    view.observe(INFERENCE_SERVICES, None, serving)
    writes.remember(ref, serving, None)
    assert view.inference_service("ml", "ranker") is None
    gone = {**serving, "metadata": _meta("ranker", "ml", "11")}
    view.observe(INFERENCE_SERVICES, "DELETED", gone)
    assert writes.fresh(ref, serving) is serving  # nothing of ours is held any more
    assert view.inference_service("ml", "ranker") is None


def test_our_writes_are_held_packed_and_handed_out_as_one_object_while_anyone_holds_it() -> None:
    """Thousands of our writes wait for the watch at start-up: each is held as compact
    JSON, without managedFields, and decoded for a reader (issue 17). A reader handing
    back what it was given is still told apart from the watch catching up."""
    writes = ReadYourWrites()
    ref = ("MLTechnology", "ml", "ranker")
    old = technology("ranker", version="1")
    stored = {**technology("ranker", version="2"), "status": {"level": 5}}
    stored["metadata"]["managedFields"] = [{"manager": "mltrl-operator"}]
    writes.remember(ref, old, stored)
    stored["status"]["level"] = 6  # the caller's own object is not what is held
    first = writes.fresh(ref, old)
    assert first is not None and first["status"] == {"level": 5}
    assert "managedFields" not in first["metadata"]
    assert writes.fresh(ref, old) is first
    assert writes.fresh(ref, first) is first  # handed back: not the watch catching up
    del first
    again = writes.fresh(ref, old)  # decoded afresh once nobody holds the last one
    assert again is not None and again["status"] == {"level": 5}
    assert writes.fresh(ref, again) is again
