"""Who a request comes from: kube-apiserver's user.Info."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"


@dataclass(frozen=True)
class UserInfo:
    username: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # who really sent the request, when it impersonates someone else
    impersonated_by: UserInfo | None = None


ADMIN = UserInfo("admin", (MASTERS, AUTHENTICATED))


def user_info_wire(user: UserInfo) -> dict[str, object]:
    """The authentication.k8s.io UserInfo shape, as admission reviews and
    SelfSubjectReviews carry it."""
    info: dict[str, object] = {"username": user.username, "groups": list(user.groups)}
    if user.uid:
        info["uid"] = user.uid
    if user.extra:
        info["extra"] = {key: list(values) for key, values in user.extra.items()}
    return info
