"""/openapi/v2 in gnostic's protobuf form, decoded by Google's protobuf runtime.

The messages are declared here from gnostic's `openapiv2/OpenAPIv2.proto` (field names
and numbers as written there; only the messages a Kubernetes document uses), so a
wrong field number in the sandbox's encoder shows up as an unknown field or a wrong
value, decoded by a protobuf implementation the sandbox did not write.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import yaml
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.message import Message
from google.protobuf.unknown_fields import UnknownFieldSet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mltrl_sandbox import openapi_pb
from mltrl_sandbox.api import Api
from mltrl_sandbox.builtin import builtin_types
from mltrl_sandbox.crds import default_crd_documents
from mltrl_sandbox.openapi import OpenAPICache, _v2_schema
from mltrl_sandbox.resources import Registry, ResourceType
from mltrl_sandbox.store import Store

REPO = Path(__file__).resolve().parents[3]

# field lists as (name, number, type); "*" marks repeated, a capitalised type a message
_PRIMITIVE = [
    ("type", "string"),
    ("format", "string"),
    ("items", "PrimitivesItems"),
    ("collection_format", "string"),
    ("default", "Any"),
    ("maximum", "double"),
    ("exclusive_maximum", "bool"),
    ("minimum", "double"),
    ("exclusive_minimum", "bool"),
    ("max_length", "int64"),
    ("min_length", "int64"),
    ("pattern", "string"),
    ("max_items", "int64"),
    ("min_items", "int64"),
    ("unique_items", "bool"),
    ("enum", "*Any"),
    ("multiple_of", "double"),
    ("vendor_extension", "*NamedAny"),
]


def _numbered(first: int, fields: list[tuple[str, str]]) -> list[tuple[str, int, str]]:
    return [(name, first + i, kind) for i, (name, kind) in enumerate(fields)]


_HEAD = [("required", 1, "bool"), ("in", 2, "string"), ("description", 3, "string")]
_PATH_PARAM = [*_HEAD, ("name", 4, "string"), *_numbered(5, _PRIMITIVE)]
_QUERY_PARAM = [
    *_HEAD,
    ("name", 4, "string"),
    ("allow_empty_value", 5, "bool"),
    *_numbered(6, _PRIMITIVE),
]

GNOSTIC: dict[str, list[tuple[str, int, str]]] = {
    "Document": [
        ("swagger", 1, "string"),
        ("info", 2, "Info"),
        ("host", 3, "string"),
        ("base_path", 4, "string"),
        ("schemes", 5, "*string"),
        ("consumes", 6, "*string"),
        ("produces", 7, "*string"),
        ("paths", 8, "Paths"),
        ("definitions", 9, "Definitions"),
        ("security", 12, "*SecurityRequirement"),
        ("security_definitions", 13, "SecurityDefinitions"),
        ("vendor_extension", 16, "*NamedAny"),
    ],
    "Info": [
        ("title", 1, "string"),
        ("version", 2, "string"),
        ("description", 3, "string"),
        ("terms_of_service", 4, "string"),
        ("vendor_extension", 7, "*NamedAny"),
    ],
    "Paths": [("vendor_extension", 1, "*NamedAny"), ("path", 2, "*NamedPathItem")],
    "NamedPathItem": [("name", 1, "string"), ("value", 2, "PathItem")],
    "PathItem": [
        ("_ref", 1, "string"),
        ("get", 2, "Operation"),
        ("put", 3, "Operation"),
        ("post", 4, "Operation"),
        ("delete", 5, "Operation"),
        ("options", 6, "Operation"),
        ("head", 7, "Operation"),
        ("patch", 8, "Operation"),
        ("parameters", 9, "*ParametersItem"),
        ("vendor_extension", 10, "*NamedAny"),
    ],
    "Operation": [
        ("tags", 1, "*string"),
        ("summary", 2, "string"),
        ("description", 3, "string"),
        ("operation_id", 5, "string"),
        ("produces", 6, "*string"),
        ("consumes", 7, "*string"),
        ("parameters", 8, "*ParametersItem"),
        ("responses", 9, "Responses"),
        ("schemes", 10, "*string"),
        ("deprecated", 11, "bool"),
        ("security", 12, "*SecurityRequirement"),
        ("vendor_extension", 13, "*NamedAny"),
    ],
    "ParametersItem": [("parameter", 1, "Parameter"), ("json_reference", 2, "JsonReference")],
    "JsonReference": [("_ref", 1, "string"), ("description", 2, "string")],
    "Parameter": [
        ("body_parameter", 1, "BodyParameter"),
        ("non_body_parameter", 2, "NonBodyParameter"),
    ],
    "BodyParameter": [
        ("description", 1, "string"),
        ("name", 2, "string"),
        ("in", 3, "string"),
        ("required", 4, "bool"),
        ("schema", 5, "Schema"),
        ("vendor_extension", 6, "*NamedAny"),
    ],
    "NonBodyParameter": [
        ("header_parameter_sub_schema", 1, "HeaderParameterSubSchema"),
        ("form_data_parameter_sub_schema", 2, "FormDataParameterSubSchema"),
        ("query_parameter_sub_schema", 3, "QueryParameterSubSchema"),
        ("path_parameter_sub_schema", 4, "PathParameterSubSchema"),
    ],
    "HeaderParameterSubSchema": _PATH_PARAM,
    "FormDataParameterSubSchema": _QUERY_PARAM,
    "QueryParameterSubSchema": _QUERY_PARAM,
    "PathParameterSubSchema": _PATH_PARAM,
    "PrimitivesItems": _numbered(1, _PRIMITIVE),
    "Responses": [
        ("response_code", 1, "*NamedResponseValue"),
        ("vendor_extension", 2, "*NamedAny"),
    ],
    "NamedResponseValue": [("name", 1, "string"), ("value", 2, "ResponseValue")],
    "ResponseValue": [("response", 1, "Response"), ("json_reference", 2, "JsonReference")],
    "Response": [
        ("description", 1, "string"),
        ("schema", 2, "SchemaItem"),
        ("vendor_extension", 5, "*NamedAny"),
    ],
    "SchemaItem": [("schema", 1, "Schema")],
    "Definitions": [("additional_properties", 1, "*NamedSchema")],
    "NamedSchema": [("name", 1, "string"), ("value", 2, "Schema")],
    "Schema": [
        ("_ref", 1, "string"),
        ("format", 2, "string"),
        ("title", 3, "string"),
        ("description", 4, "string"),
        ("default", 5, "Any"),
        ("multiple_of", 6, "double"),
        ("maximum", 7, "double"),
        ("exclusive_maximum", 8, "bool"),
        ("minimum", 9, "double"),
        ("exclusive_minimum", 10, "bool"),
        ("max_length", 11, "int64"),
        ("min_length", 12, "int64"),
        ("pattern", 13, "string"),
        ("max_items", 14, "int64"),
        ("min_items", 15, "int64"),
        ("unique_items", 16, "bool"),
        ("max_properties", 17, "int64"),
        ("min_properties", 18, "int64"),
        ("required", 19, "*string"),
        ("enum", 20, "*Any"),
        ("additional_properties", 21, "AdditionalPropertiesItem"),
        ("type", 22, "TypeItem"),
        ("items", 23, "ItemsItem"),
        ("all_of", 24, "*Schema"),
        ("properties", 25, "Properties"),
        ("discriminator", 26, "string"),
        ("read_only", 27, "bool"),
        ("example", 30, "Any"),
        ("vendor_extension", 31, "*NamedAny"),
    ],
    "AdditionalPropertiesItem": [("schema", 1, "Schema"), ("boolean", 2, "bool")],
    "TypeItem": [("value", 1, "*string")],
    "ItemsItem": [("schema", 1, "*Schema")],
    "Properties": [("additional_properties", 1, "*NamedSchema")],
    # field 1 is a google.protobuf.Any, which Kubernetes never sends: bytes will do
    "Any": [("value", 1, "bytes"), ("yaml", 2, "string")],
    "NamedAny": [("name", 1, "string"), ("value", 2, "Any")],
    "SecurityRequirement": [("additional_properties", 1, "*NamedStringArray")],
    "NamedStringArray": [("name", 1, "string"), ("value", 2, "StringArray")],
    "StringArray": [("value", 1, "*string")],
    "SecurityDefinitions": [("additional_properties", 1, "*NamedSecurityDefinitionsItem")],
    "NamedSecurityDefinitionsItem": [
        ("name", 1, "string"),
        ("value", 2, "SecurityDefinitionsItem"),
    ],
    "SecurityDefinitionsItem": [
        ("basic_authentication_security", 1, "BasicAuthenticationSecurity"),
        ("api_key_security", 2, "ApiKeySecurity"),
    ],
    "BasicAuthenticationSecurity": [
        ("type", 1, "string"),
        ("description", 2, "string"),
        ("vendor_extension", 3, "*NamedAny"),
    ],
    "ApiKeySecurity": [
        ("type", 1, "string"),
        ("name", 2, "string"),
        ("in", 3, "string"),
        ("description", 4, "string"),
        ("vendor_extension", 5, "*NamedAny"),
    ],
}
# the messages whose fields are one `oneof` in the .proto: a set field is present even at
# its zero value (additionalProperties: false)
ONEOFS = {
    "AdditionalPropertiesItem",
    "ParametersItem",
    "Parameter",
    "NonBodyParameter",
    "ResponseValue",
    "SchemaItem",
    "SecurityDefinitionsItem",
}

_SCALARS = {
    "string": descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
    "bool": descriptor_pb2.FieldDescriptorProto.TYPE_BOOL,
    "int64": descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
    "double": descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE,
    "bytes": descriptor_pb2.FieldDescriptorProto.TYPE_BYTES,
}


def _document_class() -> type[Message]:
    proto = descriptor_pb2.FileDescriptorProto(
        name="openapiv2_subset.proto", package="openapi.v2", syntax="proto3"
    )
    for name, fields in GNOSTIC.items():
        msg = proto.message_type.add(name=name)
        if name in ONEOFS:
            msg.oneof_decl.add(name="oneof")
        for field_name, number, kind in fields:
            repeated = kind.startswith("*")
            kind = kind.lstrip("*")
            field = msg.field.add(name=field_name, number=number)
            field.label = (
                descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED
                if repeated
                else descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
            )
            if kind in _SCALARS:
                field.type = _SCALARS[kind]
            else:
                field.type = descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE
                field.type_name = f".openapi.v2.{kind}"
            if name in ONEOFS:
                field.oneof_index = 0
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("openapi.v2.Document"))


Document = _document_class()


def decode(data: bytes) -> Message:
    doc = Document()
    doc.ParseFromString(data)
    _no_unknown_fields(doc, "Document")
    return doc


def _no_unknown_fields(msg: Message, where: str) -> None:
    unknown = [(f.field_number, f.wire_type) for f in UnknownFieldSet(msg)]
    assert not unknown, f"{where}: fields the .proto does not have: {unknown}"
    for field, value in msg.ListFields():
        if field.message_type is None:
            continue
        for i, item in enumerate(value if field.is_repeated else [value]):
            _no_unknown_fields(item, f"{where}.{field.name}[{i}]")


def as_dict(msg: Message) -> dict[str, Any]:
    return json_format.MessageToDict(msg, preserving_proto_field_name=True)


def yaml_of(any_value: dict[str, Any]) -> Any:
    return yaml.safe_load(any_value["yaml"])


# the wire format


def test_varints_are_base_128_low_group_first() -> None:
    assert openapi_pb.varint(0) == b"\x00"
    assert openapi_pb.varint(1) == b"\x01"
    assert openapi_pb.varint(300) == b"\xac\x02"
    assert openapi_pb.varint(1 << 63) == b"\x80" * 9 + b"\x01"
    assert openapi_pb.varint(-1) == b"\xff" * 9 + b"\x01"  # int64 -1: 64-bit two's complement


def test_length_delimited_fields_carry_their_length() -> None:
    assert openapi_pb.string(1, "2.0") == b"\x0a\x032.0"
    assert openapi_pb.message(25, b"") == b"\xca\x01\x00"  # field 25, wire type 2, empty
    assert openapi_pb.string(1, "") == b""  # proto3 leaves a zero value out


# a small document with every construct the sandbox's document uses

SMALL: dict[str, Any] = {
    "swagger": "2.0",
    "info": {"title": "Kubernetes", "version": "v1.35.0"},
    "paths": {
        "/api/v1/namespaces/{namespace}/configmaps/{name}": {
            "patch": {
                "tags": ["core_v1"],
                "description": "patch ConfigMap",
                "operationId": "patchNamespacedConfigMap",
                "consumes": ["application/apply-patch+yaml"],
                "parameters": [
                    {
                        "name": "fieldValidation",
                        "in": "query",
                        "description": "how",
                        "type": "string",
                        "uniqueItems": True,
                    },
                    {
                        "name": "body",
                        "in": "body",
                        "required": True,
                        "schema": {
                            "$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"
                        },
                    },
                ],
                "responses": {
                    "200": {
                        "description": "OK",
                        "schema": {"$ref": "#/definitions/io.k8s.api.core.v1.ConfigMap"},
                    },
                },
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": {
                    "group": "",
                    "version": "v1",
                    "kind": "ConfigMap",
                },
            },
            "parameters": [
                {
                    "name": "name",
                    "in": "path",
                    "required": True,
                    "type": "string",
                    "uniqueItems": True,
                },
            ],
        }
    },
    "definitions": {
        "io.k8s.api.core.v1.ConfigMap": {
            "description": "ConfigMap holds configuration data for pods to consume.",
            "type": "object",
            "required": ["data"],
            "properties": {
                "data": {"type": "object", "additionalProperties": {"type": "string"}},
                "open": {"type": "object", "additionalProperties": False},
                "metadata": {
                    "$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
                    "default": {},
                    "description": "Standard object's metadata.",
                },
                "level": {
                    "type": "integer",
                    "format": "int32",
                    "minimum": 0,
                    "maximum": 9,
                    "default": 3,
                    "enum": [1, 2, 3],
                },
                "names": {
                    "type": "array",
                    "items": {"type": "string", "minLength": 1},
                    "maxItems": 5,
                    "x-kubernetes-list-type": "set",
                },
                "empty": {"type": "object", "properties": {}},
            },
            "x-kubernetes-group-version-kind": [
                {"group": "", "kind": "ConfigMap", "version": "v1"}
            ],
        },
    },
    "securityDefinitions": {
        "BearerToken": {
            "description": "Bearer Token authentication",
            "type": "apiKey",
            "name": "authorization",
            "in": "header",
        },
    },
    "security": [{"BearerToken": []}],
}


def test_a_small_document_decodes_field_by_field() -> None:
    doc = decode(openapi_pb.document(SMALL))
    assert doc.swagger == "2.0"
    out = as_dict(doc)
    assert out["info"] == {"title": "Kubernetes", "version": "v1.35.0"}
    assert out["security"] == [{"additional_properties": [{"name": "BearerToken", "value": {}}]}]
    assert out["security_definitions"]["additional_properties"] == [
        {
            "name": "BearerToken",
            "value": {
                "api_key_security": {
                    "type": "apiKey",
                    "name": "authorization",
                    "in": "header",
                    "description": "Bearer Token authentication",
                }
            },
        }
    ]
    [path] = out["paths"]["path"]
    assert path["name"] == "/api/v1/namespaces/{namespace}/configmaps/{name}"
    assert path["value"]["parameters"] == [
        {
            "parameter": {
                "non_body_parameter": {
                    "path_parameter_sub_schema": {
                        "required": True,
                        "in": "path",
                        "name": "name",
                        "type": "string",
                        "unique_items": True,
                    }
                }
            }
        }
    ]
    patch = path["value"]["patch"]
    assert patch["tags"] == ["core_v1"]
    assert patch["operation_id"] == "patchNamespacedConfigMap"
    assert patch["consumes"] == ["application/apply-patch+yaml"]
    query, body = patch["parameters"]
    assert query == {
        "parameter": {
            "non_body_parameter": {
                "query_parameter_sub_schema": {
                    "in": "query",
                    "description": "how",
                    "name": "fieldValidation",
                    "type": "string",
                    "unique_items": True,
                }
            }
        }
    }
    assert body == {
        "parameter": {
            "body_parameter": {
                "name": "body",
                "in": "body",
                "required": True,
                "schema": {"_ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"},
            }
        }
    }
    assert patch["responses"]["response_code"] == [
        {
            "name": "200",
            "value": {
                "response": {
                    "description": "OK",
                    "schema": {"schema": {"_ref": "#/definitions/io.k8s.api.core.v1.ConfigMap"}},
                }
            },
        }
    ]
    extensions = {e["name"]: yaml_of(e["value"]) for e in patch["vendor_extension"]}
    assert extensions == {
        "x-kubernetes-action": "patch",
        "x-kubernetes-group-version-kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
    }


def test_schemas_decode_field_by_field() -> None:
    out = as_dict(decode(openapi_pb.document(SMALL)))
    [named] = out["definitions"]["additional_properties"]
    assert named["name"] == "io.k8s.api.core.v1.ConfigMap"
    cm = named["value"]
    assert cm["description"] == "ConfigMap holds configuration data for pods to consume."
    assert cm["type"] == {"value": ["object"]}
    assert cm["required"] == ["data"]
    [gvk] = cm["vendor_extension"]
    assert gvk["name"] == "x-kubernetes-group-version-kind"
    assert yaml_of(gvk["value"]) == [{"group": "", "kind": "ConfigMap", "version": "v1"}]
    props = {p["name"]: p["value"] for p in cm["properties"]["additional_properties"]}
    assert list(props) == ["data", "open", "metadata", "level", "names", "empty"]  # in order
    assert props["data"] == {
        "type": {"value": ["object"]},
        "additional_properties": {"schema": {"type": {"value": ["string"]}}},
    }
    # false is sent: gnostic's oneof tells "additionalProperties: false" from nothing
    assert props["open"]["additional_properties"] == {"boolean": False}
    assert (
        props["metadata"]["_ref"] == "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    )
    assert props["metadata"]["description"] == "Standard object's metadata."
    assert yaml_of(props["metadata"]["default"]) == {}
    level = props["level"]
    assert (level["format"], level["maximum"], yaml_of(level["default"])) == ("int32", 9, 3)
    assert "minimum" not in level  # 0 is proto3's zero value: left out, read back as 0
    assert [yaml_of(v) for v in level["enum"]] == [1, 2, 3]
    names = props["names"]
    assert names["type"] == {"value": ["array"]}
    assert names["items"] == {"schema": [{"type": {"value": ["string"]}, "min_length": "1"}]}
    assert names["max_items"] == "5"
    assert yaml_of(names["vendor_extension"][0]["value"]) == "set"
    # an empty properties map is still there: kube-openapi reads such an object as a kind
    empty = Document()
    empty.ParseFromString(openapi_pb.document(SMALL))
    schema = empty.definitions.additional_properties[0].value
    [empty_prop] = [p for p in schema.properties.additional_properties if p.name == "empty"]
    assert empty_prop.value.HasField("properties")


# the sandbox's own document


def _registry_with_project_crds() -> tuple[Registry, Api]:
    registry = Registry()
    for rt in builtin_types():
        registry.add(rt)
    api = Api(registry, Store(100))

    async def install() -> None:
        for doc in default_crd_documents(REPO / "crds"):
            await api.create(_crds(registry), None, doc)

    asyncio.run(install())
    return registry, api


def _crds(registry: Registry) -> ResourceType:
    found = registry.get("apiextensions.k8s.io/v1", "customresourcedefinitions")
    assert found is not None
    return found


def _refs(node: Any) -> list[str]:
    if isinstance(node, list):
        return [r for item in node for r in _refs(item)]
    if not isinstance(node, dict):
        return []
    own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
    return own + [
        r for key, value in node.items() if not key.startswith("x-") for r in _refs(value)
    ]


def test_the_sandbox_document_is_the_json_one_in_protobuf() -> None:
    cache = OpenAPICache(_registry_with_project_crds()[0])
    as_json = json.loads(cache.swagger())
    doc = as_dict(decode(cache.swagger_protobuf()))
    definitions = {d["name"]: d["value"] for d in doc["definitions"]["additional_properties"]}
    assert list(definitions) == list(as_json["definitions"])
    assert [p["name"] for p in doc["paths"]["path"]] == list(as_json["paths"])
    # every reference resolves: kubectl gives up on the whole document otherwise
    names = set(as_json["definitions"])
    assert {r.removeprefix("#/definitions/") for r in _refs(as_json)} <= names
    # kubectl finds a List item's schema by the group-version-kind extension
    for name, kind in [
        ("io.k8s.api.core.v1.ConfigMap", "ConfigMap"),
        ("dev.mltrl.v1alpha1.MLTechnology", "MLTechnology"),
    ]:
        [gvk] = [
            yaml_of(e["value"])
            for e in definitions[name]["vendor_extension"]
            if e["name"] == "x-kubernetes-group-version-kind"
        ]
        assert [g["kind"] for g in gvk] == [kind]
    tech = definitions["dev.mltrl.v1alpha1.MLTechnology"]
    spec = next(
        p["value"] for p in tech["properties"]["additional_properties"] if p["name"] == "spec"
    )
    assert "owner" in spec["required"]


def test_the_protobuf_document_is_cached_until_a_crd_changes() -> None:
    registry, api = _registry_with_project_crds()
    cache = OpenAPICache(registry)
    first = cache.swagger_protobuf()
    assert cache.swagger_protobuf() is first
    asyncio.run(api.delete(_crds(registry), None, "mltechnologies.mltrl.dev"))
    second = cache.swagger_protobuf()
    assert second is not first
    names = [d.name for d in decode(second).definitions.additional_properties]
    assert "dev.mltrl.v1alpha1.MLTechnology" not in names
    assert "dev.mltrl.v1alpha1.LevelReview" in names


# what v2 publishes, where kubectl's client-side validation reads it


def test_custom_schemas_are_published_as_the_api_servers_v2_conversion() -> None:
    crd_schema = {
        "type": "object",
        "required": ["spec", "note"],
        "properties": {
            "metadata": {"allOf": [{"$ref": "#/definitions/ObjectMeta"}], "default": {}},
            "note": {"type": "string", "nullable": True},
            "spec": {
                "type": "object",
                "properties": {
                    "template": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                        "properties": {"a": {"type": "string"}},
                    },
                    "port": {
                        "x-kubernetes-int-or-string": True,
                        "anyOf": [{"type": "integer"}, {"type": "string"}],
                    },
                    "tags": {"type": "array", "nullable": True, "items": {"type": "string"}},
                },
            },
        },
    }
    assert _v2_schema(crd_schema, custom=True) == {
        "type": "object",
        "required": ["spec"],  # a nullable field may be null, so it is not required
        "properties": {
            "metadata": {"$ref": "#/definitions/ObjectMeta", "default": {}},
            "note": {},
            "spec": {
                "type": "object",
                "properties": {
                    "template": {"x-kubernetes-preserve-unknown-fields": True},
                    "port": {"x-kubernetes-int-or-string": True},
                    "tags": {},
                },
            },
        },
    }


def test_published_int_or_string_and_quantity_are_strings_in_v2() -> None:
    int_or_string = {
        "description": "d",
        "x-kubernetes-int-or-string": True,
        "anyOf": [{"type": "integer"}, {"type": "string"}],
    }
    assert _v2_schema(int_or_string) == {
        "description": "d",
        "x-kubernetes-int-or-string": True,
        "type": "string",
        "format": "int-or-string",
    }
    quantity = {"description": "q", "oneOf": [{"type": "string"}, {"type": "number"}]}
    assert _v2_schema(quantity) == {"description": "q", "type": "string"}


# any schema: encoded, decoded by Google's runtime, read back, is what went in

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
_names = st.text(min_size=1, max_size=12)


def _schemas() -> st.SearchStrategy[dict[str, Any]]:
    leaf = st.fixed_dictionaries(
        {},
        optional={
            "$ref": _names.map(lambda n: f"#/definitions/{n}"),
            "description": st.text(),
            "format": st.sampled_from(["int32", "int64", "date-time", "byte", "int-or-string"]),
            "type": st.sampled_from(["object", "array", "string", "integer", "number", "boolean"]),
            "pattern": st.text(),
            "default": _json_values,
            "example": _json_values,
            "enum": st.lists(_json_values, max_size=3),
            "required": st.lists(_names, max_size=3),
            "minimum": st.floats(allow_nan=False, allow_infinity=False),
            "maximum": st.floats(allow_nan=False, allow_infinity=False),
            "multipleOf": st.floats(min_value=0.5, max_value=100),
            "exclusiveMinimum": st.booleans(),
            "maxLength": st.integers(0, 2**40),
            "minItems": st.integers(0, 2**40),
            "uniqueItems": st.booleans(),
            "x-kubernetes-list-type": st.sampled_from(["atomic", "set", "map"]),
            "x-kubernetes-group-version-kind": st.lists(
                st.fixed_dictionaries({"group": st.text(), "version": _names, "kind": _names}),
                max_size=2,
            ),
            "x-kubernetes-preserve-unknown-fields": st.booleans(),
        },
    )
    return st.recursive(
        leaf,
        lambda inner: st.tuples(
            leaf,
            st.fixed_dictionaries(
                {},
                optional={
                    "properties": st.dictionaries(_names, inner, max_size=3),
                    "items": inner,
                    "additionalProperties": st.booleans() | inner,
                    "allOf": st.lists(inner, min_size=1, max_size=2),
                },
            ),
        ).map(lambda pair: {**pair[0], **pair[1]}),
        max_leaves=6,
    )


_SCALARS_BACK = {
    "_ref": "$ref",
    "format": "format",
    "title": "title",
    "description": "description",
    "pattern": "pattern",
    "discriminator": "discriminator",
    "multiple_of": "multipleOf",
    "maximum": "maximum",
    "minimum": "minimum",
    "exclusive_maximum": "exclusiveMaximum",
    "exclusive_minimum": "exclusiveMinimum",
    "unique_items": "uniqueItems",
    "read_only": "readOnly",
    "required": "required",
}
_INTS_BACK = {
    "max_length": "maxLength",
    "min_length": "minLength",
    "max_items": "maxItems",
    "min_items": "minItems",
    "max_properties": "maxProperties",
    "min_properties": "minProperties",
}


def _schema_back(decoded: dict[str, Any]) -> dict[str, Any]:
    """gnostic's Schema (as MessageToDict shows it) back in its JSON form."""
    out: dict[str, Any] = {}
    for key, value in decoded.items():
        if key in _SCALARS_BACK:
            out[_SCALARS_BACK[key]] = value
        elif key in _INTS_BACK:
            out[_INTS_BACK[key]] = int(value)  # int64 is a string in protobuf's JSON
        elif key in ("default", "example"):
            out[key] = yaml_of(value)
        elif key == "enum":
            out["enum"] = [yaml_of(v) for v in value]
        elif key == "type":
            [out["type"]] = value["value"]
        elif key == "items":
            [out["items"]] = [_schema_back(s) for s in value["schema"]]
        elif key == "all_of":
            out["allOf"] = [_schema_back(s) for s in value]
        elif key == "properties":
            out["properties"] = {
                p["name"]: _schema_back(p.get("value", {}))
                for p in value.get("additional_properties", [])
            }
        elif key == "additional_properties":
            out["additionalProperties"] = (
                value["boolean"] if "boolean" in value else _schema_back(value.get("schema", {}))
            )
        elif key == "vendor_extension":
            out.update({e["name"]: yaml_of(e["value"]) for e in value})
        else:
            raise AssertionError(f"unexpected field {key}")
    return out


def _without_zero_scalars(node: dict[str, Any]) -> dict[str, Any]:
    """proto3 sends no scalar at its zero value: a 0, "", false or [] reads back absent."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("properties",):
            out[key] = {k: _without_zero_scalars(v) for k, v in value.items()}
        elif key in ("items",) or (key == "additionalProperties" and isinstance(value, dict)):
            out[key] = _without_zero_scalars(value)
        elif key == "allOf":
            out[key] = [_without_zero_scalars(v) for v in value]
        elif (
            key.startswith("x-")
            or key in ("default", "example", "additionalProperties")
            or value not in (0, "", False, [])
            or isinstance(value, dict)
        ):
            out[key] = value
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_schemas())
def test_any_schema_reads_back_as_it_went_in(node: dict[str, Any]) -> None:
    doc = decode(openapi_pb.document({"swagger": "2.0", "definitions": {"d": node}}))
    [named] = as_dict(doc)["definitions"].get("additional_properties", [])
    assert named["name"] == "d"
    assert _schema_back(named.get("value", {})) == _without_zero_scalars(node)
