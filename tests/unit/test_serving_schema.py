"""The request/result codec and dead-letter headers."""

from __future__ import annotations

import json

import pytest

from serving.schema import (
    H_REASON,
    H_REQUEST_ID,
    SCHEMA_VERSION,
    Result,
    SchemaError,
    dead_letter_headers,
    decode_request,
    decode_result,
    encode_request,
    encode_result,
    headers_dict,
    peek_request_id,
)


@pytest.mark.parametrize(
    ("kwargs", "kind"),
    [
        ({"path": "/srv/a.jpg"}, "path"),
        ({"s3": "s3://b/k.jpg"}, "s3"),
        ({"image_b64": "aGVsbG8="}, "image_b64"),
    ],
)
def test_request_roundtrip(kwargs: dict[str, str], kind: str) -> None:
    request = decode_request(encode_request("r1", sent_at=12.5, **kwargs))
    assert (request.id, request.kind, request.source, request.sent_at) == (
        "r1",
        kind,
        next(iter(kwargs.values())),
        12.5,
    )


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",
        json.dumps({"v": 99, "id": "x", "path": "/a"}).encode(),
        json.dumps({"v": SCHEMA_VERSION, "path": "/a"}).encode(),
        json.dumps({"v": SCHEMA_VERSION, "id": "", "path": "/a"}).encode(),
        json.dumps({"v": SCHEMA_VERSION, "id": "x"}).encode(),
        json.dumps({"v": SCHEMA_VERSION, "id": "x", "path": "/a", "s3": "s3://b/k"}).encode(),
        json.dumps({"v": SCHEMA_VERSION, "id": "x", "path": 3}).encode(),
        json.dumps({"v": SCHEMA_VERSION, "id": "x", "path": "/a", "extra": 1}).encode(),
        json.dumps({"v": SCHEMA_VERSION, "id": "x", "path": "/a", "sent_at": "soon"}).encode(),
        json.dumps({"v": SCHEMA_VERSION, "id": "x" * 500, "path": "/a"}).encode(),
    ],
)
def test_bad_requests_are_schema_errors(payload: bytes) -> None:
    with pytest.raises(SchemaError):
        decode_request(payload)


def test_encode_request_needs_exactly_one_source() -> None:
    with pytest.raises(SchemaError, match="exactly one"):
        encode_request("r", path="/a", s3="s3://b/k")
    with pytest.raises(SchemaError, match="exactly one"):
        encode_request("r")


def test_peek_id_of_malformed_request() -> None:
    assert peek_request_id(json.dumps({"id": "abc", "v": 7}).encode()) == "abc"
    assert peek_request_id(b"garbage") is None
    assert peek_request_id(None) is None


def test_result_roundtrip() -> None:
    result = Result(
        id="r",
        label="harmful",
        p_harmful=0.9,
        threshold=0.5,
        review=False,
        model_name="m",
        model_version="3",
        source="/a.jpg",
        sent_at=None,
        received_at=1.0,
        completed_at=1.5,
        latency_ms=500.0,
    )
    assert decode_result(encode_result(result)) == result
    with pytest.raises(SchemaError):
        decode_result(b'{"v": 1, "id": "x"}')


def test_dead_letter_headers_are_typed() -> None:
    headers = headers_dict(dead_letter_headers("truncated", "cut", "r9", "t/0/5"))
    assert headers[H_REASON] == "truncated"
    assert headers[H_REQUEST_ID] == "r9"
    with pytest.raises(ValueError, match="unknown reject reason"):
        dead_letter_headers("boom", "", None, "t/0/1")
