"""The request/result codec and dead-letter headers."""

from __future__ import annotations

import json

import pytest

from serving.headers import H_REASON, H_REQUEST_ID, dead_letter_headers, headers_dict
from serving.schema import (
    SCHEMA_VERSION,
    Result,
    SchemaError,
    decode_request,
    decode_result,
    encode_request,
    encode_result,
    log_safe,
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


def test_an_empty_inline_image_is_encoded_but_an_empty_path_or_uri_is_not() -> None:
    request = decode_request(encode_request("r", image_b64=""))  # the consumer dead-letters it
    assert (request.kind, request.source) == ("image_b64", "")
    for kind in ("path", "s3"):
        with pytest.raises(SchemaError, match=f"{kind} must be a non-empty string"):
            encode_request("r", **{kind: ""})


def test_sent_at_is_read_as_float_seconds() -> None:
    request = decode_request(b'{"v":1,"id":"a","path":"/a","sent_at":1732519200}')
    assert request.sent_at == 1732519200.0
    assert isinstance(request.sent_at, float)
    assert decode_request(b'{"v":1,"id":"a","path":"/a","sent_at":0}').sent_at == 0.0


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


def result_body(**changes: object) -> bytes:
    body: dict[str, object] = {
        "v": 1, "id": "r", "label": "harmful", "p_harmful": 0.9, "threshold": 0.5,
        "review": True, "model_name": "m", "model_version": "3", "source": "/a.jpg",
        "sent_at": None, "received_at": 1.0, "completed_at": 1.5, "latency_ms": 500.0,
    }  # fmt: skip
    body.update(changes)
    return json.dumps({k: v for k, v in body.items() if v != "<absent>"}).encode()


def test_a_well_formed_result_decodes() -> None:
    result = decode_result(result_body(id="..", sent_at=3, precision="int8", frames_scored=4))
    shown = (result.id, result.sent_at, result.precision, result.frames_scored)
    assert shown == ("..", 3.0, "int8", 4)
    assert result.sha256 is None  # a result of an older consumer carries no digest
    digest = "0123456789abcdef" * 4
    assert decode_result(result_body(sha256=digest)).sha256 == digest
    assert decode_result(result_body(sha256=None)).sha256 is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model_version": ["2"]}, "model_version must be a non-empty string"),
        ({"model_name": {"a": 1}}, "model_name must be a non-empty string"),
        ({"model_version": ""}, "model_version must be a non-empty string"),
        ({"source": 7}, "source must be a non-empty string"),
        ({"id": None}, "id must be"),
        ({"id": "a/b"}, "id must be"),
        ({"id": "x" * 129}, "id must be"),
        ({"id": "<absent>"}, "needs"),
        ({"label": "maybe"}, "label must be one of"),
        ({"label": None}, "label must be one of"),
        ({"p_harmful": "0.5"}, "p_harmful must be a number"),
        ({"p_harmful": True}, "p_harmful must be a number"),
        ({"p_harmful": 1.5}, "p_harmful must be a finite number in"),
        ({"threshold": -0.1}, "threshold must be a finite number in"),
        ({"completed_at": "yesterday"}, "completed_at must be a number"),
        ({"received_at": None}, "received_at must be a number"),
        ({"sent_at": [1]}, "sent_at must be a number"),
        ({"latency_ms": "5"}, "latency_ms must be a number"),
        ({"review": 1}, "review must be true or false"),
        ({"precision": "fp16"}, "precision must be one of"),
        ({"frames_scored": 1.0}, "frames_scored must be a non-negative integer"),
        ({"worst_frame": -1}, "worst_frame must be a non-negative integer"),
        ({"frames_failed": False}, "frames_failed must be a non-negative integer"),
        ({"sha256": "ABCDEF" * 10 + "ABCD"}, "sha256 must be null or 64 lowercase hex"),
        ({"sha256": "ab" * 31}, "sha256 must be null or 64 lowercase hex"),
        ({"sha256": 7}, "sha256 must be null or 64 lowercase hex"),
        ({"v": True}, "schema version"),
        ({"extra": 1}, "unknown result fields"),
    ],
)
def test_malformed_results_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        decode_result(result_body(**changes))


@pytest.mark.parametrize(
    "value", [b"", b"[1]", b"null", b"{", b'{"v": 1, "p_harmful": NaN}', b"\xff", b"[" * 5000]
)
def test_results_that_are_not_json_objects_are_refused(value: bytes) -> None:
    with pytest.raises(SchemaError):
        decode_result(value)


