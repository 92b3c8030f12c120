"""RFC 3339 timestamps in the one form the operator writes."""

from __future__ import annotations

from datetime import UTC, datetime


def rfc3339(now: datetime) -> str:
    """`YYYY-MM-DDTHH:MM:SSZ` in UTC; a naive datetime is taken to be UTC already."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
