"""Decoding kubectl's protobuf bodies; human durations; name rules."""

from __future__ import annotations

import datetime as dt

import pytest

from mltrl_sandbox import meta, protobuf


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number: int, payload: bytes | int) -> bytes:
    if isinstance(payload, int):
        return varint(number << 3) + varint(payload)
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def entry(key: str, value: bytes) -> bytes:
    return field(1, key.encode()) + field(2, value)


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = field(1, api_version.encode()) + field(2, kind.encode())
    return protobuf.MAGIC + field(1, type_meta) + field(2, raw) + field(3, b"") + field(4, b"")


def test_decodes_a_secret_like_kubectl_sends_it() -> None:
    metadata = (
        field(1, b"creds")
        + field(3, b"team")
        + field(11, entry("app", b"web"))
        + field(14, b"example.com/keep")
        + field(8, field(1, 0))  # zero creationTimestamp, as Go sends it
    )
    raw = field(1, metadata) + field(2, entry("password", b"hunter2")) + field(3, b"Opaque")
    decoded = protobuf.decode(envelope("v1", "Secret", raw))
    assert decoded == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "creds",
            "namespace": "team",
            "labels": {"app": "web"},
            "finalizers": ["example.com/keep"],
            "creationTimestamp": "1970-01-01T00:00:00Z",
        },
        "data": {"password": "aHVudGVyMg=="},
        "type": "Opaque",
    }


def test_decodes_service_ports_with_int_or_string() -> None:
    port = (
        field(1, b"http")
        + field(2, b"TCP")
        + field(3, 80)
        + field(4, field(1, 1) + field(3, b"web"))
    )
    spec = field(1, port) + field(4, b"ClusterIP") + field(3, b"")
    decoded = protobuf.decode(envelope("v1", "Service", field(1, field(1, b"s")) + field(2, spec)))
    assert decoded["spec"] == {
        "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": "web"}],
        "type": "ClusterIP",
    }


def test_refuses_unknown_kinds_and_garbage() -> None:
    with pytest.raises(protobuf.ProtobufError, match="StatefulSet"):
        protobuf.decode(envelope("apps/v1", "StatefulSet", b""))
    with pytest.raises(protobuf.ProtobufError):
        protobuf.decode(b"{}")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"),
        (-1, "0s"),
        (5, "5s"),
        (119, "119s"),
        (125, "2m5s"),
        (180, "3m"),
        (11 * 60 + 30, "11m"),
        (3 * 3600 + 5 * 60, "3h5m"),
        (10 * 3600, "10h"),
        (2 * 86400 + 3600, "2d1h"),
        (3 * 86400, "3d"),
        (100 * 86400, "100d"),
        (3 * 365 * 86400 + 86400, "3y1d"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_human_duration_matches_kubectl(seconds: int, text: str) -> None:
    assert meta.human_duration(seconds) == text


def test_age_of_a_timestamp() -> None:
    now = dt.datetime(2026, 11, 22, 12, 0, 0, tzinfo=dt.UTC)
    assert meta.age("2026-11-22T11:57:00Z", now) == "3m"
    assert meta.age("garbage", now) == "<invalid>"
    assert meta.age(None, now) is None


def test_name_rules() -> None:
    assert meta.name_errors("fraud-detection.v2", "subdomain") == []
    assert meta.name_errors("fraud.v2", "label")  # dots are not allowed in labels
    assert [str(e) for e in meta.name_errors("", "subdomain")] == [
        "metadata.name: Required value: name or generateName is required"
    ]
    (error,) = meta.name_errors("Bad_Name", "subdomain")
    assert str(error).startswith(
        'metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain'
    )
    assert meta.name_errors("Any Thing.x", "segment") == []


def test_metadata_rules() -> None:
    good = {
        "labels": {"app.kubernetes.io/name": "fraud", "empty": ""},
        "annotations": {"example.com/Note": "anything at all"},
        "finalizers": ["example.com/cleanup", "kubernetes"],
        "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "c", "uid": "u"}],
    }
    assert meta.metadata_errors(good) == []
    bad = {
        "labels": {"tier": "has space", "bad key!": "x"},
        "finalizers": ["a/b/c"],
        "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "c"}],
    }
    texts = [str(e) for e in meta.metadata_errors(bad)]
    assert texts[0].startswith('metadata.labels: Invalid value: "has space": a valid label must be')
    assert texts[1].startswith('metadata.labels: Invalid value: "bad key!": name part must consist')
    assert texts[2].startswith('metadata.finalizers[0]: Invalid value: "a/b/c": a qualified name')
    assert texts[3] == 'metadata.ownerReferences[0].uid: Invalid value: "": uid must not be empty'
    assert len(texts) == 4
