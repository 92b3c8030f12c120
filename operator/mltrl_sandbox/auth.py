"""Bearer-token authentication and impersonation (`kubectl --as/--as-group`)."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.typedefs import Middleware

from .errors import ApiError, unauthorized

MASTERS = "system:masters"


@dataclass(frozen=True)
class UserInfo:
    username: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # who really sent the request, when it impersonates someone else
    impersonated_by: UserInfo | None = None


ADMIN = UserInfo("admin", (MASTERS, "system:authenticated"))


def user_info_wire(user: UserInfo) -> dict[str, object]:
    """The authentication.k8s.io UserInfo shape, as admission reviews and
    SelfSubjectReviews carry it."""
    info: dict[str, object] = {"username": user.username, "groups": list(user.groups)}
    if user.uid:
        info["uid"] = user.uid
    if user.extra:
        info["extra"] = {key: list(values) for key, values in user.extra.items()}
    return info


class Authenticator:
    """Maps bearer tokens to users; without a token table every token is the admin."""

    def __init__(self, tokens: Mapping[str, tuple[str, list[str]]] | None = None) -> None:
        self.tokens = dict(tokens) if tokens is not None else None

    def authenticate(self, request: web.Request) -> UserInfo:
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if self.tokens is None:
            user = ADMIN
        elif token in self.tokens:
            name, groups = self.tokens[token]
            user = UserInfo(name, (*groups, "system:authenticated"))
        else:
            raise unauthorized()
        return self._impersonate(request, user)

    def rotate(self, username: str) -> str | None:
        """A new token for `username`; its old ones are refused from now on. None: no such
        token user. (Tests rotate the operator's token mid-run, as a kubelet does.)"""
        if self.tokens is None:
            return None
        old = [token for token, (name, _) in self.tokens.items() if name == username]
        if not old:
            return None
        groups = self.tokens[old[0]][1]
        for token in old:
            del self.tokens[token]
        new = secrets.token_urlsafe(18)
        self.tokens[new] = (username, groups)
        return new

    @staticmethod
    def _impersonate(request: web.Request, user: UserInfo) -> UserInfo:
        name = request.headers.get("Impersonate-User")
        groups = tuple(request.headers.getall("Impersonate-Group", []))
        if not name and not groups:
            return user
        if MASTERS not in user.groups:
            raise ApiError(
                403,
                "Forbidden",
                f'users "{name}" is forbidden: User "{user.username}" cannot impersonate '
                'resource "users" in API group "" at the cluster scope',
            )
        if not name:
            raise ApiError(
                400, "BadRequest", "requested Impersonate-Group without Impersonate-User"
            )
        extra: dict[str, tuple[str, ...]] = {}
        for header, value in request.headers.items():
            if header.lower().startswith("impersonate-extra-"):
                key = header[len("impersonate-extra-") :].lower()
                extra[key] = (*extra.get(key, ()), value)
        if "system:authenticated" not in groups and name != "system:anonymous":
            groups = (*groups, "system:authenticated")
        return UserInfo(name, groups, request.headers.get("Impersonate-Uid", ""), extra, user)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


ROTATE_TOKEN_PATH = "/sandbox/rotate-token"
"""POST ?user=NAME, as a system:masters user: {"token": the user's new token}."""


def _rotate_token(authenticator: Authenticator, request: web.Request) -> web.Response:
    try:
        caller = authenticator.authenticate(request)
    except ApiError as err:
        return web.json_response(err.status(), status=err.code)
    if request.method != "POST" or MASTERS not in caller.groups:
        return web.json_response({"message": "only system:masters may rotate tokens"},
                                 status=403)
    token = authenticator.rotate(request.query.get("user", ""))
    if token is None:
        return web.json_response({"message": "no such token user"}, status=404)
    return web.json_response({"token": token})


def auth_middleware(authenticator: Authenticator) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == ROTATE_TOKEN_PATH:
            return _rotate_token(authenticator, request)
        if request.path.startswith("/sandbox/"):
            return await handler(request)
        try:
            user = authenticator.authenticate(request)
        except ApiError as err:
            return web.json_response(err.status(), status=err.code)
        # Readable as request["user"]; stored without __setitem__, which warns about
        # string keys (aiohttp prefers RequestKey objects) on every request.
        request._state["user"] = user
        return await handler(request)

    return middleware
