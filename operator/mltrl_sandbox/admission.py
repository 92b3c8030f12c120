"""Admission hooks: async callables run on create/update/delete before persisting.

Mutating hooks run first and may return a changed object; then the object is pruned,
defaulted and schema-validated; then validating hooks run.  Any hook may refuse the
request by raising `AdmissionDenied`, and add warnings to `request.warnings`.  The
webhook configurations are served this way (webhooks.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .resources import ResourceType
from .users import UserInfo

Obj = dict[str, Any]


@dataclass
class AdmissionRequest:
    """What one hook is asked about. `object` and `old_object` are the hook's own copies
    (it may change them freely), made by `object_source`/`old_object_source` when the hook
    first reads them: most hooks never look (no webhook configured for the kind, not an
    RBAC object), and a copy of a large object on every write is most of a write's cost."""

    operation: str  # "CREATE", "UPDATE" or "DELETE"
    resource: ResourceType
    subresource: str  # "" or "status"
    namespace: str
    name: str
    object_source: Callable[[], Obj | None]  # makes None for DELETE
    old_object_source: Callable[[], Obj | None]  # makes None for CREATE
    user: UserInfo
    dry_run: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    # hooks may add warnings; the client gets them as `Warning` headers
    warnings: list[str] = field(default_factory=list)
    _made: dict[str, Obj | None] = field(default_factory=dict, repr=False, compare=False)

    @property
    def object(self) -> Obj | None:
        if "object" not in self._made:
            self._made["object"] = self.object_source()
        return self._made["object"]

    @property
    def old_object(self) -> Obj | None:
        if "old" not in self._made:
            self._made["old"] = self.old_object_source()
        return self._made["old"]


class AdmissionDenied(Exception):
    """Refuse the request; answered as a Status with this code/reason/message."""

    def __init__(self, message: str, code: int = 400, reason: str = "BadRequest") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.reason = reason


# Returns a replacement object (mutating hooks) or None to leave it as it is.
AdmissionHook = Callable[[AdmissionRequest], Awaitable[Obj | None]]
