"""AdmissionReview v1 on the wire: the request the API server sends, the answer it expects."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from mltrl_operator.domain.admission import Requester, Verdict
from mltrl_operator.domain.json_body import JsonBodyError, load_json

API_VERSION = "admission.k8s.io/v1"
KIND = "AdmissionReview"
OPERATIONS = frozenset({"CREATE", "UPDATE", "DELETE", "CONNECT"})

Body = dict[str, Any]


class MalformedReview(ValueError):
    """The body is not an AdmissionReview v1 request; answered with HTTP 400."""


class MalformedJson(MalformedReview):
    """The body is not acceptable JSON at all; answered with HTTP 400."""


@dataclass(frozen=True)
class AdmissionRequest:
    uid: str
    group: str
    version: str
    kind: str
    resource: str
    sub_resource: str
    operation: str
    namespace: str
    name: str
    requester: Requester
    object: Body | None
    old_object: Body | None
    dry_run: bool

    @property
    def kind_text(self) -> str:
        return f"{self.kind} ({self.group}/{self.version})" if self.group else (
            f"{self.kind} ({self.version})"
        )


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedReview(f"{what} must be an object")
    return value


def _text(value: Any, what: str, *, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise MalformedReview(f"{what} must be a non-empty string")
    return value


def _object(value: Any, what: str) -> Body | None:
    if value is None:
        return None
    return _mapping(value, what)


def parse_review(payload: Any) -> AdmissionRequest:
    review = _mapping(payload, "the body")
    if review.get("apiVersion") != API_VERSION or review.get("kind") != KIND:
        raise MalformedReview(
            f"expected a {KIND} of {API_VERSION}, got a {review.get('kind')!r} of "
            f"{review.get('apiVersion')!r}"
        )
    request = _mapping(review.get("request"), "request")
    kind = _mapping(request.get("kind"), "request.kind")
    resource = _mapping(request.get("resource"), "request.resource")
    operation = _text(request.get("operation"), "request.operation")
    if operation not in OPERATIONS:
        raise MalformedReview(f"request.operation {operation!r} is not one of {sorted(OPERATIONS)}")
    user = _mapping(request.get("userInfo"), "request.userInfo")
    groups = user.get("groups") or []
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise MalformedReview("request.userInfo.groups must be a list of strings")
    return AdmissionRequest(
        uid=_text(request.get("uid"), "request.uid"),
        group=_text(kind.get("group"), "request.kind.group", required=False),
        version=_text(kind.get("version"), "request.kind.version"),
        kind=_text(kind.get("kind"), "request.kind.kind"),
        resource=_text(resource.get("resource"), "request.resource.resource"),
        sub_resource=_text(request.get("subResource"), "request.subResource", required=False),
        operation=operation,
        namespace=_text(request.get("namespace"), "request.namespace", required=False),
        name=_text(request.get("name"), "request.name", required=False),
        requester=Requester(
            _text(user.get("username"), "request.userInfo.username", required=False),
            frozenset(groups),
        ),
        object=_object(request.get("object"), "request.object"),
        old_object=_object(request.get("oldObject"), "request.oldObject"),
        dry_run=bool(request.get("dryRun")),
    )


def parse_review_body(raw: bytes) -> AdmissionRequest:
    """The request from raw bytes; MalformedReview (400) names what is wrong, including
    JSON that is too deep, not UTF-8, or holds NaN."""
    try:
        payload = load_json(raw)
    except JsonBodyError as error:
        raise MalformedJson(str(error)) from None
    return parse_review(payload)


def review_response(uid: str, verdict: Verdict) -> Body:
    response: Body = {"uid": uid, "allowed": verdict.allowed}
    if not verdict.allowed:
        response["status"] = {
            "status": "Failure",
            "code": verdict.code,
            "reason": verdict.reason,
            "message": verdict.message,
        }
    if verdict.warnings:
        response["warnings"] = list(verdict.warnings)
    if verdict.allowed and verdict.patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(verdict.patch).encode()).decode()
    return {"apiVersion": API_VERSION, "kind": KIND, "response": response}
