"""The per-technology series a dashboard reads: present while the technology is, then gone."""

from __future__ import annotations

from prometheus_client import generate_latest

from mltrl_operator import metrics


def exposition() -> str:
    return generate_latest(metrics.REGISTRY).decode()


def test_a_technology_is_exposed_with_its_levels_and_forgotten_when_deleted() -> None:
    metrics.observe_technology("ml", "scorer", level=4, target_level=7, effective_level=3,
                               serving_allowed=False)
    text = exposition()
    labels = '{namespace="ml",technology="scorer"}'
    assert f"mltrl_technology_level{labels} 4.0" in text
    assert f"mltrl_technology_target_level{labels} 7.0" in text
    assert f"mltrl_technology_effective_level{labels} 3.0" in text
    assert f"mltrl_serving_allowed{labels} 0.0" in text

    metrics.observe_technology("ml", "scorer", level=5, target_level=7, effective_level=5,
                               serving_allowed=True)
    assert f"mltrl_serving_allowed{labels} 1.0" in exposition()

    metrics.forget_technology("ml", "scorer")
    assert labels not in exposition()
    assert "# TYPE mltrl_technology_level gauge" in exposition()  # the family stays
