"""The Kubernetes resources the operator reads and writes, and their URL shapes."""

from __future__ import annotations

from dataclasses import dataclass

from mltrl_operator.api.resources import (
    AUDIT_RECORD,
    POLICY,
    REVIEW,
    TECHNOLOGY,
    WAIVER,
    Resource,
)


@dataclass(frozen=True)
class ResourceRef:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
        return base


def _custom(resource: Resource) -> ResourceRef:
    return ResourceRef(
        resource.group, resource.version, resource.plural, resource.kind, resource.namespaced
    )


TECHNOLOGIES = _custom(TECHNOLOGY)
REVIEWS = _custom(REVIEW)
POLICIES = _custom(POLICY)
AUDIT_RECORDS = _custom(AUDIT_RECORD)
WAIVERS = _custom(WAIVER)
INFERENCE_SERVICES = ResourceRef(
    "serving.kserve.io", "v1beta1", "inferenceservices", "InferenceService"
)
JOBS = ResourceRef("batch", "v1", "jobs", "Job")
EVENTS = ResourceRef("", "v1", "events", "Event")
NAMESPACES = ResourceRef("", "v1", "namespaces", "Namespace", namespaced=False)
