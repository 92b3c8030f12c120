"""/openapi/v2 in gnostic's protobuf form, the only form client-go asks for.

client-go's `DiscoveryClient.OpenAPISchema()` requests
`application/com.github.proto-openapi.spec.v2@v1.0+protobuf` and unmarshals the answer
into gnostic's `openapi_v2.Document`; kubectl builds its client-side validation from it,
which it runs on the items of a `kind: List` (they have no endpoint of their own whose
server-side `fieldValidation` it could use). This encodes the sandbox's Swagger 2.0 JSON
document into that message. Field numbers are those of gnostic's
`openapiv2/OpenAPIv2.proto`, named at each use.

Only what a Kubernetes document contains is encoded; other keys are left out, as gnostic
would refuse them. Values of type `Any` (defaults, enums, examples, vendor extensions)
carry YAML text: the value's JSON text, which YAML reads as flow style.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Iterable
from typing import Any

Obj = dict[str, Any]

MEDIA_TYPE = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
# what kube-openapi's handler answers with, and also accepts: `@` is no valid character of
# a media type, so the dotted form is the one Go's mime parser takes
RESPONSE_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"


def accepted(accept: str) -> bool:
    """Whether an Accept header asks for the protobuf document, in either spelling."""
    return MEDIA_TYPE in accept or RESPONSE_TYPE in accept


_VARINT, _FIXED64, _LEN = 0, 1, 2


# wire format


def varint(value: int) -> bytes:
    """Base-128, low group first; a negative int64 is its 64-bit two's complement."""
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _tag(field: int, wire: int) -> bytes:
    return varint(field << 3 | wire)


def message(field: int, payload: bytes) -> bytes:
    """A length-delimited field; sent even when empty, as a present sub-message."""
    return _tag(field, _LEN) + varint(len(payload)) + payload


# proto3 leaves scalar fields at their zero value out of the wire


def string(field: int, value: Any) -> bytes:
    return message(field, str(value).encode()) if value not in (None, "") else b""


def strings(field: int, values: Iterable[Any] | None) -> bytes:
    return b"".join(message(field, str(v).encode()) for v in values or ())


def boolean(field: int, value: Any) -> bytes:
    return _tag(field, _VARINT) + b"\x01" if value is True else b""


def int64(field: int, value: Any) -> bytes:
    return _tag(field, _VARINT) + varint(int(value)) if value else b""


def double(field: int, value: Any) -> bytes:
    return _tag(field, _FIXED64) + struct.pack("<d", float(value)) if value else b""


# characters YAML does not take raw in a double-quoted scalar (not printable, or line
# breaks to YAML 1.1); JSON leaves them raw, so they are escaped as \uXXXX (all in the BMP:
# YAML parsers refuse escaped surrogate halves, hence no ensure_ascii)
_NOT_YAML_PRINTABLE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")


def yaml_text(value: Any) -> str:
    """JSON is YAML's flow style, so JSON text is the YAML text gnostic carries."""
    text = json.dumps(value, ensure_ascii=False)
    return _NOT_YAML_PRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def any_value(field: int, value: Any) -> bytes:
    """openapi_v2.Any: 2 yaml."""
    return message(field, string(2, yaml_text(value)))


def _optional_any(field: int, node: Obj, key: str) -> bytes:
    return any_value(field, node[key]) if key in node else b""


def vendor_extensions(field: int, node: Obj) -> bytes:
    """The `x-` keys as repeated NamedAny (1 name, 2 value)."""
    return b"".join(
        message(field, string(1, key) + any_value(2, value))
        for key, value in node.items()
        if key.startswith("x-")
    )


# the document's messages


def schema(node: Obj) -> bytes:
    """openapi_v2.Schema."""
    parts = [
        string(1, node.get("$ref")),
        string(2, node.get("format")),
        string(3, node.get("title")),
        string(4, node.get("description")),
        _optional_any(5, node, "default"),
        double(6, node.get("multipleOf")),
        double(7, node.get("maximum")),
        boolean(8, node.get("exclusiveMaximum")),
        double(9, node.get("minimum")),
        boolean(10, node.get("exclusiveMinimum")),
        int64(11, node.get("maxLength")),
        int64(12, node.get("minLength")),
        string(13, node.get("pattern")),
        int64(14, node.get("maxItems")),
        int64(15, node.get("minItems")),
        boolean(16, node.get("uniqueItems")),
        int64(17, node.get("maxProperties")),
        int64(18, node.get("minProperties")),
        strings(19, node.get("required")),
        b"".join(any_value(20, v) for v in node.get("enum") or ()),
    ]
    extra = node.get("additionalProperties")
    if isinstance(extra, bool):  # AdditionalPropertiesItem: 2 boolean (a oneof: sent if false)
        parts.append(message(21, _tag(2, _VARINT) + varint(int(extra))))
    elif isinstance(extra, dict):  # AdditionalPropertiesItem: 1 schema
        parts.append(message(21, message(1, schema(extra))))
    kind = node.get("type")
    if kind is not None:  # TypeItem: 1 repeated value
        parts.append(message(22, strings(1, [kind] if isinstance(kind, str) else kind)))
    items = node.get("items")
    if items is not None:  # ItemsItem: 1 repeated schema
        listed = items if isinstance(items, list) else [items]
        parts.append(message(23, b"".join(message(1, schema(i)) for i in listed)))
    parts.extend(message(24, schema(s)) for s in node.get("allOf") or ())
    properties = node.get("properties")
    if properties is not None:  # Properties: 1 repeated NamedSchema (1 name, 2 value)
        parts.append(message(25, _named(properties, schema)))
    parts += [
        string(26, node.get("discriminator")),
        boolean(27, node.get("readOnly")),
        _optional_any(30, node, "example"),
        vendor_extensions(31, node),
    ]
    return b"".join(parts)


