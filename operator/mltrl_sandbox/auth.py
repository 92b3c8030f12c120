"""Authentication (bearer tokens), impersonation (`kubectl --as/--as-group`) and, in one
place, authorization: every request passes the RBAC authorizer (rbac.py) before any
handler sees it."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from aiohttp.typedefs import Middleware

from .errors import ApiError, unauthorized
from .rbac import Attributes, Authorizer, request_attributes, service_account_name
from .users import ADMIN, AUTHENTICATED, MASTERS, UserInfo, user_info_wire

__all__ = ["ADMIN", "MASTERS", "Authenticator", "UserInfo", "auth_middleware",
           "user_info_wire"]

AUTHENTICATION_GROUP = "authentication.k8s.io"


class Authenticator:
    """Maps bearer tokens to users; without a token table every token is the admin.
    Impersonation needs the `impersonate` verb on what is impersonated."""

    def __init__(
        self,
        tokens: Mapping[str, tuple[str, list[str]]] | None = None,
        authorizer: Authorizer | None = None,
    ) -> None:
        self.tokens = dict(tokens) if tokens is not None else None
        self.authorizer = authorizer

    def authenticate(self, request: web.Request) -> UserInfo:
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if self.tokens is None:
            user = ADMIN
        elif token in self.tokens:
            name, groups = self.tokens[token]
            user = UserInfo(name, tuple(dict.fromkeys((*groups, AUTHENTICATED))))
        else:
            raise unauthorized()
        return self._impersonate(request, user)

    def _may(self, user: UserInfo, resource: str, name: str, *, group: str = "",
             namespace: str = "", subresource: str = "") -> None:
        attrs = Attributes(user, "impersonate", True, group, "v1", resource, subresource,
                           namespace, name)
        if self.authorizer is not None:
            self.authorizer.check(attrs)
        elif MASTERS not in user.groups:
            raise ApiError(403, "Forbidden", "impersonation needs an authorizer")

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

    def _impersonate(self, request: web.Request, user: UserInfo) -> UserInfo:
        name = request.headers.get("Impersonate-User")
        groups = tuple(request.headers.getall("Impersonate-Group", []))
        uid = request.headers.get("Impersonate-Uid", "")
        if not name and not groups:
            return user
        if not name:
            raise ApiError(
                400, "BadRequest", "requested Impersonate-Group without Impersonate-User"
            )
        account = service_account_name(name)
        if account:
            self._may(user, "serviceaccounts", account[1], namespace=account[0])
        else:
            self._may(user, "users", name)
        for group in groups:
            self._may(user, "groups", group)
        if account:  # a service account's own groups come with it, unrequested
            groups = (*groups, "system:serviceaccounts", f"system:serviceaccounts:{account[0]}")
        if uid:
            self._may(user, "uids", uid, group=AUTHENTICATION_GROUP)
        extra: dict[str, tuple[str, ...]] = {}
        for header, value in request.headers.items():
            if header.lower().startswith("impersonate-extra-"):
                key = header[len("impersonate-extra-") :].lower()
                self._may(user, "userextras", value, group=AUTHENTICATION_GROUP,
                          subresource=key)
                extra[key] = (*extra.get(key, ()), value)
        if AUTHENTICATED not in groups and name != "system:anonymous":
            groups = (*groups, AUTHENTICATED)
        return UserInfo(name, tuple(dict.fromkeys(groups)), uid, extra, user)


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
            if authenticator.authorizer is not None:
                authenticator.authorizer.check(
                    request_attributes(user, request.method, request.path, request.query)
                )
        except ApiError as err:
            return web.json_response(err.status(), status=err.code)
        # Readable as request["user"]; stored without __setitem__, which warns about
        # string keys (aiohttp prefers RequestKey objects) on every request.
        request._state["user"] = user
        return await handler(request)

    return middleware
