"""Durations as Kubernetes writes them (Go's time.ParseDuration, hours and below), and
RFC 3339 instants as users write them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(h|m|s)")
_WHOLE = re.compile(r"^(?:[0-9]+(?:\.[0-9]+)?(?:h|m|s))+$")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0}


def parse_duration(text: str) -> timedelta:
    """`2160h`, `90m`, `1h30m`, `1.5h` -> timedelta. Days are not a unit (as in Go):
    write 720h for 30 days. Raises ValueError naming the text."""
    if not isinstance(text, str) or not _WHOLE.match(text):
        raise ValueError(f"{text!r} is not a duration such as 2160h, 90m or 1h30m")
    seconds = sum(float(number) * _UNITS[unit] for number, unit in _PART.findall(text))
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """The shortest Go-style text for a whole number of seconds: 720h, 1h30m, 45s."""
    total = int(delta.total_seconds())
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") + (
        f"{seconds}s" if seconds or not total else "")
    return text


def parse_instant(text: str) -> datetime:
    """An RFC 3339 timestamp (`2026-06-01T00:00:00Z`, or with an offset) -> aware UTC
    datetime. Raises ValueError naming the text."""
    if not isinstance(text, str) or "T" not in text.upper():
        raise ValueError(f"{text!r} is not an RFC 3339 time such as 2026-06-01T00:00:00Z")
    try:
        value = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is not an RFC 3339 time such as 2026-06-01T00:00:00Z"
        ) from None
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone: end it with Z or an offset")
    return value.astimezone(UTC)
