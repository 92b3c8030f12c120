"""Building blocks shared by the custom resources.

Every field's docstring is the text `kubectl explain` shows, so write them for the user.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "mltrl.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

MIN_LEVEL = 0
MAX_LEVEL = 9

Level = Annotated[int, Field(ge=MIN_LEVEL, le=MAX_LEVEL)]


class ApiModel(BaseModel):
    """Base of every resource part: camelCase on the wire, docstrings as descriptions."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        use_attribute_docstrings=True,
        extra="ignore",
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON form a Kubernetes API server stores: camelCase, no unset optionals."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(ApiModel):
    """One aspect of the object's state, in the shape of metav1.Condition."""

    type: str = Field(max_length=316)
    """The aspect this condition describes, in CamelCase (e.g. Ready, ServingAllowed)."""
    status: ConditionStatus
    """Whether the aspect holds: True, False or Unknown."""
    observed_generation: int | None = Field(default=None, ge=0)
    """The metadata.generation this condition was computed from."""
    last_transition_time: str
    """When status last changed (RFC 3339)."""
    reason: str = Field(max_length=1024)
    """A CamelCase, machine-readable reason for the last transition."""
    message: str = Field(default="", max_length=32768)
    """A human-readable explanation of the condition."""


class LabelSelectorRequirement(ApiModel):
    """A set-based label requirement."""

    key: str
    """The label key the requirement applies to."""
    operator: SelectorOperator
    """How the key relates to the values: In, NotIn, Exists or DoesNotExist."""
    values: list[str] = Field(default_factory=list)
    """The values for In and NotIn; must be empty for Exists and DoesNotExist."""


class SelectorOperator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


class LabelSelector(ApiModel):
    """A label query, as in metav1.LabelSelector. An empty selector matches everything."""

    match_labels: dict[str, str] = Field(default_factory=dict)
    """Labels that must all be present with exactly these values."""
    match_expressions: list[LabelSelectorRequirement] = Field(default_factory=list)
    """Set-based requirements that must all hold."""


LabelSelectorRequirement.model_rebuild()
