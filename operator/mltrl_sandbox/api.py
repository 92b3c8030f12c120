"""The API semantics: create/get/list/update/patch/delete/watch on the store.

HTTP handlers are thin wrappers around `Api`; everything a real API server decides
(validation, conflicts, finalizers, generation, garbage collection, namespace
lifecycle, CRD registration, admission) is decided here.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import copy
import functools
import json
import logging
import secrets as pysecrets
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import yaml

from . import cel, errors, fieldmanager, jsonbody, jsonpath, meta, schema, strategies
from . import crds as crdlib
from .admission import AdmissionDenied, AdmissionHook, AdmissionRequest
from .auth import ADMIN, UserInfo
from .patch import PatchError, json_patch, merge_patch, strategic_merge
from .resources import Obj, Registry, ResourceType
from .selectors import (
    FieldRequirement,
    Requirement,
    SelectorError,
    fields_match,
    labels_match,
    parse_field_selector,
    parse_label_selector,
)
from .store import Event, Store, TooOld, Watcher, object_key

log = logging.getLogger(__name__)
_T = TypeVar("_T")

CRD_STORAGE = "customresourcedefinitions.apiextensions.k8s.io"
NAMESPACES = "namespaces"
# the NamespaceLifecycle admission plugin refuses to delete these
IMMORTAL_NAMESPACES = ("default", "kube-system", "kube-public")

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = (
    MERGE_PATCH,
    JSON_PATCH,
    STRATEGIC_PATCH,
    APPLY_PATCH,
    "application/apply-patch+cbor",
)

# metadata the server owns: never taken from a client's body on update
_SERVER_META = (
    "uid",
    "creationTimestamp",
    "generation",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)
# a delay before collecting dependents whose owners never existed (the real GC is not instant)
ABSENT_OWNER_DELAY = 0.5

RACE_RETRIES = 16
"""How often a write without a resourceVersion is tried again on the newer object when
another write landed while its admission ran (kube-apiserver's GuaranteedUpdate loops)."""


class _Raced(Exception):
    """The object changed while this write's admission ran: start again from the new one."""


def _names_resource_version(patch: Any) -> bool:
    """Whether a patch sets metadata.resourceVersion, making it a precondition (a JSON
    patch's `test` of it is checked when the patch is applied again instead)."""
    if isinstance(patch, dict):
        return "resourceVersion" in (patch.get("metadata") or {})
    if isinstance(patch, list):
        return any(isinstance(op, dict) and op.get("op") != "test"
                   and op.get("path") == "/metadata/resourceVersion" for op in patch)
    return False


@dataclass
class WriteOptions:
    user: UserInfo = ADMIN
    dry_run: bool = False
    field_validation: str = ""  # "", "Strict", "Warn" or "Ignore"
    field_manager: str = ""
    force: bool = False
    user_agent: str = ""
    # managedFields for a create that is an apply (set by `patch`)
    applied_fields: list[Obj] | None = None

    @property
    def manager(self) -> str:
        """The fieldManager, else the User-Agent's product (as kube-apiserver does)."""
        return self.field_manager or self.user_agent.split("/", 1)[0][:128] or "unknown"


@dataclass
class WriteResult:
    """`shown`: the object as written, presented in the client's version; it may be the
    stored object itself, so it is read-only (the HTTP handlers only serialize it).
    `object` is a private copy of it for callers in this process, made when first read."""

    shown: Obj
    warnings: list[str] = field(default_factory=list)
    created: bool = False

    @functools.cached_property
    def object(self) -> Obj:
        return clone(self.shown)


@dataclass
class ListResult:
    items: list[Obj]
    resource_version: str
    continue_token: str = ""
    remaining: int | None = None


def clone(obj: _T) -> _T:
    """A private deep copy of JSON data (several times faster than copy.deepcopy)."""
    return cast(_T, json.loads(json.dumps(obj)))


class _NotPlain(Exception):
    """A value that is not plain JSON data (a tuple, a key that is not a string, ...)."""


def _copy_plain(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        copied = {key: _copy_plain(item) for key, item in value.items()}
        if not all(type(key) is str for key in copied):
            raise _NotPlain()
        return copied
    if kind is list:
        return [_copy_plain(item) for item in value]
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value  # immutable
    raise _NotPlain()


def copy_json(obj: _T) -> _T:
    """What `clone` makes, made faster for plain JSON data (dicts with string keys, lists,
    strings, numbers, booleans, null): copied in place of the JSON round trip; anything
    else takes the round trip, so the result is the same in every case."""
    try:
        return cast(_T, _copy_plain(obj))
    except (_NotPlain, RecursionError):
        return clone(obj)


def _content(obj: Obj, rt: ResourceType) -> Obj:
    """What `generation` tracks: everything but metadata (and status, if a subresource)."""
    skip = {"metadata", "apiVersion", "kind"}
    if rt.status_subresource:
        skip.add("status")
    return {k: v for k, v in obj.items() if k not in skip}


def _same_object(a: Obj, b: Obj) -> bool:
    ma = {k: v for k, v in a["metadata"].items() if k != "resourceVersion"}
    mb = {k: v for k, v in b["metadata"].items() if k != "resourceVersion"}
    rest_a = {k: v for k, v in a.items() if k not in ("metadata", "apiVersion")}
    rest_b = {k: v for k, v in b.items() if k not in ("metadata", "apiVersion")}
    return ma == mb and rest_a == rest_b


_META_GO_TYPES = {
    "labels": (dict, "map[string]string"),
    "annotations": (dict, "map[string]string"),
    "finalizers": (list, "[]string"),
    "ownerReferences": (list, "[]v1.OwnerReference"),
    "managedFields": (list, "[]v1.ManagedFieldsEntry"),
    "name": (str, "string"),
    "generateName": (str, "string"),
    "namespace": (str, "string"),
}


def _go_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "string"


def _check_metadata_types(metadata: Obj) -> None:
    """What Go's decoder refuses in ObjectMeta (e.g. `annotations: []`): a 400, as there."""
    for key, (kind, go_type) in _META_GO_TYPES.items():
        value = metadata.get(key)
        if value is not None and not isinstance(value, kind):
            raise errors.bad_request(
                f"json: cannot unmarshal {_go_kind(value)} into Go struct field "
                f"ObjectMeta.metadata.{key} of type {go_type}"
            )


# etcd's default request limit (--max-request-bytes): the largest object it will store
MAX_OBJECT_BYTES = 1536 * 1024


def _check_size(obj: Obj) -> None:
    size = len(json.dumps(obj, separators=(",", ":")))
    if size > MAX_OBJECT_BYTES:
        raise errors.ApiError(
            413,
            "RequestEntityTooLarge",
            f"etcdserver: request is too large ({size} bytes; etcd stores at most "
            f"{MAX_OBJECT_BYTES})",
        )


def _decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()).decode())
        return int(data["rv"]), (str(data["start"][0]), str(data["start"][1]))
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise errors.bad_request(f"continue key is not valid: {exc}") from exc


