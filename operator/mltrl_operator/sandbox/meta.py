"""Object metadata helpers: timestamps, human durations, uids, name rules."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

from .errors import FieldError, invalid, required


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def timestamp(moment: dt.datetime | None = None) -> str:
    return (moment or now()).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_timestamp(moment: dt.datetime | None = None) -> str:
    moment = moment or dt.datetime.now(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: Any) -> dt.datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def human_duration(seconds_total: float) -> str:
    """kubectl's duration.HumanDuration (what the AGE column shows)."""
    seconds = int(seconds_total)
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = seconds // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y" if days == 0 else f"{years}y{days}d"
    return f"{hours // 24 // 365}y"


def age(text: Any, reference: dt.datetime | None = None) -> str | None:
    moment = parse_time(text)
    if moment is None:
        return None if text is None else "<invalid>"
    return human_duration(((reference or dt.datetime.now(dt.UTC)) - moment).total_seconds())


def new_uid() -> str:
    return str(uuid.uuid4())


_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_LABEL_RE = re.compile(f"^{_LABEL}$")
_SUBDOMAIN_RE = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")

_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
    "regex used for validation is "
    r"'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)


def name_errors(name: Any, rule: str, path: str = "metadata.name") -> list[FieldError]:
    if not name:
        return [required(path, "name or generateName is required")]
    if not isinstance(name, str):
        return [invalid(path, name, "must be a string")]
    if name in (".", "..") or "/" in name or "%" in name:
        return [invalid(path, name, "may not contain '/' or '%' and may not be '.' or '..'")]
    if rule == "label":
        problems = []
        if len(name) > 63:
            problems.append(invalid(path, name, "must be no more than 63 characters"))
        if not _LABEL_RE.match(name):
            problems.append(invalid(path, name, _LABEL_MSG))
        return problems
    if rule == "subdomain":
        problems = []
        if len(name) > 253:
            problems.append(invalid(path, name, "must be no more than 253 characters"))
        if not _SUBDOMAIN_RE.match(name):
            problems.append(invalid(path, name, _SUBDOMAIN_MSG))
        return problems
    return []
