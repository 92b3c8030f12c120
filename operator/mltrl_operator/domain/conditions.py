"""metav1.Condition bookkeeping with Kubernetes' semantics: lastTransitionTime moves only
when status changes, so watchers can tell how long a state has held."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from mltrl_operator.api.common import Condition, ConditionStatus
from mltrl_operator.domain.timefmt import rfc3339


def _status(value: ConditionStatus | bool) -> ConditionStatus:
    if isinstance(value, bool):
        return ConditionStatus.TRUE if value else ConditionStatus.FALSE
    return value


def get_condition(conditions: Sequence[Condition], type: str) -> Condition | None:
    return next((c for c in conditions if c.type == type), None)


def set_condition(
    conditions: Sequence[Condition],
    *,
    type: str,
    status: ConditionStatus | bool,
    reason: str,
    message: str,
    generation: int | None,
    now: datetime,
) -> tuple[list[Condition], bool]:
    """Return a new list with the condition set, and whether anything changed.

    Conditions keep their positions so that an unchanged status compares equal and the
    caller can skip the PATCH. The other conditions are the caller's own objects, not
    copies: conditions are never changed in place (model_copy(update=...) makes a new
    one), and copying all of them for each one set was a tenth of a reconcile's CPU
    (issue 17, docs/benchmarks.md).
    """
    wanted = _status(status)
    result = list(conditions)
    for index, current in enumerate(result):
        if current.type != type:
            continue
        updated = current.model_copy(
            update={
                "status": wanted,
                "reason": reason,
                "message": message,
                "observed_generation": generation,
                "last_transition_time": (
                    current.last_transition_time if current.status == wanted else rfc3339(now)
                ),
            }
        )
        result[index] = updated
        return result, updated != current
    result.append(
        Condition(
            type=type,
            status=wanted,
            reason=reason,
            message=message,
            observed_generation=generation,
            last_transition_time=rfc3339(now),
        )
    )
    return result, True
