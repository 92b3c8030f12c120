"""What the reconciler observed of a technology's InferenceService, as plain facts."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InferenceServiceFacts:
    name: str
    exists: bool
    ready: bool
    """Ready, and not known to be Ready for an older generation."""
    url: str | None
    stopped: bool
    model_version: str | None
    ready_at_generation: bool = False
    """Ready as KServe reports it for the current generation (observedGeneration)."""
    storage_uri: str | None = None
    """spec.predictor.model.storageUri: with the version, which artifact it serves."""
