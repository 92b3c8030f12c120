"""Validation errors that point at the offending field, as kubectl users expect."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    path: str
    message: str
    type: str = ""
    """The API server's error type (Forbidden, Invalid, Required), shown between path and
    message as kubectl users know it: `spec.entryLevel: Forbidden: ...`."""

    def __str__(self) -> str:
        if self.type:
            return f"{self.path}: {self.type}: {self.message}"
        return f"{self.path}: {self.message}"
