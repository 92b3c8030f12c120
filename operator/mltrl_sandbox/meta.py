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


_NAME_PART = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_NAME_PART_RE = re.compile(f"^{_NAME_PART}$")
_NAME_PART_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
    "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
    f"used for validation is '{_NAME_PART}')"
)
_LABEL_VALUE_RE = re.compile(f"^({_NAME_PART})?$")
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?"
    "[A-Za-z0-9])?')"
)
MAX_ANNOTATIONS_BYTES = 256 * 1024


def qualified_name_problems(key: str) -> list[str]:
    """Why `key` is not a qualified name (`[prefix/]name`), in the server's words."""
    prefix, slash, name = key.rpartition("/")
    if slash and not prefix:
        return ["prefix part must be non-empty"]
    if "/" in prefix:
        return [
            "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and "
            "must start and end with an alphanumeric character with an optional DNS subdomain "
            "prefix and '/' (e.g. 'example.com/MyName')"
        ]
    problems = []
    if prefix and (len(prefix) > 253 or not _SUBDOMAIN_RE.match(prefix)):
        problems.append(f"prefix part {_SUBDOMAIN_MSG}")
    if not name:
        problems.append("name part must be non-empty")
    elif len(name) > 63:
        problems.append("name part must be no more than 63 characters")
    elif not _NAME_PART_RE.match(name):
        problems.append(_NAME_PART_MSG)
    return problems


def metadata_errors(metadata: dict[str, Any]) -> list[FieldError]:
    """Label, annotation, finalizer and ownerReference checks of ObjectMeta validation."""
    errors: list[FieldError] = []
    labels = metadata.get("labels") or {}
    if not isinstance(labels, dict):
        return [invalid("metadata.labels", labels, "must be a map of strings")]
    for key, value in labels.items():
        errors += [invalid("metadata.labels", key, p) for p in qualified_name_problems(str(key))]
        if not isinstance(value, str):
            errors.append(invalid(f"metadata.labels.{key}", value, "must be a string"))
        elif len(value) > 63:
            errors.append(invalid("metadata.labels", value, "must be no more than 63 characters"))
        elif not _LABEL_VALUE_RE.match(value):
            errors.append(invalid("metadata.labels", value, _LABEL_VALUE_MSG))
    annotations = metadata.get("annotations") or {}
    if not isinstance(annotations, dict):
        return [*errors, invalid("metadata.annotations", annotations, "must be a map of strings")]
    size = 0
    for key, value in annotations.items():
        errors += [
            invalid("metadata.annotations", key, p)
            for p in qualified_name_problems(str(key).lower())
        ]
        if not isinstance(value, str):
            errors.append(invalid(f"metadata.annotations.{key}", value, "must be a string"))
        size += len(str(key)) + len(str(value))
    if size > MAX_ANNOTATIONS_BYTES:
        errors.append(
            FieldError(
                "TooLong",
                "metadata.annotations",
                f"may not be more than {MAX_ANNOTATIONS_BYTES} bytes",
            )
        )
    for i, finalizer in enumerate(metadata.get("finalizers") or []):
        path = f"metadata.finalizers[{i}]"
        errors += [invalid(path, finalizer, p) for p in qualified_name_problems(str(finalizer))]
    controllers = 0
    for i, ref in enumerate(metadata.get("ownerReferences") or []):
        path = f"metadata.ownerReferences[{i}]"
        if not isinstance(ref, dict):
            errors.append(invalid(path, ref, "must be an object"))
            continue
        for key in ("apiVersion", "kind", "name", "uid"):
            if not ref.get(key):
                errors.append(invalid(f"{path}.{key}", "", f"{key} must not be empty"))
        controllers += 1 if ref.get("controller") else 0
    if controllers > 1:
        errors.append(
            invalid(
                "metadata.ownerReferences",
                metadata["ownerReferences"],
                "Only one reference can have Controller set to true",
            )
        )
    return errors
