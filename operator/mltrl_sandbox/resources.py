"""What the sandbox serves: resource types (builtin or from CRDs) and their registry."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .kubeschemas import kind_schema

Obj = dict[str, Any]

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class Column:
    """A printer column: a JSONPath into the object, or a function of it."""

    name: str
    type: str = "string"
    json_path: str | None = None
    func: Callable[[Obj], Any] | None = None
    format: str = ""
    description: str = ""
    priority: int = 0


AGE = Column(
    "Age",
    "date",
    ".metadata.creationTimestamp",
    description="CreationTimestamp is a timestamp representing the server time when this "
    "object was created.",
)


@dataclass
class ResourceType:
    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    # openAPIV3Schema of a custom resource; built-in kinds take theirs from Kubernetes'
    # published schemas (`schema_gvk`, default: their own group/version/kind)
    schema: Obj | None = None
    status_subresource: bool = False
    columns: tuple[Column, ...] = (AGE,)
    builtin: bool = True
    # extra field-selector labels -> JSONPath (metadata.name/namespace always work)
    selectable_fields: dict[str, str] = field(default_factory=dict)
    # storage shared between API views (CRD versions; core vs events.k8s.io events)
    storage: str = ""
    # converts the stored form to this view and back (None = identical)
    to_view: Callable[[Obj], Obj] | None = None
    from_view: Callable[[Obj], Obj] | None = None
    description: str = ""
    # how metadata.name is validated: "subdomain", "label" (DNS-1123) or "segment"
    name_rule: str = "subdomain"
    # tables start with a Name column (events list theirs last, among the wide columns)
    name_column: bool = True
    # metadata.generation: custom resources and some builtins (jobs, CRDs) have one
    tracks_generation: bool = True
    # create-only kinds answered on the spot and never stored (access reviews):
    # called with the request body and the requester, returns the answer
    virtual: Callable[[Obj, Any], Obj] | None = None
    # the published schema that validates the stored form (events.k8s.io views core Events)
    schema_gvk: tuple[str, str, str] | None = None
    # the /scale subresource: {specReplicasPath, statusReplicasPath, labelSelectorPath}
    scale: dict[str, str] | None = None

    def __post_init__(self) -> None:
        if not self.storage:
            self.storage = self.group_resource

    def value_schema(self) -> Obj | None:
        """The schema objects of this type are pruned, defaulted and validated against."""
        if self.schema is not None or not self.builtin or self.virtual is not None:
            return self.schema
        return kind_schema(*(self.schema_gvk or (self.group, self.version, self.kind)))

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version

    @property
    def group_resource(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    def base_path(self, namespace: str | None) -> str:
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            return f"{prefix}/namespaces/{namespace}/{self.plural}"
        return f"{prefix}/{self.plural}"


_VERSION_RE = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key giving Kubernetes' version order: v2 > v1 > v1beta2 > v1beta1 > v1alpha1 > other."""
    m = _VERSION_RE.match(version)
    if not m:
        return (3, 0, 0, version)
    major = int(m.group(1))
    stage = {None: 0, "beta": 1, "alpha": 2}[m.group(2)]
    minor = int(m.group(3) or 0)
    return (stage, -major, -minor, version)


class Registry:
    """Resource types by group/version/plural, with a change counter for caches."""

    def __init__(self) -> None:
        self._by_gv: dict[str, dict[str, ResourceType]] = {}
        self.generation = 0

    def add(self, rt: ResourceType) -> None:
        self._by_gv.setdefault(rt.group_version, {})[rt.plural] = rt
        self.generation += 1

    def remove_group_resource(self, group: str, plural: str) -> list[ResourceType]:
        removed = []
        for gv in list(self._by_gv):
            resources = self._by_gv[gv]
            rt = resources.get(plural)
            if rt is not None and rt.group == group:
                removed.append(resources.pop(plural))
                if not resources:
                    del self._by_gv[gv]
        self.generation += 1
        return removed

    def get(self, group_version: str, plural: str) -> ResourceType | None:
        return self._by_gv.get(group_version, {}).get(plural)

    def resources(self, group_version: str) -> list[ResourceType]:
        return list(self._by_gv.get(group_version, {}).values())

    def all(self) -> list[ResourceType]:
        return [rt for resources in self._by_gv.values() for rt in resources.values()]

    def group_versions(self) -> list[str]:
        return list(self._by_gv)

    def groups(self) -> dict[str, list[str]]:
        """Named groups -> versions, preferred version first."""
        out: dict[str, list[str]] = {}
        for gv in self._by_gv:
            if "/" in gv:
                group, version = gv.split("/", 1)
                out.setdefault(group, []).append(version)
        return {g: sorted(vs, key=version_priority) for g, vs in out.items()}

    def for_storage(self, storage: str) -> list[ResourceType]:
        return [rt for rt in self.all() if rt.storage == storage]

    def preferred(self, storage: str) -> ResourceType | None:
        """The type to present objects of a storage in (preferred version, primary view)."""
        candidates = [rt for rt in self.for_storage(storage) if rt.from_view is None]
        if not candidates:
            return None
        return sorted(candidates, key=lambda rt: version_priority(rt.version))[0]

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        for rt in self._by_gv.get(api_version, {}).values():
            if rt.kind == kind:
                return rt
        return None
