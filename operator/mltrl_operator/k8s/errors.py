"""API errors, carrying the server's own Status message."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    def __init__(self, status: int, body: dict[str, Any] | str) -> None:
        self.status = status
        self.body = body if isinstance(body, dict) else {"message": body}
        self.reason = str(self.body.get("reason", ""))
        super().__init__(f"{status} {self.reason}: {self.body.get('message', '')}")


class NotFound(ApiError):
    pass


class Conflict(ApiError):
    pass


def raise_for(status: int, body: dict[str, Any] | str) -> None:
    if status < 400:
        return
    if status == 404:
        raise NotFound(status, body)
    if status == 409:
        raise Conflict(status, body)
    raise ApiError(status, body)
