"""Ordering of resourceVersions, as Kubernetes 1.35 defines it (KEP-5504, stable).

A resourceVersion was once only comparable for equality. Since KEP-5504 the versions of
objects of one resource are positive integers without leading zeros, and a greater one is
a later write (client-go: `k8s.io/apimachinery/pkg/util/resourceversion`); etcd-backed
API servers have always produced them. Anything else is not ordered, and callers fall
back to equality.
"""

from __future__ import annotations


def _parsed(version: str) -> int | None:
    if not version.isdigit() or version.startswith("0"):
        return None  # "0" is list/watch's "any version", never a live object's
    return int(version)


def compare_resource_versions(a: str, b: str) -> int | None:
    """-1, 0 or 1 as `a` is older than, the same as or newer than `b`; None when either
    is not a comparable version (compare them for equality only)."""
    left, right = _parsed(a), _parsed(b)
    if left is None or right is None:
        return None
    return (left > right) - (left < right)
