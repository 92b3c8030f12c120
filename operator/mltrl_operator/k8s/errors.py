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


class Unauthorized(ApiError):
    """401 even after a fresh login: the credentials are not (or no longer) accepted."""


class Gone(ApiError):
    """410: a watch's resourceVersion or a list's continue token is too old."""


_BY_STATUS: dict[int, type[ApiError]] = {404: NotFound, 409: Conflict, 401: Unauthorized,
                                         410: Gone}


def raise_for(status: int, body: dict[str, Any] | str) -> None:
    if status < 400:
        return
    raise _BY_STATUS.get(status, ApiError)(status, body)