_CONTINUE_EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this "
    "response to retrieve the remainder of the results. Continuing with the provided token "
    "results in an inconsistent list - objects that were created, modified, or deleted "
    "between the time the first chunk was returned and now may show up in the list."
)


def _encode_continue(rv: int, key: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps({"rv": rv, "start": list(key)}).encode()).decode()


@dataclass(frozen=True)
class _Listing:
    """One storage's objects (of one namespace, or all) at one resourceVersion, in key
    order: what the pages of one paginated list are cut from."""

    objects: list[Obj]
    keys: list[tuple[str, str]]


class _Listings:
    """The listings that paginated lists are being read from, by (storage, namespace, rv).

    Every page of a list shows the first page's snapshot. Rebuilding that snapshot for each
    page (undoing history, sorting every key) made a list of n objects cost n**2/limit: at
    50,000 technologies and kopf's 500 a page, 7 s of CPU instead of 0.2 s. kube-apiserver
    reads each page as a range from etcd (or its watch cache) from where the last one ended;
    this keeps the snapshot and bisects to the continue key. Stored objects are never
    modified, so a listing holds references, not copies."""

    def __init__(self, limit: int = 16) -> None:
        self.limit = limit
        self._kept: OrderedDict[tuple[str, str | None, int], _Listing] = OrderedDict()

    def get(self, key: tuple[str, str | None, int]) -> _Listing | None:
        found = self._kept.get(key)
        if found is not None:
            self._kept.move_to_end(key)
        return found

    def keep(self, key: tuple[str, str | None, int], objects: list[Obj]) -> _Listing:
        listing = _Listing(objects, [object_key(o) for o in objects])
        self._kept[key] = listing
        while len(self._kept) > self.limit:
            self._kept.popitem(last=False)
        return listing


