"""Alertmanager's webhook notification (payload version "4"), checked whole before any use.

Every problem is reported with the path of the field it is in, e.g.
`alerts[0].labels: must be an object of strings`, so whoever wires Alertmanager (or a
script posting by hand) sees what to fix in the 400 answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mltrl_operator.domain.alerts import FIRING, RESOLVED, Alert
from mltrl_operator.domain.json_body import JsonBodyError, load_json

VERSION = "4"
STATUSES = (FIRING, RESOLVED)


class PayloadError(ValueError):
    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}" if path else problem)


@dataclass(frozen=True)
class ReceivedAlert:
    status: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: str
    ends_at: str | None
    fingerprint: str
    generator_url: str | None

    @property
    def name(self) -> str:
        return self.labels["alertname"]

    def as_domain(self) -> Alert:
        return Alert(
            fingerprint=self.fingerprint,
            name=self.name,
            labels=dict(self.labels),
            starts_at=self.starts_at,
            status=self.status,
        )


@dataclass(frozen=True)
class Notification:
    version: str
    status: str
    receiver: str
    alerts: tuple[ReceivedAlert, ...]
    group_labels: Mapping[str, str]
    common_labels: Mapping[str, str]
    common_annotations: Mapping[str, str]
    external_url: str
    group_key: str
    truncated_alerts: int


def parse_timestamp(text: str) -> datetime:
    """An RFC 3339 timestamp with a zone, as Alertmanager writes them (nanoseconds allowed)."""
    if len(text) < 19 or text[10] not in "Tt":
        raise ValueError("must be an RFC 3339 timestamp, e.g. 2026-11-22T10:00:00Z")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("must be an RFC 3339 timestamp, e.g. 2026-11-22T10:00:00Z") from None
    if parsed.tzinfo is None:
        raise ValueError("must be an RFC 3339 timestamp with a zone (Z or +hh:mm)")
    return parsed


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PayloadError(path, "must be an object")
    return value


def _string(value: Any, path: str, *, required: bool = True) -> str:
    if not isinstance(value, str):
        raise PayloadError(path, "must be a string")
    if required and not value:
        raise PayloadError(path, "must not be empty")
    return value


def _strings(value: Any, path: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise PayloadError(path, "must be an object of strings")
    return dict(value)


def _loose_string(value: Any, path: str) -> str:
    return _string(value, path, required=False)


def _optional(
    document: Mapping[str, Any], key: str, path: str, check: Any, default: Any
) -> Any:
    if key not in document or document[key] is None:
        return default
    return check(document[key], f"{path}{key}")


def _status(value: Any, path: str) -> str:
    if value not in STATUSES:
        raise PayloadError(path, f"must be {FIRING!r} or {RESOLVED!r}")
    return str(value)


def _timestamp(value: Any, path: str) -> str:
    text = _string(value, path)
    try:
        parse_timestamp(text)
    except ValueError as error:
        raise PayloadError(path, str(error)) from None
    return text


def _alert(value: Any, index: int) -> ReceivedAlert:
    path = f"alerts[{index}]"
    document = _object(value, path)
    for key in ("status", "labels", "startsAt", "fingerprint"):
        if key not in document:
            raise PayloadError(f"{path}.{key}", "is required")
    labels = _strings(document["labels"], f"{path}.labels")
    if not labels.get("alertname"):
        raise PayloadError(f"{path}.labels.alertname", "is required")
    return ReceivedAlert(
        status=_status(document["status"], f"{path}.status"),
        labels=labels,
        annotations=_optional(document, "annotations", f"{path}.", _strings, {}),
        starts_at=_timestamp(document["startsAt"], f"{path}.startsAt"),
        ends_at=_optional(document, "endsAt", f"{path}.", _timestamp, None),
        fingerprint=_string(document["fingerprint"], f"{path}.fingerprint"),
        generator_url=_optional(document, "generatorURL", f"{path}.", _loose_string, None),
    )


def _count(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PayloadError(path, "must be a whole number, 0 or more")
    return value


def parse_notification(raw: bytes) -> Notification:
    """The whole notification, or PayloadError naming the first field that is wrong."""
    try:
        document: Any = load_json(raw)
    except JsonBodyError as error:
        raise PayloadError("", f"malformed JSON: {error}") from None
    document = _object(document, "(the body)")
    for key in ("version", "status", "alerts"):
        if key not in document:
            raise PayloadError(key, "is required")
    if document["version"] != VERSION:
        raise PayloadError("version", f"must be {VERSION!r} (Alertmanager's webhook version)")
    if not isinstance(document["alerts"], list):
        raise PayloadError("alerts", "must be a list")
    return Notification(
        version=VERSION,
        status=_status(document["status"], "status"),
        receiver=_optional(document, "receiver", "", _loose_string, ""),
        alerts=tuple(_alert(item, n) for n, item in enumerate(document["alerts"])),
        group_labels=_optional(document, "groupLabels", "", _strings, {}),
        common_labels=_optional(document, "commonLabels", "", _strings, {}),
        common_annotations=_optional(document, "commonAnnotations", "", _strings, {}),
        external_url=_optional(document, "externalURL", "", _loose_string, ""),
        group_key=_optional(document, "groupKey", "", _loose_string, ""),
        truncated_alerts=_optional(document, "truncatedAlerts", "", _count, 0),
    )
