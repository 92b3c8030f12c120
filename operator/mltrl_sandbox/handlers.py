"""HTTP: Kubernetes-style paths, verbs, content negotiation and watch streams."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

import yaml
from aiohttp import web

from . import discovery, errors, jsonbody, openapi_pb, protobuf, table
from .api import JSON_PATCH, MERGE_PATCH, PATCH_TYPES, STRATEGIC_PATCH, Api, WriteOptions
from .auth import ADMIN
from .openapi import OpenAPICache
from .resources import Obj, Registry, ResourceType
from .stats import Stats
from .store import Event, Watcher

log = logging.getLogger(__name__)

JSON = "application/json"


@dataclass
class Target:
    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str


@dataclass
class Negotiated:
    form: str  # "object", "table" or "partial"
    include_object: str = "Metadata"


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


class WrittenJson:
    """The JSON of the objects written last, by identity. A write's answer and each of its
    watch events (one per watcher) serialize the same stored object, which is never
    changed once stored (store.py), so it is encoded once for all of them."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._by_id: dict[int, tuple[Obj, bytes]] = {}

    def __call__(self, obj: Obj) -> bytes:
        key = id(obj)
        found = self._by_id.get(key)
        if found is not None and found[0] is obj:  # held here, so its id is not reused
            return found[1]
        data = dumps(obj)
        self._by_id[key] = (obj, data)
        if len(self._by_id) > self.size:
            del self._by_id[next(iter(self._by_id))]  # the oldest
        return data


def json_response(
    obj: Any, status: int = 200, warnings: list[str] | None = None, *, body: bytes | None = None
) -> web.Response:
    """`body`: `obj` already encoded."""
    response = web.Response(
        body=dumps(obj) if body is None else body, status=status, content_type=JSON
    )
    for warning in warnings or []:
        response.headers.add("Warning", f"299 - {json.dumps(warning)}")
    return response


_EVENT_TYPES = {name: json.dumps(name).encode() for name in ("ADDED", "MODIFIED", "DELETED")}


def error_response(err: errors.ApiError) -> web.Response:
    return json_response(err.status(), err.code)


NOT_FOUND = errors.ApiError(404, "NotFound", "the server could not find the requested resource", {})


def negotiate(accept: str, params: Any) -> Negotiated:
    """Pick the first answer form in the Accept header the sandbox can produce."""
    include = params.get("includeObject") or "Metadata"
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        opts = dict(f.split("=", 1) for f in fields[1:] if "=" in f)
        if media not in (JSON, "application/*", "*/*", "application/yaml"):
            continue  # e.g. protobuf, which the sandbox does not speak
        if opts.get("g") == "meta.k8s.io" and opts.get("as") == "Table":
            return Negotiated("table", include)
        if opts.get("g") == "meta.k8s.io" and opts.get("as") in (
            "PartialObjectMetadata",
            "PartialObjectMetadataList",
        ):
            return Negotiated("partial")
        if "as" not in opts:
            return Negotiated("object")
    return Negotiated("object")


async def read_limited(request: web.Request) -> bytes:
    """The body, within kube-apiserver's 3 MiB request limit (the server's client_max_size)."""
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise errors.ApiError(
            413,
            "RequestEntityTooLarge",
            f"Request entity too large: limit is {request.app._client_max_size}",
        ) from exc


def _partial(obj: Obj) -> Obj:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj["metadata"],
    }