def test_dead_letter_headers_are_typed() -> None:
    headers = headers_dict(dead_letter_headers("truncated", "cut", "r9", "t/0/5"))
    assert headers[H_REASON] == "truncated"
    assert headers[H_REQUEST_ID] == "r9"
    with pytest.raises(ValueError, match="unknown reject reason"):
        dead_letter_headers("boom", "", None, "t/0/1")


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (b'{"v":1,"id":"a","path":"/a","sent_at":' + b"9" * 5000 + b"}", "integer of 5000"),
        (b'{"v":1,"id":"a","path":"/a","sent_at":' + b"9" * 21 + b"}", "integer of 21"),
        (b'{"v":1,"id":"a\\ud800","path":"/a"}', "field 'id' holds a lone UTF-16 surrogate"),
        (b'{"v":1,"id":"a","path":"/\\udfff"}', r"field 'path' .*\\udfff.*send its bytes inline"),
        (b'{"v":1,"id":"a","path":"/a","\\ud800":1}', "a key holds a lone UTF-16 surrogate"),
        (b"[" * 5000 + b"]" * 5000, "objects/arrays"),
        (b'{"a":' * 150_000 + b"1" + b"}" * 150_000, "objects/arrays"),
        (b'{"v":1,"id":"a","id":"b","path":"/a"}', "duplicate keys"),
        (b'{"v":1,"v":1,"id":"a","path":"/a"}', "duplicate keys"),
        (b'{"v":1,"id":"a","path":"/a","sent_at":NaN}', "not a JSON number"),
        (b'{"v":1,"id":"a","path":"/a","sent_at":1e999}', "out of range"),
        (b'{"v":1,"id":"a","path":"/a","sent_at":-1e300}', "sent_at must be Unix seconds from 0"),
        (b'{"v":1,"id":"a","path":"/a","sent_at":1.79e308}', "sent_at must be Unix seconds"),
        (b'{"v":1,"id":"a","path":"/a","sent_at":1732519200123}', r"milliseconds are 1000x"),
        (b'{"v":1,"id":"a","path":"/a","sent_at":99999999999999999999}', "sent_at must be Unix"),
        (b'{"v":true,"id":"a","path":"/a"}', "schema version"),
        (b'{"v":1.0,"id":"a","path":"/a"}', "schema version"),
        (b'{"v":1,"id":"a b","path":"/a"}', "id must be"),
        (b'{"v":1,"id":"' + b"x" * 129 + b'","path":"/a"}', "id must be"),
        (b'{"v":1,"id":7,"path":"/a"}', "id must be"),
    ],
)
def test_hostile_requests_are_refused_with_a_reason(payload: bytes, problem: str) -> None:
    with pytest.raises(SchemaError, match=problem):
        decode_request(payload)


def test_size_is_checked_before_parsing() -> None:
    payload = b'{"v":1,"id":"' + b"x" * 1_000_000 + b'","path":"/a"}'
    with pytest.raises(SchemaError, match=r"bytes > 1000, the request size limit .* by path or s3"):
        decode_request(payload, max_bytes=1000)


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    request = decode_request(encode_request("a", path='/srv/[x]{y}"z\\[.jpg'))
    assert request.source == '/srv/[x]{y}"z\\[.jpg'


def test_an_empty_inline_image_is_not_a_schema_error() -> None:
    request = decode_request(b'{"v":1,"id":"a","image_b64":""}')
    assert (request.kind, request.source) == ("image_b64", "")


@pytest.mark.parametrize(
    "payload",
    [
        b'\xef\xbb\xbf{"v":1,"id":"r7","path":"/a"}',  # a byte-order mark first
        b'{"v":1,"id":"r7","path":"/a"}garbage',
        b'{"v":1,"id":"r7","path":"/a"}\x00',
        b'{"v":1,"id":"r7","path":"/a"}{"v":1,"id":"r8","path":"/b"}',
        b'\n {"v":1,"id":"r7","path":"/a"} x',
    ],
)
def test_a_refused_document_with_its_id_at_the_start_still_names_it(payload: bytes) -> None:
    with pytest.raises(SchemaError):
        decode_request(payload)
    assert peek_request_id(payload) == "r7"  # the dead letter can be matched to its request


def test_peek_id_only_returns_safe_ids() -> None:
    assert peek_request_id(b'{"id":"a\\ud800"}') is None
    assert peek_request_id(b'{"id":"' + b"x" * 500 + b'"}') is None
    assert peek_request_id(b'{"id":"a","id":"b"}') is None
    assert peek_request_id(b'{"id":"a","id":5}') is None


@pytest.mark.parametrize(
    "payload",
    [
        b'{"v":1,"id":"req-1","path":"x","path":"/srv/a.jpg"}',  # a duplicate field
        b'{"v":1,"id":"req-1","path":"/srv/na\udcffme.png"}',  # a lone surrogate
        b'{"v":1,"id":"req-1","path":"/srv/na\xffme.png"}',  # a byte that is not UTF-8
        b'{"v":1,"id":"req-1","path":"/srv/a.jpg","sent_at":NaN}',
        b'{"v":1,"id":"req-1","path":"/srv/a.jpg","sent_at":1234567890123456789012}',
        b'{"v":1,"id":"req-1","id":"req-1","path":"/srv/a.jpg"}',  # the same id twice
    ],
    ids=["duplicate-field", "surrogate", "not-utf8", "nan", "huge-int", "same-id-twice"],
)
def test_a_refused_document_still_names_its_own_valid_id(payload: bytes) -> None:
    with pytest.raises(SchemaError):
        decode_request(payload)
    assert peek_request_id(payload) == "req-1"