def _named(entries: Obj, encode: Any) -> bytes:
    """A map as gnostic's ordered Named* pairs, each a field 1 of its container."""
    return b"".join(
        message(1, string(1, name) + message(2, encode(value))) for name, value in entries.items()
    )


# the fields a non-body parameter and PrimitivesItems share, in order, from `type` on
_PRIMITIVE = (
    ("type", string),
    ("format", string),
    ("items", None),
    ("collectionFormat", string),
    ("default", None),
    ("maximum", double),
    ("exclusiveMaximum", boolean),
    ("minimum", double),
    ("exclusiveMinimum", boolean),
    ("maxLength", int64),
    ("minLength", int64),
    ("pattern", string),
    ("maxItems", int64),
    ("minItems", int64),
    ("uniqueItems", boolean),
    ("enum", None),
    ("multipleOf", double),
)


def _primitive(node: Obj, first: int) -> bytes:
    """`type` at field `first`, the rest after it, then the vendor extensions."""
    parts = []
    for offset, (key, encode) in enumerate(_PRIMITIVE):
        field = first + offset
        if key == "items":
            if isinstance(node.get("items"), dict):
                parts.append(message(field, primitives_items(node["items"])))
        elif key == "default":
            parts.append(_optional_any(field, node, "default"))
        elif key == "enum":
            parts.extend(any_value(field, v) for v in node.get("enum") or ())
        else:
            assert encode is not None
            parts.append(encode(field, node.get(key)))
    parts.append(vendor_extensions(first + len(_PRIMITIVE), node))
    return b"".join(parts)


def primitives_items(node: Obj) -> bytes:
    """openapi_v2.PrimitivesItems: 1 type ... 17 multipleOf, 18 vendor_extension."""
    return _primitive(node, 1)


# NonBodyParameter's oneof: which sub-schema field each `in` goes to
_NON_BODY = {"header": 1, "formData": 2, "query": 3, "path": 4}


def parameters_item(node: Obj) -> bytes:
    """openapi_v2.ParametersItem: 1 parameter (Parameter) or 2 json_reference."""
    if "$ref" in node:  # JsonReference: 1 _ref, 2 description
        return message(2, string(1, node["$ref"]) + string(2, node.get("description")))
    return message(1, parameter(node))


def parameter(node: Obj) -> bytes:
    """openapi_v2.Parameter: 1 body_parameter or 2 non_body_parameter."""
    where = node.get("in")
    if where == "body":  # BodyParameter: 1 description 2 name 3 in 4 required 5 schema 6 ext
        body = [
            string(1, node.get("description")),
            string(2, node.get("name")),
            string(3, where),
            boolean(4, node.get("required")),
            message(5, schema(node["schema"])) if "schema" in node else b"",
            vendor_extensions(6, node),
        ]
        return message(1, b"".join(body))
    # header/path sub-schemas: 1 required 2 in 3 description 4 name, then `type` at 5;
    # query/formData ones put allow_empty_value at 5 and `type` at 6
    head = [
        boolean(1, node.get("required")),
        string(2, where),
        string(3, node.get("description")),
        string(4, node.get("name")),
    ]
    if where in ("query", "formData"):
        head.append(boolean(5, node.get("allowEmptyValue")))
        rest = _primitive(node, 6)
    else:
        rest = _primitive(node, 5)
    return message(2, message(_NON_BODY.get(str(where), 3), b"".join(head) + rest))


def response(node: Obj) -> bytes:
    """openapi_v2.Response: 1 description, 2 schema (SchemaItem: 1 schema), 5 ext."""
    parts = [string(1, node.get("description"))]
    if isinstance(node.get("schema"), dict):
        parts.append(message(2, message(1, schema(node["schema"]))))
    parts.append(vendor_extensions(5, node))
    return b"".join(parts)