class Handlers:
    def __init__(
        self,
        api: Api,
        registry: Registry,
        stats: Stats,
        *,
        bookmark_interval: float = 5.0,
        first_bookmark_delay: float = 1.0,
    ) -> None:
        self.api = api
        self.registry = registry
        self.stats = stats
        self.openapi = OpenAPICache(registry)
        self.bookmark_interval = bookmark_interval
        self.first_bookmark_delay = first_bookmark_delay
        self.closing = asyncio.Event()
        self.written = WrittenJson()

    def install(self, app: web.Application) -> None:
        app.router.add_get("/sandbox/stats", self.get_stats)
        app.router.add_post("/sandbox/stats/reset", self.reset_stats)
        app.router.add_route("*", "/{tail:.*}", self.dispatch)

    async def get_stats(self, request: web.Request) -> web.Response:
        return json_response(self.stats.snapshot())

    async def reset_stats(self, request: web.Request) -> web.Response:
        return json_response(self.stats.reset())

    # routing

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        try:
            path = request.path.rstrip("/") or "/"
            if request.method == "GET":
                answer = self._non_resource(request, path)
                if answer is not None:
                    shown = "/openapi/v3/*" if path.startswith("/openapi/v3/") else path
                    self.stats.record("get", shown)
                    return answer
            target = self._target(path)
            if target is None:
                raise NOT_FOUND
            return await self._resource(request, target)
        except errors.ApiError as err:
            return error_response(err)

    def _non_resource(self, request: web.Request, path: str) -> web.Response | None:
        parts = path.strip("/").split("/") if path != "/" else []
        if path in ("/healthz", "/readyz", "/livez"):
            return web.Response(text="ok")
        if path == "/version":
            return json_response(discovery.VERSION_INFO)
        if path == "/api":
            return json_response(discovery.api_versions(request.host))
        if path == "/apis":
            return json_response(discovery.api_group_list(self.registry))
        if len(parts) == 2 and parts[0] == "api":
            found = discovery.api_resource_list(self.registry, parts[1])
            return json_response(found) if found else None
        if len(parts) == 2 and parts[0] == "apis":
            group = discovery.api_group(self.registry, parts[1])
            return json_response(group) if group else None
        if len(parts) == 3 and parts[0] == "apis":
            found = discovery.api_resource_list(self.registry, f"{parts[1]}/{parts[2]}")
            return json_response(found) if found else None
        if path == "/openapi/v2":
            accept = request.headers.get("Accept", JSON)
            if "json" not in accept and openapi_pb.accepted(accept):
                # client-go's OpenAPISchema() asks for gnostic protobuf only; kubectl
                # validates a List's items client-side with it
                return web.Response(
                    body=self.openapi.swagger_protobuf(),
                    headers={"Content-Type": openapi_pb.RESPONSE_TYPE},
                )
            if "json" not in accept and "*/*" not in accept:
                return None
            return web.Response(body=self.openapi.swagger(), content_type=JSON)
        if path == "/openapi/v3":
            return json_response(self.openapi.index())
        if path.startswith("/openapi/v3/"):
            body = self.openapi.document(path[len("/openapi/v3/") :])
            if body is None:
                return None
            return web.Response(body=body, content_type=JSON)
        return None

    def _target(self, path: str) -> Target | None:
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) >= 3:
            gv, rest = parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) >= 4:
            gv, rest = f"{parts[1]}/{parts[2]}", parts[3:]
        else:
            return None
        namespace = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            inner = self.registry.get(gv, rest[2])
            if inner is not None and inner.namespaced:
                namespace, rest = rest[1], rest[2:]
        rt = self.registry.get(gv, rest[0])
        if rt is None or len(rest) > 3:
            return None
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else ""
        if sub and not (
            (sub == "status" and rt.status_subresource) or (sub == "scale" and rt.scale)
        ):
            return None
        if rt.namespaced and name is not None and namespace is None:
            return None
        if not rt.namespaced and namespace is not None:
            return None
        return Target(rt, namespace, name, sub)

    # resources

    def _options(self, request: web.Request) -> WriteOptions:
        q = request.query
        dry = q.getall("dryRun", [])
        if any(d != "All" for d in dry):
            raise errors.bad_request(f"Invalid dry run value: {dry}")
        validation = q.get("fieldValidation", "")
        if validation not in ("", "Strict", "Warn", "Ignore"):
            raise errors.bad_request(f'fieldValidation: Unsupported value: "{validation}"')
        return WriteOptions(
            user=request.get("user", ADMIN),
            dry_run=bool(dry),
            field_validation=validation,
            field_manager=q.get("fieldManager", ""),
            force=q.get("force", "") == "true",
            user_agent=request.headers.get("User-Agent", ""),
        )

    async def _body(self, request: web.Request) -> Any:
        raw = await read_limited(request)
        ctype = request.content_type
        if not raw:
            return None
        if ctype == protobuf.PROTOBUF:
            try:
                return protobuf.decode(raw)
            except (protobuf.ProtobufError, UnicodeDecodeError, ValueError) as exc:
                raise errors.ApiError(415, "UnsupportedMediaType", str(exc)) from exc
        try:
            if ctype in ("application/yaml", "application/x-yaml"):
                return jsonbody.load_yaml(raw.decode())
            if ctype in (JSON, "", "application/octet-stream", "text/plain"):
                return jsonbody.loads(raw)
        except (ValueError, yaml.YAMLError) as exc:
            raise errors.bad_request(f"error decoding request body: {exc}") from exc
        raise errors.unsupported_media_type(ctype)

    def _render(self, rt: ResourceType, obj: Obj, want: Negotiated) -> Obj:
        if want.form == "table":
            return table.table(
                rt,
                [obj],
                include_object=want.include_object,
                resource_version=obj["metadata"].get("resourceVersion", ""),
            )
        if want.form == "partial":
            return _partial(obj)
        return obj

    async def _resource(self, request: web.Request, t: Target) -> web.StreamResponse:
        method = request.method
        q = request.query
        rt = t.rt
        want = negotiate(request.headers.get("Accept", JSON), q)
        record = self.stats.record
        if method == "GET" and t.name is None:
            if q.get("watch") in ("true", "1"):
                record("watch", rt.group_resource)
                return await self._watch(request, t, want)
            record("list", rt.group_resource)
            limit = int(q["limit"]) if q.get("limit", "").isdigit() else None
            listing = self.api.list_objects(
                rt,
                t.namespace,
                q.get("labelSelector"),
                q.get("fieldSelector"),
                limit,
                q.get("continue"),
            )
            meta: Obj = {"resourceVersion": listing.resource_version}
            if listing.continue_token:
                meta["continue"] = listing.continue_token
            if listing.remaining is not None:
                meta["remainingItemCount"] = listing.remaining
            if want.form == "table":
                return json_response(
                    table.table(
                        rt,
                        listing.items,
                        include_object=want.include_object,
                        resource_version=listing.resource_version,
                        continue_token=listing.continue_token,
                        remaining=listing.remaining,
                    )
                )
            if want.form == "partial":
                return json_response(
                    {
                        "kind": "PartialObjectMetadataList",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": meta,
                        "items": [_partial(o) for o in listing.items],
                    }
                )
            return json_response(
                {
                    "kind": rt.list_kind,
                    "apiVersion": rt.api_version,
                    "metadata": meta,
                    "items": listing.items,
                }
            )
        if t.subresource == "scale":
            return await self._scale(request, t)
        if method == "GET":
            record("get", rt.group_resource, t.subresource)
            assert t.name is not None
            return json_response(self._render(rt, self.api.get(rt, t.namespace, t.name), want))
        if rt.virtual is not None:
            if method != "POST" or t.name is not None:
                raise errors.method_not_allowed()
            record("create", rt.group_resource)
            body = await self._body(request)
            if not isinstance(body, dict):
                raise errors.bad_request(
                    f"the object provided is unrecognized (must be of type {rt.kind})"
                )
            if t.namespace:  # LocalSubjectAccessReview: the URL's namespace is the object's
                found = body.get("metadata")
                metadata: Obj = found if isinstance(found, dict) else {}
                if metadata.get("namespace") not in (None, "", t.namespace):
                    raise errors.bad_request("the namespace of the provided object does not "
                                             "match the namespace sent on the request")
                body = {**body, "metadata": {**metadata, "namespace": t.namespace}}
            return json_response(rt.virtual(body, request.get("user", ADMIN)), 201)
        if method == "POST" and t.name is None:
            record("create", rt.group_resource)
            result = await self.api.create(
                rt, t.namespace, await self._body(request), self._options(request)
            )
            return json_response(
                result.shown, 201, result.warnings, body=self.written(result.shown)
            )
        if method == "PUT" and t.name is not None:
            record("update", rt.group_resource, t.subresource)
            result = await self.api.update(
                rt,
                t.namespace,
                t.name,
                await self._body(request),
                self._options(request),
                t.subresource,
            )
            return json_response(
                result.shown, 200, result.warnings, body=self.written(result.shown)
            )
        if method == "PATCH" and t.name is not None:
            record("patch", rt.group_resource, t.subresource)
            ctype = request.content_type
            if ctype not in PATCH_TYPES:
                raise errors.unsupported_media_type(ctype)
            result = await self.api.patch(
                rt,
                t.namespace,
                t.name,
                ctype,
                await read_limited(request),
                self._options(request),
                t.subresource,
            )
            code = 201 if result.created else 200
            return json_response(
                result.shown, code, result.warnings, body=self.written(result.shown)
            )
        if method == "DELETE" and not t.subresource:
            options = await self._body(request) or {}
            if not isinstance(options, dict):
                raise errors.bad_request("DeleteOptions must be an object")
            if "propagationPolicy" in q:
                options["propagationPolicy"] = q["propagationPolicy"]
            opts = self._options(request)
            body_dry_run = options.get("dryRun") or []
            if not isinstance(body_dry_run, list) or any(d != "All" for d in body_dry_run):
                raise errors.bad_request(f"Invalid dry run value: {body_dry_run}")
            # kubectl sends dryRun in the DeleteOptions body, not in the query
            opts.dry_run = opts.dry_run or bool(body_dry_run)
            if t.name is None:
                record("deletecollection", rt.group_resource)
                deleted = await self.api.delete_collection(
                    rt, t.namespace, q.get("labelSelector"), q.get("fieldSelector"), options, opts
                )
                return json_response(
                    {
                        "kind": rt.list_kind,
                        "apiVersion": rt.api_version,
                        "metadata": {},
                        "items": deleted,
                    }
                )
            record("delete", rt.group_resource)
            return json_response(await self.api.delete(rt, t.namespace, t.name, options, opts))
        raise errors.method_not_allowed()

    async def _scale(self, request: web.Request, t: Target) -> web.StreamResponse:
        assert t.name is not None
        self.stats.record(request.method.lower(), t.rt.group_resource, "scale")
        if request.method == "GET":
            return json_response(self.api.get_scale(t.rt, t.namespace, t.name))
        opts = self._options(request)
        if request.method == "PUT":
            body = await self._body(request)
            return json_response(await self.api.write_scale(t.rt, t.namespace, t.name, body, opts))
        if request.method == "PATCH":
            ctype = request.content_type
            if ctype not in (MERGE_PATCH, JSON_PATCH, STRATEGIC_PATCH):
                raise errors.unsupported_media_type(ctype)
            try:
                patch = jsonbody.loads(await read_limited(request))
            except ValueError as exc:
                raise errors.bad_request(f"error decoding patch: {exc}") from exc
            scale = await self.api.write_scale(t.rt, t.namespace, t.name, patch, opts, ctype)
            return json_response(scale)
        raise errors.method_not_allowed()

    # watch

    def _bookmark(self, rt: ResourceType, rv: int, initial_end: bool = False) -> Obj:
        meta: Obj = {"resourceVersion": str(rv)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return {
            "type": "BOOKMARK",
            "object": {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta},
        }

    def _event(self, rt: ResourceType, event: Event, want: Negotiated, first: bool) -> Obj:
        if event.type == "BOOKMARK":
            return self._bookmark(rt, event.rv, initial_end=True)
        obj = self.api.present(rt, event.object)
        if want.form == "table":
            obj = table.table(
                rt,
                [obj],
                include_object=want.include_object,
                headers=first,
                resource_version=obj["metadata"].get("resourceVersion", ""),
            )
        elif want.form == "partial":
            obj = _partial(obj)
        return {"type": event.type, "object": obj}

    def _event_line(self, rt: ResourceType, event: Event, want: Negotiated, first: bool) -> bytes:
        """The event as its line on the stream: the bytes `dumps(self._event(...))` makes,
        with the object's JSON shared by every watcher and the write's answer."""
        type_json = _EVENT_TYPES.get(event.type)
        if want.form != "object" or type_json is None:
            return dumps(self._event(rt, event, want, first)) + b"\n"
        obj = self.written(self.api.present(rt, event.object))
        return b'{"type":' + type_json + b',"object":' + obj + b"}\n"

    async def _watch(self, request: web.Request, t: Target, want: Negotiated) -> web.StreamResponse:
        q = request.query
        rt = t.rt
        response = web.StreamResponse(status=200, headers={"Content-Type": JSON})
        response.enable_chunked_encoding()
        try:
            watcher = self.api.watch(
                rt,
                t.namespace,
                q.get("labelSelector"),
                q.get("fieldSelector"),
                q.get("resourceVersion"),
                q.get("sendInitialEvents") == "true",
            )
        except errors.ApiError as err:
            if err.code != 410:
                raise
            # Like a real server: the stream opens, then reports the expiry as an event.
            await response.prepare(request)
            await response.write(dumps({"type": "ERROR", "object": err.status()}) + b"\n")
            await response.write_eof()
            return response
        try:
            await response.prepare(request)
            await self._stream(request, response, t, watcher, want)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.api.unwatch(rt, watcher)
        return response

    async def _stream(
        self,
        request: web.Request,
        response: web.StreamResponse,
        t: Target,
        watcher: Watcher,
        want: Negotiated,
    ) -> None:
        q = request.query
        loop = asyncio.get_running_loop()
        timeout = q.get("timeoutSeconds", "")
        deadline = loop.time() + int(timeout) if timeout.isdigit() and int(timeout) > 0 else None
        bookmarks = q.get("allowWatchBookmarks") == "true"
        next_bookmark = loop.time() + self.first_bookmark_delay
        first = True
        while not self.closing.is_set():
            now = loop.time()
            if deadline is not None and now >= deadline:
                break
            if bookmarks and now >= next_bookmark and watcher.queue.empty():
                # Events are queued as they are stored, so with an empty queue the current
                # resourceVersion covers everything this watcher was (or was not) sent.
                await response.write(dumps(self._bookmark(t.rt, self.api.store.rv)) + b"\n")
                next_bookmark = now + self.bookmark_interval
            wait = 1.0  # wake up regularly to notice closed connections and shutdown
            if deadline is not None:
                wait = min(wait, deadline - now)
            if bookmarks:
                wait = min(wait, max(next_bookmark - now, 0.0))
            try:
                event = await asyncio.wait_for(watcher.queue.get(), timeout=max(wait, 0.001))
            except TimeoutError:
                transport = request.transport
                if transport is None or transport.is_closing():
                    break
                continue
            if event is None:
                break
            await response.write(self._event_line(t.rt, event, want, first))
            first = False
        await response.write_eof()
