"""Validation errors that point at the offending field, as kubectl users expect."""

from __future__ import annotations

from dataclasses import dataclass

TYPES = frozenset(
    {"Forbidden", "Invalid", "Required", "Duplicate", "Not found", "Unsupported value"}
)
"""The API server's field error types (k8s.io/apimachinery field.ErrorType)."""


@dataclass(frozen=True)
class FieldError:
    path: str
    message: str
    type: str = ""
    """The API server's error type (Forbidden, Invalid, Required), shown between path and
    message as kubectl users know it: `spec.entryLevel: Forbidden: ...`."""

    def __post_init__(self) -> None:
        # Issue 15's modules write the type as the message's first word ("Forbidden: ...");
        # it is taken as the type here, so that a refusal never says it twice.
        if not self.type:
            head, _, rest = self.message.partition(": ")
            if head in TYPES and rest:
                object.__setattr__(self, "type", head)
                object.__setattr__(self, "message", rest)

    def __str__(self) -> str:
        if self.type:
            return f"{self.path}: {self.type}: {self.message}"
        return f"{self.path}: {self.message}"
