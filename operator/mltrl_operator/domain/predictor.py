"""KServe's contract for a technology's predictor template: every field must be one KServe
knows, checked against the schema generated from the kserve SDK (domain/kserve_schema.py).

KServe's own CRD keeps unknown fields out of the InferenceService silently (or refuses
the operator's write, depending on the version): either way a typo such as `minReplica`
would only show as a model served differently from what was reviewed. Refusing it when
the MLTechnology is applied puts the error in front of the person who made it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any

from mltrl_operator.domain.errors import FieldError
from mltrl_operator.domain.kserve_schema import KSERVE_VERSION, MODELS, ROOT

PATH = "spec.serving.predictor"
SCALAR_TYPES: dict[str, tuple[type, ...]] = {
    # The SDK types quantities ("500m", or 1 GPU) as str: numbers are strings' equals here.
    "str": (str, int, float), "int": (int,), "bool": (bool,), "float": (int, float),
}
_CONTAINER = re.compile(r"(list|map)\[(.*)\]")


def predictor_errors(predictor: Mapping[str, Any], path: str = PATH) -> list[FieldError]:
    """Every field of `predictor` that KServe's V1beta1PredictorSpec does not know, and
    every value of the wrong kind, each named by its path."""
    model = predictor.get("model")
    if model is not None and not isinstance(model, Mapping):
        # validation.py says why it must be an object; one error per field is enough.
        predictor = {key: value for key, value in predictor.items() if key != "model"}
    return _check(predictor, ROOT, path)


def _check(value: Any, kind: str, path: str) -> list[FieldError]:
    if kind == "any" or value is None:
        return []
    container = _CONTAINER.fullmatch(kind)
    if container is not None:
        shape, element = container.groups()
        if shape == "list":
            if not isinstance(value, list):
                return [FieldError(path, "must be a list")]
            return [
                e for i, item in enumerate(value) for e in _check(item, element, f"{path}[{i}]")
            ]
        if not isinstance(value, Mapping):
            return [FieldError(path, "must be an object")]
        return [e for key, item in value.items() for e in _check(item, element, f"{path}.{key}")]
    if kind in SCALAR_TYPES:
        # Quantities and int-or-string fields are typed `any`; bool is not an int here.
        wrong = not isinstance(value, SCALAR_TYPES[kind]) or (
            kind in {"int", "float"} and isinstance(value, bool)
        )
        return [FieldError(path, f"must be {_SCALAR_NAMES[kind]}")] if wrong else []
    fields = MODELS[kind]
    if not isinstance(value, Mapping):
        return [FieldError(path, "must be an object")]
    errors: list[FieldError] = []
    for key, item in value.items():
        if key not in fields:
            errors.append(FieldError(f"{path}.{key}", _unknown(str(key), kind, fields)))
        else:
            errors += _check(item, fields[key], f"{path}.{key}")
    return errors


_SCALAR_NAMES = {"str": "a string", "int": "an integer", "bool": "a boolean",
                 "float": "a number"}


def _unknown(key: str, kind: str, fields: Mapping[str, str]) -> str:
    # JSON names differ from typos mostly in case (storageURI): compare without it.
    by_lower = {name.lower(): name for name in fields}
    close = difflib.get_close_matches(key.lower(), list(by_lower), n=1)
    hint = f' (did you mean "{by_lower[close[0]]}"?)' if close else ""
    return f"is not a field of KServe's {kind} (kserve {KSERVE_VERSION}){hint}"