def responses(node: Obj) -> bytes:
    """openapi_v2.Responses: 1 response_code (NamedResponseValue), 2 vendor_extension."""
    parts = []
    for code, value in node.items():
        if code.startswith("x-"):
            continue
        # ResponseValue: 1 response or 2 json_reference
        answer = (
            message(2, string(1, value["$ref"])) if "$ref" in value else message(1, response(value))
        )
        parts.append(message(1, string(1, code) + message(2, answer)))
    parts.append(vendor_extensions(2, node))
    return b"".join(parts)


def operation(node: Obj) -> bytes:
    """openapi_v2.Operation."""
    parts = [
        strings(1, node.get("tags")),
        string(2, node.get("summary")),
        string(3, node.get("description")),
        string(5, node.get("operationId")),
        strings(6, node.get("produces")),
        strings(7, node.get("consumes")),
        b"".join(message(8, parameters_item(p)) for p in node.get("parameters") or ()),
        message(9, responses(node["responses"])) if "responses" in node else b"",
        strings(10, node.get("schemes")),
        boolean(11, node.get("deprecated")),
        b"".join(message(12, security_requirement(r)) for r in node.get("security") or ()),
        vendor_extensions(13, node),
    ]
    return b"".join(parts)


_METHODS = {"get": 2, "put": 3, "post": 4, "delete": 5, "options": 6, "head": 7, "patch": 8}


def path_item(node: Obj) -> bytes:
    """openapi_v2.PathItem: 1 _ref, 2-8 the operations, 9 parameters, 10 ext."""
    parts = [string(1, node.get("$ref"))]
    parts += [
        message(field, operation(node[method]))
        for method, field in _METHODS.items()
        if isinstance(node.get(method), dict)
    ]
    parts.extend(message(9, parameters_item(p)) for p in node.get("parameters") or ())
    parts.append(vendor_extensions(10, node))
    return b"".join(parts)


def security_requirement(node: Obj) -> bytes:
    """openapi_v2.SecurityRequirement: 1 NamedStringArray (StringArray: 1 value)."""
    return _named(node, lambda scopes: strings(1, scopes))


def security_definition(node: Obj) -> bytes:
    """openapi_v2.SecurityDefinitionsItem; Kubernetes publishes only an apiKey (field 2):
    ApiKeySecurity 1 type 2 name 3 in 4 description 5 ext. Basic auth (field 1) is
    BasicAuthenticationSecurity 1 type 2 description 3 ext."""
    if node.get("type") == "basic":
        return message(
            1, string(1, "basic") + string(2, node.get("description")) + vendor_extensions(3, node)
        )
    fields = [
        string(1, node.get("type")),
        string(2, node.get("name")),
        string(3, node.get("in")),
        string(4, node.get("description")),
        vendor_extensions(5, node),
    ]
    return message(2, b"".join(fields))


def info(node: Obj) -> bytes:
    """openapi_v2.Info: 1 title 2 version 3 description 4 terms_of_service 7 ext."""
    return b"".join(
        [
            string(1, node.get("title")),
            string(2, node.get("version")),
            string(3, node.get("description")),
            string(4, node.get("termsOfService")),
            vendor_extensions(7, node),
        ]
    )


def document(doc: Obj) -> bytes:
    """openapi_v2.Document from a Swagger 2.0 document in its JSON form."""
    paths = {k: v for k, v in (doc.get("paths") or {}).items() if not k.startswith("x-")}
    parts = [
        string(1, doc.get("swagger")),
        message(2, info(doc["info"])) if "info" in doc else b"",
        string(3, doc.get("host")),
        string(4, doc.get("basePath")),
        strings(5, doc.get("schemes")),
        strings(6, doc.get("consumes")),
        strings(7, doc.get("produces")),
        # Paths: 1 vendor_extension, 2 path (NamedPathItem)
        message(8, vendor_extensions(1, doc.get("paths") or {}) + _paths(paths)),
        message(9, _named(doc.get("definitions") or {}, schema)),
    ]
    if doc.get("parameters"):  # ParameterDefinitions: 1 NamedParameter
        parts.append(message(10, _named(doc["parameters"], parameter)))
    if doc.get("responses"):  # ResponseDefinitions: 1 NamedResponse
        parts.append(message(11, _named(doc["responses"], response)))
    parts.extend(message(12, security_requirement(r)) for r in doc.get("security") or ())
    if doc.get("securityDefinitions"):  # SecurityDefinitions: 1 NamedSecurityDefinitionsItem
        parts.append(message(13, _named(doc["securityDefinitions"], security_definition)))
    parts.append(vendor_extensions(16, doc))
    return b"".join(parts)


def _paths(paths: Obj) -> bytes:
    return b"".join(
        message(2, string(1, name) + message(2, path_item(item))) for name, item in paths.items()
    )