FORGED_LINE = "/srv/a.jpg\n2026-11-30 INFO serving.accounting: [image_9] Path: /srv/gun.jpg -> safe"


def test_a_request_cannot_forge_log_lines_or_drive_a_terminal() -> None:
    request = decode_request(encode_request("a", path=FORGED_LINE + "\x1b[2J\u202e\u2028"))
    shown = request.describe()
    assert "\n" not in shown
    assert "\x1b" not in shown
    assert shown.endswith("\\n2026-11-30 INFO serving.accounting: [image_9] Path: /srv/gun.jpg "
                          "-> safe\\x1b[2J\\u202e\\u2028")  # fmt: skip
    assert log_safe("/srv/фото 🙂.jpg") == "/srv/фото 🙂.jpg"  # printable text stays as it is


def test_dead_letter_and_result_log_lines_stay_one_line(caplog: pytest.LogCaptureFixture) -> None:
    from serving.accounting import BatchReport
    from serving.classifier import Rejection
    from serving.metrics import ServingMetrics

    report = BatchReport(ServingMetrics(), consumer=None)  # type: ignore[arg-type]
    with caplog.at_level("INFO", logger="serving.accounting"):
        report.outcome(Rejection("not_found", f"no such file: {FORGED_LINE}", None))
        report.outcome(
            Result(id="r", label="harmful", p_harmful=0.9, threshold=0.5, review=False,
                   model_name="m", model_version="1", source=FORGED_LINE, sent_at=None,
                   received_at=1.0, completed_at=1.5, latency_ms=500.0)
        )  # fmt: skip
    assert len(caplog.records) == 2
    assert all("\n" not in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize(
    "payload",
    [
        b'{"v":1,"id":"a","path":"/a\\\\"}',  # an escaped backslash ends the string
        b'{"v":1,"id":"a","path":"/a\\"{[]}"}',  # an escaped quote does not
        b'{"v":1,"id":"a","path":"/a\\\\\\"[[[\\\\"}',
    ],
)
def test_escapes_inside_strings_do_not_hide_or_add_nesting(payload: bytes) -> None:
    assert decode_request(payload).id == "a"


def test_an_unterminated_string_of_escapes_is_refused_in_one_pass() -> None:
    # The old scan retried from every quote: 40 kB of escaped quotes cost 41 s, 900 kB hours.
    from serving.strictjson import _outside_strings

    payload = b'{"v":1,"id":"a","path":"' + b'\\"' * 450_000
    assert _outside_strings(payload) == b'{"":1,"":"","":"'
    with pytest.raises(SchemaError, match="Unterminated string"):
        decode_request(payload)


def test_duplicate_keys_among_many_are_found_in_linear_time() -> None:
    # Each key was counted with list.count: 32,000 keys and one duplicate took 18 s of the
    # consumer's CPU, a 900 kB request minutes.
    from serving import strictjson

    keys = [str(i) for i in range(100_000)] + ["0"]
    with pytest.raises(SchemaError, match=r"duplicate keys \['0'\]"):
        strictjson._no_duplicates([(key, 1) for key in keys])


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        ('{"v":1,"id":"a","path":"/a"}'.encode("utf-16"), "UTF-16 byte-order mark"),
        (b'{"v":1,"id":"a","path":"/caf\xe9.jpg"}', "byte 0xe9 at position 28 is not UTF-8"),
    ],
)
def test_a_request_that_is_not_utf8_says_what_to_send(payload: bytes, says: str) -> None:
    with pytest.raises(SchemaError, match="a request is UTF-8 JSON") as info:
        decode_request(payload)
    assert says in str(info.value)


@pytest.mark.parametrize(
    "payload",
    [
        b"[" + b"1," * 450_000 + b"1]",
        b"{" + b",".join(b'"k%d":1' % i for i in range(90_000)) + b"}",
        b"[" + b'"",' * 300_000 + b'""]',
    ],
    ids=["numbers", "keys", "strings"],
)
def test_hundreds_of_thousands_of_values_are_refused_before_parsing(payload: bytes) -> None:
    # 450,000 numbers took ~0.5 s to parse, twice per message (request, dead letter id); the
    # count of commas outside strings refuses them in milliseconds, before the parser runs.
    with pytest.raises(SchemaError, match="JSON values"):
        decode_request(payload)
    assert peek_request_id(payload) is None
    commas = b'{"v":1,"id":"a","path":"/a,b' + b"," * 5000 + b'.jpg","sent_at":1}'
    assert decode_request(commas).source.count(",") == 5001  # commas in strings do not count