class Api:
    def __init__(self, registry: Registry, store: Store) -> None:
        self.registry = registry
        self.store = store
        self.mutating_admission: list[AdmissionHook] = []
        self.validating_admission: list[AdmissionHook] = []
        self._next_ip = 1
        self._listings = _Listings()

    # presentation and lookup

    def present(self, rt: ResourceType, obj: Obj) -> Obj:
        """The stored object as the client's group/version sees it."""
        if rt.to_view is not None:
            obj = rt.to_view(obj)
        if obj.get("apiVersion") != rt.api_version or obj.get("kind") != rt.kind:
            obj = {**obj, "apiVersion": rt.api_version, "kind": rt.kind}
        return obj

    def answer(self, rt: ResourceType, obj: Obj) -> Obj:
        """A private copy for callers: stored objects must never be modified in place."""
        return clone(self.present(rt, obj))

    def _answer_or_none(self, rt: ResourceType, obj: Obj | None) -> Obj | None:
        return None if obj is None else self.answer(rt, obj)

    def _stored(self, rt: ResourceType, namespace: str | None, name: str) -> Obj:
        obj = self.store.get(rt.storage, namespace if rt.namespaced else None, name)
        if obj is None:
            raise errors.not_found(rt.group, rt.plural, name)
        return obj

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> Obj:
        return self.answer(rt, self._stored(rt, namespace, name))

    # selectors

    def _field_value(self, rt: ResourceType) -> Callable[[Mapping[str, Any], str], Any]:
        def value(obj: Mapping[str, Any], label: str) -> Any:
            if label == "metadata.name":
                return obj["metadata"].get("name")
            if label == "metadata.namespace":
                return obj["metadata"].get("namespace")
            return jsonpath.first(obj, rt.selectable_fields[label])

        return value

    def parse_selectors(
        self, rt: ResourceType, label_selector: str | None, field_selector: str | None
    ) -> tuple[tuple[Requirement, ...], tuple[FieldRequirement, ...]]:
        try:
            labels = parse_label_selector(label_selector)
            fields = parse_field_selector(field_selector)
        except SelectorError as exc:
            raise errors.bad_request(str(exc)) from exc
        for req in fields:
            if (
                req.field not in ("metadata.name", "metadata.namespace")
                and req.field not in rt.selectable_fields
            ):
                raise errors.bad_request(f"field label not supported: {req.field}")
        return labels, fields

    def matcher(
        self,
        rt: ResourceType,
        namespace: str | None,
        labels: tuple[Requirement, ...],
        fields: tuple[FieldRequirement, ...],
    ) -> Callable[[Obj], bool]:
        value = self._field_value(rt)

        def matches(obj: Obj) -> bool:
            m = obj["metadata"]
            if namespace is not None and m.get("namespace") != namespace:
                return False
            return labels_match(labels, m.get("labels")) and fields_match(fields, obj, value)

        return matches

    # reading

    def list_objects(
        self,
        rt: ResourceType,
        namespace: str | None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> ListResult:
        """Matching objects in key order; the items are the stored objects themselves
        (no copy, so a 10,000-item list stays cheap): treat them as read-only."""
        labels, fields = self.parse_selectors(rt, label_selector, field_selector)
        ns = namespace if rt.namespaced else None
        rv = self.store.rv
        by_name = [f.value for f in fields if f.field == "metadata.name" and not f.negate]
        matches = self.matcher(rt, ns, labels, fields)
        paged = bool(limit and limit > 0)
        if continue_token:
            # Every page of a list shows the first page's snapshot (etcd reads at its rv).
            rv, start = _decode_continue(continue_token)
            try:
                self.store.require_history(rt.storage, rv)
                listing = self._listings.get((rt.storage, ns, rv))
                if listing is None:
                    listing = self._listings.keep(
                        (rt.storage, ns, rv), self.store.snapshot(rt.storage, ns, rv))
            except TooOld as exc:
                raise errors.gone(_CONTINUE_EXPIRED) from exc
            objects, first = listing.objects, bisect.bisect_right(listing.keys, start)
        elif by_name and (ns is not None or not rt.namespaced):
            # A name lookup (kubectl wait/delete, informers by name) needs no scan.
            found = self.store.get(rt.storage, ns, by_name[0])
            objects, first = ([found] if found is not None else []), 0
        elif paged:
            # kept for the pages that follow
            key = (rt.storage, ns, rv)
            objects, first = self._listings.keep(key, self.store.list(rt.storage, ns)).objects, 0
        else:
            objects, first = self.store.list(rt.storage, ns), 0
        if not paged:
            selected = [o for o in objects[first:] if matches(o)]
            return ListResult([self.present(rt, o) for o in selected], str(rv))
        assert limit is not None
        selected = []
        for index in range(first, len(objects)):
            if matches(objects[index]):
                if len(selected) == limit:
                    break  # one more than a page: there is a next page
                selected.append(objects[index])
        else:
            index = len(objects)
        token = ""
        remaining = None
        if index < len(objects):
            token = _encode_continue(rv, object_key(selected[-1]))
            if not (labels or fields):
                # kube-apiserver counts the rest only when nothing filters it (etcd's count
                # of the range); with a selector remainingItemCount is left unset.
                remaining = len(objects) - index
        return ListResult([self.present(rt, o) for o in selected], str(rv), token, remaining)

    def watch(
        self,
        rt: ResourceType,
        namespace: str | None,
        label_selector: str | None,
        field_selector: str | None,
        resource_version: str | None,
        send_initial_events: bool = False,
    ) -> Watcher:
        labels, fields = self.parse_selectors(rt, label_selector, field_selector)
        ns = namespace if rt.namespaced else None
        watcher = Watcher(self.matcher(rt, ns, labels, fields))
        if resource_version in (None, "", "0") or send_initial_events:
            # "Start from now" is preceded by a synthetic ADDED per existing object.
            rv = self.store.rv
            for obj in self.store.list(rt.storage, ns):
                if watcher.matches(obj):
                    watcher.queue.put_nowait(Event("ADDED", obj, None, rv))
            if send_initial_events:
                watcher.queue.put_nowait(Event("BOOKMARK", {}, None, rv))
            self.store.subscribe(rt.storage, watcher, None)
            return watcher
        try:
            since = int(str(resource_version))
        except ValueError as exc:
            raise errors.bad_request(
                f'resourceVersion: Invalid value: "{resource_version}": must be a number'
            ) from exc
        if since > self.store.rv:
            # A version this server never reached (a client of a sandbox that restarted):
            # kube-apiserver's watch cache answers this, and clients relist.
            raise errors.ApiError(
                504,
                "Timeout",
                f"Timeout: Too large resource version: {since}, current: {self.store.rv}",
                {
                    "causes": [
                        {
                            "reason": "ResourceVersionTooLarge",
                            "message": "Too large resource version",
                        }
                    ],
                    "retryAfterSeconds": 1,
                },
            )
        try:
            self.store.subscribe(rt.storage, watcher, since)
        except TooOld as exc:
            raise errors.gone(str(exc)) from exc
        return watcher

    def unwatch(self, rt: ResourceType, watcher: Watcher) -> None:
        self.store.unsubscribe(rt.storage, watcher)

    # decoding and normalising request bodies

    def _decode(
        self, rt: ResourceType, body: Any, namespace: str | None, *, private: bool = False
    ) -> Obj:
        """The body as an object of this type to write; `private`: the body is this
        request's own (nothing else holds any part of it), so it is used, not copied."""
        if not isinstance(body, dict):
            raise errors.bad_request(
                f"the object provided is unrecognized (must be of type {rt.kind})"
            )
        api_version = body.get("apiVersion")
        if api_version and api_version != rt.api_version:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected "
                f"API version ({rt.api_version})"
            )
        kind = body.get("kind")
        if kind and kind != rt.kind:
            raise errors.bad_request(
                f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
            )
        obj = body if private else copy_json(body)
        obj["apiVersion"] = rt.api_version
        obj["kind"] = rt.kind
        if not isinstance(obj.get("metadata"), dict):
            obj["metadata"] = {}
        m = obj["metadata"]
        _check_metadata_types(m)
        if rt.namespaced:
            if m.get("namespace") and namespace and m["namespace"] != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent "
                    "on the request"
                )
            m["namespace"] = namespace or m.get("namespace") or "default"
        else:
            m.pop("namespace", None)
        if rt.from_view is not None:
            obj = rt.from_view(obj)
        return obj

    def _normalize(self, rt: ResourceType, obj: Obj, opts: WriteOptions, verb: str) -> list[str]:
        unknown = schema.prune(obj, rt.value_schema())
        warnings: list[str] = []
        if unknown and opts.field_validation == "Strict":
            detail = "strict decoding error: " + ", ".join(f'unknown field "{u}"' for u in unknown)
            if verb != "patch":
                handled = f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}'
                detail = f"{handled}: {detail}"
            raise errors.bad_request(detail)
        if unknown and opts.field_validation in ("", "Warn"):  # Warn is the server default
            warnings = [f'unknown field "{u}"' for u in unknown]
        schema.apply_defaults(obj, rt.value_schema())
        return warnings

    # admission

    async def _admit(
        self,
        hooks: list[AdmissionHook],
        rt: ResourceType,
        operation: str,
        subresource: str,
        obj: Obj | None,
        old: Obj | None,
        opts: WriteOptions,
        *,
        mutating: bool,
        warnings: list[str] | None = None,
    ) -> Obj | None:
        source = obj if obj is not None else old
        assert source is not None
        m = source["metadata"]
        for hook in hooks:
            request = AdmissionRequest(
                operation=operation,
                resource=rt,
                subresource=subresource,
                namespace=m.get("namespace") or "",
                name=m.get("name") or "",
                # the hook's private copies, made if and when it reads them
                object_source=functools.partial(self._answer_or_none, rt, obj),
                old_object_source=functools.partial(self._answer_or_none, rt, old),
                user=opts.user,
                dry_run=opts.dry_run,
            )
            try:
                result = await hook(request)
            except AdmissionDenied as denied:
                raise errors.ApiError(denied.code, denied.reason, denied.message) from denied
            if warnings is not None:
                warnings.extend(request.warnings)
            if mutating and result is not None and obj is not None:
                obj = self._decode(rt, result, m.get("namespace"))
                schema.prune(obj, rt.value_schema())
                schema.apply_defaults(obj, rt.value_schema())
        return obj

    # create

    def _require_namespace(self, namespace: str) -> None:
        ns = self.store.get(NAMESPACES, None, namespace)
        if ns is None:
            raise errors.not_found("", NAMESPACES, namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise errors.forbidden(
                "",
                "",
                "",
                f"unable to create new content in namespace {namespace} because it is being "
                "terminated",
            )

    def _cluster_ip(self) -> str:
        self._next_ip += 1
        return f"10.96.{self._next_ip // 250}.{self._next_ip % 250 + 1}"

    async def create(
        self, rt: ResourceType, namespace: str | None, body: Any, opts: WriteOptions | None = None
    ) -> WriteResult:
        opts = opts or WriteOptions()
        obj = self._decode(rt, body, namespace)
        m = obj["metadata"]
        if rt.namespaced:
            self._require_namespace(m["namespace"])
        if not m.get("name") and m.get("generateName"):
            m["name"] = f"{m['generateName']}{pysecrets.token_hex(3)[:5]}"
        warnings = self._normalize(rt, obj, opts, "create")
        for key in (*_SERVER_META, "resourceVersion", "selfLink", "managedFields"):
            m.pop(key, None)
        if rt.status_subresource:
            obj.pop("status", None)
        if rt.builtin:
            cluster_ip = self._cluster_ip() if rt.group_resource == "services" else ""
            strategies.prepare(rt, obj, None, cluster_ip)
        if rt.storage == CRD_STORAGE:
            crdlib.crd_defaults(obj)
        mutated = await self._admit(
            self.mutating_admission,
            rt,
            "CREATE",
            "",
            obj,
            None,
            opts,
            mutating=True,
            warnings=warnings,
        )
        assert mutated is not None
        obj = mutated
        m = obj["metadata"]
        problems = meta.name_errors(m.get("name"), rt.name_rule) + meta.metadata_errors(m)
        problems += schema.validate(obj, rt.value_schema())
        if rt.builtin:
            problems += strategies.validation_errors(rt, obj, None)
        elif not problems:
            problems += cel.rule_errors(obj, rt.schema)
        if rt.storage == CRD_STORAGE:
            problems += crdlib.validate_crd(obj)
        if problems:
            raise errors.invalid_object(rt.group, rt.kind, m.get("name") or "", problems)
        await self._admit(
            self.validating_admission,
            rt,
            "CREATE",
            "",
            obj,
            None,
            opts,
            mutating=False,
            warnings=warnings,
        )
        if self.store.get(rt.storage, m.get("namespace"), m["name"]) is not None:
            raise errors.already_exists(rt.group, rt.plural, m["name"])
        m["uid"] = meta.new_uid()
        m["creationTimestamp"] = meta.timestamp()
        if rt.tracks_generation:
            m["generation"] = 1
        if rt.storage == CRD_STORAGE:
            obj["status"] = crdlib.established_status(obj)
        if opts.applied_fields is not None:
            m["managedFields"] = opts.applied_fields
        else:
            m["managedFields"] = fieldmanager.updated(rt, None, obj, opts.manager)
        _check_size(obj)
        if opts.dry_run:
            return WriteResult(self.present(rt, obj), warnings, created=True)
        self.store.put(rt.storage, obj, None)
        if rt.storage == CRD_STORAGE:
            self._register_crd(obj)
        self._check_owners(rt.storage, obj)
        return WriteResult(self.present(rt, obj), warnings, created=True)

    # update and patch

    async def update(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        body: Any,
        opts: WriteOptions | None = None,
        subresource: str = "",
    ) -> WriteResult:
        opts = opts or WriteOptions()
        old = self._stored(rt, namespace, name)
        obj = self._decode(rt, body, namespace)
        body_name = obj["metadata"].get("name")
        if body_name and body_name != name:
            raise errors.bad_request(
                f"the name of the object ({body_name}) does not match the name on the URL ({name})"
            )
        obj["metadata"]["name"] = name
        if not obj["metadata"].get("resourceVersion") and not rt.builtin:
            # Custom resources refuse unconditional updates (AllowUnconditionalUpdate=false).
            raise errors.invalid_object(
                rt.group,
                rt.kind,
                name,
                [errors.invalid("metadata.resourceVersion", 0, "must be specified for an update")],
            )
        for _ in range(RACE_RETRIES):
            try:
                return await self._write_update(
                    rt, old, copy_json(obj), opts, subresource, "update",
                    retry=not obj["metadata"].get("resourceVersion"),
                )
            except _Raced:
                old = self._stored(rt, namespace, name)
        raise errors.conflict(rt.group, rt.plural, name)

    def _patched(self, rt: ResourceType, old: Obj, patch_type: str, patch: Any) -> Any:
        current = copy_json(self.present(rt, old))
        try:
            if patch_type == MERGE_PATCH:
                if not isinstance(patch, dict):
                    raise PatchError("merge patch must be a JSON object", 400)
                return merge_patch(current, patch)
            if patch_type == JSON_PATCH:
                return json_patch(current, patch)
            if patch_type == STRATEGIC_PATCH:
                if not isinstance(patch, dict):
                    raise PatchError("strategic merge patch must be a JSON object", 400)
                return strategic_merge(current, patch, None, rt.value_schema())
            raise PatchError(f"unsupported patch type {patch_type}", 415)
        except PatchError as exc:
            reason = "BadRequest" if exc.code == 400 else "Invalid"
            raise errors.ApiError(exc.code, reason, str(exc)) from exc

    async def patch(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        patch_type: str,
        raw: bytes,
        opts: WriteOptions | None = None,
        subresource: str = "",
    ) -> WriteResult:
        opts = opts or WriteOptions()
        if patch_type not in PATCH_TYPES or patch_type == "application/apply-patch+cbor":
            raise errors.unsupported_media_type(patch_type)
        if patch_type == STRATEGIC_PATCH and not rt.builtin:
            # Custom resources have no Go structs to carry patch strategies.
            raise errors.ApiError(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types "
                "include: application/json-patch+json, application/merge-patch+json, "
                "application/apply-patch+yaml",
            )
        try:
            text = raw.decode("utf-8")
            patch = jsonbody.load_yaml(text) if patch_type == APPLY_PATCH else jsonbody.loads(text)
        except (UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
            raise errors.bad_request(f"error decoding patch: {exc}") from exc
        if patch_type == APPLY_PATCH and not opts.field_manager:
            raise errors.bad_request("fieldManager is required for apply requests")
        # A patch is applied to the object as stored when it is written (GuaranteedUpdate):
        # if another write lands while admission runs, it is applied again on top of that
        # one, and a JSON patch's `test` meets the newer object.
        for _ in range(RACE_RETRIES):
            old = self.store.get(rt.storage, namespace if rt.namespaced else None, name)
            try:
                if patch_type == APPLY_PATCH:
                    return await self._apply(
                        rt, namespace, name, old, copy_json(patch), opts, subresource
                    )
                if old is None:
                    raise errors.not_found(rt.group, rt.plural, name)
                patched = self._patched(rt, old, patch_type, patch)
                # merge and JSON patches are applied to a copy of the object and copy what
                # they take from the patch: the result shares nothing (a strategic merge
                # may share list items of the patch, which a retry applies again)
                private = patch_type in (MERGE_PATCH, JSON_PATCH)
                obj = self._decode(rt, patched, namespace, private=private)
                if obj["metadata"].get("name") != name:
                    raise errors.bad_request(
                        f"the name of the object ({obj['metadata'].get('name')}) does not "
                        f"match the name on the URL ({name})"
                    )
                return await self._write_update(rt, old, obj, opts, subresource, "patch",
                                                retry=not _names_resource_version(patch))
            except _Raced:
                continue
        raise errors.conflict(rt.group, rt.plural, name)

    async def _apply(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        old: Obj | None,
        config: Any,
        opts: WriteOptions,
        subresource: str,
    ) -> WriteResult:
        """Server-side apply: field ownership decides what merges, conflicts and goes."""
        if not isinstance(config, dict):
            raise errors.bad_request("apply configuration must be an object")
        for key in ("apiVersion", "kind"):
            if not config.get(key):
                raise errors.bad_request(f"{key} must be set")
        config.setdefault("metadata", {}).setdefault("name", name)
        if not isinstance(config["metadata"], dict):
            raise errors.bad_request("metadata must be an object")
        decoded = self._decode(rt, config, namespace)
        if decoded["metadata"].get("name") != name:
            raise errors.bad_request(
                f"the name of the object ({decoded['metadata'].get('name')}) does not match "
                f"the name on the URL ({name})"
            )
        if old is None:
            if subresource:
                raise errors.not_found(rt.group, rt.plural, name)
            paths = fieldmanager.field_set(rt, decoded)
            entry = fieldmanager.apply_entry(rt, opts.manager, set(paths), subresource)
            opts.applied_fields = [entry]
            return await self.create(rt, namespace, config, opts)
        try:
            merged, managed = fieldmanager.apply(
                rt,
                copy_json(old),
                decoded,
                opts.manager,
                force=opts.force,
                subresource=subresource,
            )
        except fieldmanager.Conflicts as conflicts:
            details = dict(errors.conflict(rt.group, rt.plural, name).details or {})
            details["causes"] = [
                {
                    "type": "FieldManagerConflict",
                    "message": f'conflict with "{manager}" using {version}',
                    "field": path,
                }
                for path, manager, version in conflicts.conflicts
            ]
            raise errors.ApiError(409, "Conflict", str(conflicts), details) from conflicts
        wanted_rv = decoded["metadata"].get("resourceVersion")
        merged["metadata"]["resourceVersion"] = wanted_rv or old["metadata"]["resourceVersion"]
        obj = self._decode(rt, self.present(rt, merged), namespace)
        return await self._write_update(rt, old, obj, opts, subresource, "patch", managed,
                                        retry=not wanted_rv)

    async def _write_update(
        self,
        rt: ResourceType,
        old: Obj,
        obj: Obj,
        opts: WriteOptions,
        subresource: str,
        verb: str,
        managed: list[Obj] | None = None,
        *,
        retry: bool = False,
    ) -> WriteResult:
        """`retry`: the client named no resourceVersion, so a write that lands meanwhile
        makes the caller apply its change again (`_Raced`) rather than a 409."""
        name = old["metadata"]["name"]
        owners = old  # whose managedFields the write starts from
        requested_rv = obj["metadata"].get("resourceVersion")
        if requested_rv and requested_rv != old["metadata"]["resourceVersion"]:
            raise errors.conflict(rt.group, rt.plural, name)
        requested_uid = obj["metadata"].get("uid")
        if requested_uid and requested_uid != old["metadata"].get("uid"):
            # A write meant for an earlier object of the same name must not land on this one.
            raise errors.conflict(
                rt.group,
                rt.plural,
                name,
                f"Precondition failed: UID in precondition: {requested_uid}, "
                f"UID in object meta: {old['metadata'].get('uid')}",
            )
        warnings = self._normalize(rt, obj, opts, verb)
        if subresource == "status":
            status = obj.get("status")
            # The stored object with the new status: what is taken from `old` is shared,
            # not copied (stored objects are never modified; only this write's own
            # metadata dict and status are changed below)
            obj = {**old, "metadata": dict(old["metadata"])}
            if status is None:
                obj.pop("status", None)
            else:
                obj["status"] = status
        else:
            m = obj["metadata"]
            for key in _SERVER_META:
                if key in old["metadata"]:
                    m[key] = old["metadata"][key]
                else:
                    m.pop(key, None)
            requested = m.pop("managedFields", None)
            if isinstance(requested, list) and requested != old["metadata"].get("managedFields"):
                # A client may rewrite ownership (kubectl moving client-side apply's fields
                # to server-side apply); `[{}]` clears it.
                entries = [e for e in requested if isinstance(e, dict) and e.get("manager")]
                owners = {**old, "metadata": {**old["metadata"], "managedFields": entries}}
            if rt.status_subresource:
                if "status" in old:
                    obj["status"] = old["status"]
                else:
                    obj.pop("status", None)
            if rt.builtin:
                strategies.prepare(rt, obj, old, "")
            if rt.storage == CRD_STORAGE:
                crdlib.crd_defaults(obj)
        mutated = await self._admit(
            self.mutating_admission,
            rt,
            "UPDATE",
            subresource,
            obj,
            old,
            opts,
            mutating=True,
            warnings=warnings,
        )
        assert mutated is not None
        obj = mutated
        if subresource == "status":
            problems = schema.validate(obj, rt.value_schema(), only="status")
            if not rt.builtin and not problems:
                problems += cel.rule_errors(obj, rt.schema, old, only="status")
        else:
            problems = meta.metadata_errors(obj["metadata"])
            problems += schema.validate(obj, rt.value_schema())
            if rt.builtin:
                problems += strategies.validation_errors(rt, obj, old)
            elif not problems:
                problems += cel.rule_errors(obj, rt.schema, old)
        if rt.storage == CRD_STORAGE and not subresource:
            problems += crdlib.validate_crd(obj)
        if old["metadata"].get("deletionTimestamp"):
            added = [
                f
                for f in obj["metadata"].get("finalizers") or []
                if f not in (old["metadata"].get("finalizers") or [])
            ]
            if added:
                listed = ", ".join(json.dumps(f) for f in added)
                problems.append(
                    errors.FieldError(
                        "Forbidden",
                        "metadata.finalizers",
                        "no new finalizers can be added if the object is being deleted, "
                        f"found new finalizers []string{{{listed}}}",
                    )
                )
        if problems:
            raise errors.invalid_object(rt.group, rt.kind, name, problems)
        await self._admit(
            self.validating_admission,
            rt,
            "UPDATE",
            subresource,
            obj,
            old,
            opts,
            mutating=False,
            warnings=warnings,
        )
        # Admission awaited the webhooks: another write may have landed meanwhile. Like
        # etcd's compare-and-swap under GuaranteedUpdate, never store over it.
        current = self.store.get(rt.storage, old["metadata"].get("namespace"), name)
        if current is None or (
            current["metadata"]["resourceVersion"] != old["metadata"]["resourceVersion"]
        ):
            if retry and current is not None:
                raise _Raced()
            raise errors.conflict(rt.group, rt.plural, name)
        if rt.tracks_generation and _content(obj, rt) != _content(old, rt):
            obj["metadata"]["generation"] = int(old["metadata"].get("generation") or 0) + 1
        obj["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        if managed is None:
            managed = fieldmanager.updated(rt, owners, obj, opts.manager, subresource)
        if managed:
            obj["metadata"]["managedFields"] = managed
        else:
            obj["metadata"].pop("managedFields", None)
        if _same_object(obj, old):
            # Real API servers skip no-op writes: no new resourceVersion, no watch event.
            return WriteResult(self.present(rt, old), warnings)
        _check_size(obj)
        if opts.dry_run:
            return WriteResult(self.present(rt, obj), warnings)
        finishing = obj["metadata"].get("deletionTimestamp") and not obj["metadata"].get(
            "finalizers"
        )
        if finishing and rt.storage != NAMESPACES:
            final = self._remove(rt.storage, old, last=obj)
            return WriteResult(self.present(rt, final), warnings)
        self.store.put(rt.storage, obj, old)
        if rt.storage == CRD_STORAGE and not subresource:
            self._register_crd(obj)
        if rt.storage == NAMESPACES and finishing:
            self._finish_namespace(name)
        self._check_owners(rt.storage, obj)
        return WriteResult(self.present(rt, obj), warnings)

    # the /scale subresource

    def _scale(self, rt: ResourceType, obj: Obj) -> Obj:
        assert rt.scale is not None
        m = obj["metadata"]
        replicas = jsonpath.first(obj, rt.scale["specReplicasPath"])
        status: Obj = {"replicas": jsonpath.first(obj, rt.scale["statusReplicasPath"]) or 0}
        selector_path = rt.scale.get("labelSelectorPath")
        selector = jsonpath.first(obj, selector_path) if selector_path else None
        if rt.builtin:
            # Deployments and friends report their spec.selector as a selector string.
            wanted = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
            selector = ",".join(f"{k}={v}" for k, v in sorted(wanted.items())) or None
        if selector:
            status["selector"] = selector
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                k: m[k]
                for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if k in m
            },
            "spec": {"replicas": replicas} if replicas is not None else {},
            "status": status,
        }

    def get_scale(self, rt: ResourceType, namespace: str | None, name: str) -> Obj:
        return self._scale(rt, self._stored(rt, namespace, name))

    async def write_scale(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        body: Any,
        opts: WriteOptions,
        patch_type: str = "",
    ) -> Obj:
        """PUT or PATCH of the Scale: only spec.replicas reaches the object."""
        assert rt.scale is not None
        old = self._stored(rt, namespace, name)
        if patch_type:
            scale = copy.deepcopy(self._scale(rt, old))
            try:
                if patch_type == JSON_PATCH:
                    body = json_patch(scale, body)
                else:
                    body = merge_patch(scale, body)
            except PatchError as exc:
                raise errors.ApiError(exc.code, "Invalid", str(exc)) from exc
        if not isinstance(body, dict) or body.get("kind", "Scale") != "Scale":
            raise errors.bad_request("the object provided is unrecognized (must be of type Scale)")
        wanted_rv = (body.get("metadata") or {}).get("resourceVersion")
        if wanted_rv and wanted_rv != old["metadata"]["resourceVersion"]:
            raise errors.conflict(rt.group, rt.plural, name)
        replicas = (body.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise errors.invalid_object(
                "autoscaling",
                "Scale",
                name,
                [errors.invalid("spec.replicas", replicas, "must be greater than or equal to 0")],
            )
        obj = copy_json(old)
        node = obj
        *parents, leaf = rt.scale["specReplicasPath"].lstrip(".").split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = replicas
        obj["metadata"].pop("resourceVersion", None)
        try:
            result = await self._write_update(rt, old, obj, opts, "scale", "update")
        except _Raced:
            raise errors.conflict(rt.group, rt.plural, name) from None
        return self._scale(rt, result.shown)

    # delete

    async def delete(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        options: Obj | None = None,
        opts: WriteOptions | None = None,
    ) -> Obj:
        opts = opts or WriteOptions()
        options = options or {}
        old = self._stored(rt, namespace, name)
        if rt.storage == NAMESPACES and name in IMMORTAL_NAMESPACES:
            raise errors.forbidden(rt.group, rt.plural, name, "this namespace may not be deleted")
        pre = options.get("preconditions") or {}
        m = old["metadata"]
        if pre.get("uid") and pre["uid"] != m.get("uid"):
            raise errors.conflict(
                rt.group,
                rt.plural,
                name,
                f"Precondition failed: UID in precondition: {pre['uid']}, "
                f"UID in object meta: {m.get('uid')}",
            )
        if pre.get("resourceVersion") and pre["resourceVersion"] != m.get("resourceVersion"):
            raise errors.conflict(
                rt.group,
                rt.plural,
                name,
                f"the ResourceVersion in the precondition ({pre['resourceVersion']}) does not "
                f"match the ResourceVersion in record ({m.get('resourceVersion')}). "
                "The object might have been modified",
            )
        await self._admit(
            self.validating_admission, rt, "DELETE", "", None, old, opts, mutating=False
        )
        if opts.dry_run:
            return self.answer(rt, old)
        policy = options.get("propagationPolicy") or (
            "Orphan" if options.get("orphanDependents") else "Background"
        )
        return self.answer(rt, self._delete_stored(rt.storage, old, policy))

    async def delete_collection(
        self,
        rt: ResourceType,
        namespace: str | None,
        label_selector: str | None,
        field_selector: str | None,
        options: Obj | None = None,
        opts: WriteOptions | None = None,
    ) -> list[Obj]:
        listed = self.list_objects(rt, namespace, label_selector, field_selector)
        deleted = []
        for obj in listed.items:
            m = obj["metadata"]
            try:
                deleted.append(await self.delete(rt, m.get("namespace"), m["name"], options, opts))
            except errors.ApiError as err:
                if err.code != 404:
                    raise
        return deleted

    def _delete_stored(self, storage: str, old: Obj, policy: str = "Background") -> Obj:
        m = old["metadata"]
        if storage == NAMESPACES:
            return self._terminate_namespace(old)
        if m.get("finalizers"):
            if m.get("deletionTimestamp"):
                return old
            new_meta = {**m, "deletionTimestamp": meta.timestamp(), "deletionGracePeriodSeconds": 0}
            if "generation" in m:
                new_meta["generation"] = int(m["generation"]) + 1
            return self.store.put(storage, {**old, "metadata": new_meta}, old)
        return self._remove(storage, old, policy=policy)

    def _remove(
        self, storage: str, old: Obj, *, last: Obj | None = None, policy: str = "Background"
    ) -> Obj:
        final = self.store.remove(storage, old, last)
        m = old["metadata"]
        uid = m.get("uid")
        if uid:
            if policy == "Orphan":
                self._orphan(uid)
            else:
                self._schedule(lambda: self._collect(uid))
        if storage == CRD_STORAGE:
            self._unregister_crd(old)
        namespace = m.get("namespace")
        if namespace:
            self._finish_namespace(namespace)
        return final

    # garbage collection

    def _schedule(self, fn: Callable[[], None], delay: float = 0.0) -> None:
        def run() -> None:
            try:
                fn()
            except Exception:  # a background controller must not take the loop down
                log.exception("sandbox background task failed")

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            run()
            return
        if delay:
            loop.call_later(delay, run)
        else:
            loop.call_soon(run)

    def _collect(self, owner_uid: str) -> None:
        """Delete dependents of a removed owner once none of their owners remain."""
        for storage, namespace, name in list(self.store.dependents.get(owner_uid, ())):
            obj = self.store.get(storage, namespace or None, name)
            if obj is None:
                continue
            owners = [
                o.get("uid")
                for o in obj["metadata"].get("ownerReferences") or []
                if isinstance(o, dict)
            ]
            if any(self.store.by_uid(u) is not None for u in owners if u):
                continue
            self._delete_stored(storage, obj)

    def _orphan(self, owner_uid: str) -> None:
        for storage, namespace, name in list(self.store.dependents.get(owner_uid, ())):
            obj = self.store.get(storage, namespace or None, name)
            if obj is None:
                continue
            refs = [
                o for o in obj["metadata"].get("ownerReferences") or [] if o.get("uid") != owner_uid
            ]
            new_meta = {**obj["metadata"], "ownerReferences": refs}
            if not refs:
                new_meta.pop("ownerReferences")
            self.store.put(storage, {**obj, "metadata": new_meta}, obj)

    def _check_owners(self, storage: str, obj: Obj) -> None:
        refs = obj["metadata"].get("ownerReferences") or []
        uids = [r["uid"] for r in refs if isinstance(r, dict) and isinstance(r.get("uid"), str)]
        if uids and all(self.store.by_uid(u) is None for u in uids):
            m = obj["metadata"]

            def collect_if_still_orphaned() -> None:
                current = self.store.get(storage, m.get("namespace"), m["name"])
                if current is None or current["metadata"].get("uid") != m.get("uid"):
                    return
                refs = current["metadata"].get("ownerReferences") or []
                owners = [r["uid"] for r in refs if isinstance(r, dict) and r.get("uid")]
                if owners and all(self.store.by_uid(u) is None for u in owners):
                    self._delete_stored(storage, current)

            self._schedule(collect_if_still_orphaned, ABSENT_OWNER_DELAY)

    # namespaces

    def _terminate_namespace(self, ns: Obj) -> Obj:
        name = ns["metadata"]["name"]
        if not ns["metadata"].get("deletionTimestamp"):
            new = {
                **ns,
                "metadata": {
                    **ns["metadata"],
                    "deletionTimestamp": meta.timestamp(),
                    "deletionGracePeriodSeconds": 0,
                },
                "status": {**(ns.get("status") or {}), "phase": "Terminating"},
            }
            ns = self.store.put(NAMESPACES, new, ns)
        for storage in self.store.storages():
            for obj in self.store.list(storage, name):
                self._delete_stored(storage, obj)
        self._finish_namespace(name)
        return self.store.get(NAMESPACES, None, name) or ns

    def _finish_namespace(self, name: str) -> None:
        ns = self.store.get(NAMESPACES, None, name)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return
        if self.store.count_in_namespace(name) or ns["metadata"].get("finalizers"):
            return
        self._remove(NAMESPACES, ns)

    # CRDs

    def _register_crd(self, crd: Obj) -> None:
        spec = crd["spec"]
        self.registry.remove_group_resource(spec["group"], spec["names"]["plural"])
        for rt in crdlib.resource_types(crd):
            self.registry.add(rt)

    def _unregister_crd(self, crd: Obj) -> None:
        spec = crd["spec"]
        removed = self.registry.remove_group_resource(spec["group"], spec["names"]["plural"])
        storage = removed[0].storage if removed else f"{spec['names']['plural']}.{spec['group']}"
        self.store.drop_storage(storage)
