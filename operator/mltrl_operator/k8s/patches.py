"""JSON merge patches (RFC 7386) computed from what is stored to what is wanted."""

from __future__ import annotations

from typing import Any


def merge_patch(current: Any, desired: Any) -> Any:
    """The smallest merge patch turning `current` into `desired`; {} when they are equal.

    Lists are replaced whole, as merge patch has no way to edit them in place.
    """
    if not isinstance(current, dict) or not isinstance(desired, dict):
        return desired
    patch: dict[str, Any] = {}
    for key in current.keys() - desired.keys():
        patch[key] = None
    for key, value in desired.items():
        if key not in current:
            patch[key] = value
        elif current[key] != value:
            if isinstance(value, dict) and isinstance(current[key], dict):
                patch[key] = merge_patch(current[key], value)
            else:
                patch[key] = value
    return patch
