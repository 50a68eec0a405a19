"""The versioned JSON messages of the streaming side, and their codec.

A *request* (topic ``kafka.requests_topic``, key = request id) names exactly one image source::

    {"v": 1, "id": "7f3c...", "path": "/srv/images/gun.jpg", "sent_at": 1732519200.123}
    {"v": 1, "id": "7f3c...", "s3": "s3://bucket/key.jpg"}
    {"v": 1, "id": "7f3c...", "image_b64": "/9j/4AAQ..."}

A *result* (topic ``kafka.results_topic``, key = request id, so a redelivery overwrites rather than
duplicates) carries the label, the harmful probability, the threshold, the model that made it and
timings. Bad input goes to the dead-letter topic as the original payload (cut to a configured size)
with typed headers.

Requests are parsed strictly, because every byte of them is hostile: the size is checked before
parsing; at most `MAX_CONTAINERS` JSON objects or arrays (a request is one flat object, so nesting
depth is bounded before the parser recurses); duplicate keys, lone UTF-16 surrogates, integers of
more than `MAX_INT_DIGITS` digits, ``NaN`` and ``Infinity`` are refused; ids are 1 to
`MAX_ID_LENGTH` characters of `ID_PATTERN`. Every refusal is a `SchemaError` (``bad_schema``).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any, Final, Literal, get_args

from harmscan.decisions import INLINE_REQUEST_HEADER

SCHEMA_VERSION = 1
MAX_ID_LENGTH: Final = 128
ID_PATTERN: Final = re.compile(rf"[A-Za-z0-9._:@+=-]{{1,{MAX_ID_LENGTH}}}")
MAX_CONTAINERS: Final = 2  # JSON objects/arrays in one request: bounds the depth before parsing
# Commas outside strings: a request has a handful of fields; 450,000 numbers in an array cost the
# consumer ~1 s of CPU per message to parse twice (for the request, then its dead letter's id).
MAX_COMMAS: Final = 32
MAX_INT_DIGITS: Final = 20
DEFAULT_MAX_REQUEST_BYTES: Final = 1_000_000
# A JSON string literal once its escaped backslashes and quotes are gone (`_outside_strings`).
_PLAIN_STRING = re.compile(rb'"[^"]*"')

SourceKind = Literal["path", "s3", "image_b64"]
SOURCE_KINDS: tuple[str, ...] = get_args(SourceKind)

# The typed dead-letter reasons: those of `harmscan.imageio.REASONS` plus the request-level ones.
RejectReason = Literal[
    "not_an_image",
    "unsupported_format",
    "truncated",
    "corrupt",
    "too_large",
    "too_small",
    "decompression_bomb",
    "not_a_file",
    "bad_schema",
    "forbidden_path",
    "not_found",
    "internal_error",
    "poison_message",
]
REJECT_REASONS: tuple[str, ...] = get_args(RejectReason)

# Dead-letter headers (all values are UTF-8 strings).
H_REASON = "harmscan-reason"
H_DETAIL = "harmscan-detail"
H_REQUEST_ID = "harmscan-request-id"
H_SOURCE = "harmscan-source"  # topic/partition/offset of the original message
H_SCHEMA = "harmscan-schema-version"
# On the review copy of an inline request: the original request, so a reviewer can see the image.
H_INLINE_REQUEST = INLINE_REQUEST_HEADER
H_ORIGINAL_SIZE = "harmscan-original-size"  # bytes of the original value
H_ORIGINAL_SHA256 = "harmscan-original-sha256"  # hex sha256 of the original value
H_TRUNCATED = "harmscan-truncated"  # "1" when the value is a cut copy of the original
H_REPLAY_OF = "harmscan-replay-of"  # a replayed request: topic/partition/offset of its dead letter


# Characters that would let a request's text forge log lines or drive a terminal: C0/C1 controls
# (newline, escape...), Unicode line and paragraph separators, bidirectional overrides.
_UNSAFE_IN_LOGS: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def log_safe(text: str) -> str:
    """``text`` with the characters of `_UNSAFE_IN_LOGS` escaped (``\\n``, ``\\x1b``...)."""
    return _UNSAFE_IN_LOGS.sub(lambda found: repr(found.group())[1:-1], text)


class SchemaError(ValueError):
    """A message does not follow the schema; the message says what is wrong."""


@dataclass(frozen=True)
class Request:
    """One classification request.

    Attributes:
        id: Request id, echoed in the result and used as the message key.
        kind: Which source the image comes from: ``path``, ``s3`` or ``image_b64``.
        source: The local path, the ``s3://bucket/key`` URI, or the base64 image text.
        sent_at: Producer's Unix time in seconds, if it gave one.
    """

    id: str
    kind: SourceKind
    source: str
    sent_at: float | None = None

    def describe(self) -> str:
        """A short, log-safe description of the source (inline bytes are not echoed)."""
        if self.kind == "image_b64":
            return f"<inline {len(self.source)} base64 chars>"
        return log_safe(self.source)


@dataclass(frozen=True)
class Result:
    """The classification of one request.

    Attributes:
        id: The request id.
        label: ``harmful`` or ``safe``.
        p_harmful: Harmful probability in [0, 1].
        threshold: The threshold the label was decided with.
        review: Whether the score lies in the model's review band.
        model_name: Registered model name.
        model_version: Registered model version that produced this result.
        source: Where the image came from (path or s3 URI; ``inline`` for bytes).
        sent_at: Producer's timestamp (Unix s), or None.
        received_at: When the consumer received the message (Unix s).
        completed_at: When the result was made (Unix s).
        latency_ms: Processing latency inside the consumer, receive to result.
        precision: Which graph of the model scored it: ``float`` or ``int8``.
        frames_scored: How many frames of the image were scored (1 for a still image; an
            animated or multi-page image: up to ``serving.max_frames``, evenly spaced).
            ``p_harmful`` is the maximum over them.
        worst_frame: The index in the image of the frame that scored highest (0 = the first).
        frames_failed: Frames chosen for scoring that did not decode after a good first frame
            (not scored; 0 when every chosen frame was scored).
        v: Schema version.
    """

    id: str
    label: str
    p_harmful: float
    threshold: float
    review: bool
    model_name: str
    model_version: str
    source: str
    sent_at: float | None
    received_at: float
    completed_at: float
    latency_ms: float
    precision: str = "float"
    frames_scored: int = 1
    worst_frame: int = 0
    frames_failed: int = 0
    v: int = SCHEMA_VERSION


def encode_request(
    request_id: str,
    *,
    path: str | None = None,
    s3: str | None = None,
    image_b64: str | None = None,
    sent_at: float | None = None,
) -> bytes:
    """Encode a request naming exactly one of ``path``, ``s3`` or ``image_b64``.

    Raises:
        SchemaError: Not exactly one source given, or an empty id.
    """
    given = {k: v for k, v in (("path", path), ("s3", s3), ("image_b64", image_b64)) if v}
    if len(given) != 1:
        raise SchemaError(f"a request needs exactly one of {SOURCE_KINDS}; got {sorted(given)}")
    check_id(request_id)
    body: dict[str, Any] = {"v": SCHEMA_VERSION, "id": request_id, **given}
    if sent_at is not None:
        body["sent_at"] = sent_at
    return json.dumps(body, separators=(",", ":")).encode()


def check_id(request_id: object) -> str:
    """``request_id`` if it is a safe id (1 to `MAX_ID_LENGTH` characters of `ID_PATTERN`).

    Raises:
        SchemaError: Not a string, empty, too long, or holding other characters.
    """
    if not isinstance(request_id, str) or not ID_PATTERN.fullmatch(request_id):
        shown = repr(request_id)[:60] if isinstance(request_id, str) else type(request_id).__name__
        raise SchemaError(
            f"id must be 1-{MAX_ID_LENGTH} characters of A-Z a-z 0-9 . _ : @ + = -; got {shown}"
        )
    return request_id


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    counts = Counter(key for key, _value in pairs)  # list.count per key was quadratic
    if len(counts) != len(pairs):
        dupes = sorted(key for key, count in counts.items() if count > 1)
        raise SchemaError(f"duplicate keys {[d[:40] for d in dupes][:5]}")
    return dict(pairs)


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise SchemaError(f"an integer of {len(text)} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def _no_constant(name: str) -> Any:
    raise SchemaError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    if len(text) > 64:
        raise SchemaError(f"a number of {len(text)} characters (at most 64)")
    value = float(text)
    if not math.isfinite(value):
        raise SchemaError(f"number {text[:20]} is out of range")
    return value


def _outside_strings(value: bytes) -> bytes:
    """``value`` without its JSON string literals, in linear time.

    Escapes pair left to right, so removing every ``\\\\`` and then every ``\\"`` leaves only
    the quotes that open and close strings. (A single regex for a string with escapes was
    quadratic on a string that never closes: 40 kB of ``\\"`` took 41 s of the consumer's CPU.)
    """
    unescaped = value.replace(b"\\\\", b"").replace(b'\\"', b"")
    return _PLAIN_STRING.sub(b'""', unescaped)


def parse_json_strict(value: bytes, max_bytes: int = DEFAULT_MAX_REQUEST_BYTES) -> Any:
    """Parse untrusted JSON under explicit limits (see the module docstring).

    Raises:
        SchemaError: Too large, not UTF-8 JSON, too deeply nested, duplicate keys, lone
            surrogates, an oversized integer or a non-finite number.
    """
    if len(value) > max_bytes:
        raise SchemaError(
            f"message of {len(value)} bytes > {max_bytes}, the request size limit (an inline "
            "image at serving.max_inline_bytes, in base64, plus JSON); send large images by path "
            "or s3"
        )
    containers = _outside_strings(value)
    if containers.count(b"{") + containers.count(b"[") > MAX_CONTAINERS:
        raise SchemaError(f"more than {MAX_CONTAINERS} JSON objects/arrays (a request is flat)")
    if containers.count(b",") > MAX_COMMAS:
        raise SchemaError(f"more than {MAX_COMMAS + 1} JSON values (a request has a few fields)")
    try:
        text = value.decode("utf-8")
        body = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_int=_bounded_int,
            parse_float=_finite_float,
            parse_constant=_no_constant,
        )
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError) as exc:
        if isinstance(exc, SchemaError):
            raise
        if isinstance(exc, UnicodeDecodeError):
            raise SchemaError(_not_utf8(value, exc)) from None
        raise SchemaError(f"not JSON: {str(exc)[:200]}") from None
    _check_surrogates(body)
    return body


def _not_utf8(value: bytes, exc: UnicodeDecodeError) -> str:
    """What a client must change when its request is not UTF-8."""
    if value.startswith((b"\xff\xfe", b"\xfe\xff")):
        found = "it starts with a UTF-16 byte-order mark"
    else:
        found = f"byte 0x{value[exc.start]:02x} at position {exc.start} is not UTF-8"
    return f"not UTF-8: {found}; a request is UTF-8 JSON"


def _check_surrogates(body: Any) -> None:
    """Refuse lone UTF-16 surrogates (``"\\ud800"``): they cannot be encoded as UTF-8."""
    stack = [body]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise SchemaError("a string holds a lone UTF-16 surrogate") from None


def decode_request(value: bytes | None, max_bytes: int = DEFAULT_MAX_REQUEST_BYTES) -> Request:
    """Parse and validate a request message strictly.

    Args:
        value: The message value.
        max_bytes: Largest accepted message, checked before parsing.

    Raises:
        SchemaError: Any departure from the schema or the parsing limits.
    """
    if value is None:
        raise SchemaError("no value (a tombstone); a request is a JSON object")
    if not value:
        raise SchemaError("empty message; a request is a JSON object")
    body = parse_json_strict(value, max_bytes)
    if not isinstance(body, dict):
        raise SchemaError(f"a request is a JSON object, not {type(body).__name__}")
    version = body.get("v")
    if type(version) is not int or version != SCHEMA_VERSION:
        raise SchemaError(f"unsupported schema version {version!r}; valid: {SCHEMA_VERSION}")
    unknown = sorted(set(body) - {"v", "id", "sent_at", *SOURCE_KINDS})
    if unknown:
        shown = [u[:40] for u in unknown[:5]]
        raise SchemaError(f"unknown fields {shown}; valid: v, id, sent_at, {SOURCE_KINDS}")
    request_id = check_id(body.get("id"))
    sources = [k for k in SOURCE_KINDS if k in body]
    if len(sources) != 1:
        raise SchemaError(f"a request needs exactly one of {SOURCE_KINDS}; got {sources}")
    kind: SourceKind = sources[0]  # type: ignore[assignment]
    source = body[kind]
    if not isinstance(source, str):
        raise SchemaError(f"{kind} must be a string")
    if not source and kind != "image_b64":  # an empty inline image is not_an_image, not schema
        raise SchemaError(f"{kind} must be a non-empty string")
    sent_at = body.get("sent_at")
    if sent_at is not None and (
        isinstance(sent_at, bool)
        or not isinstance(sent_at, int | float)
        or not math.isfinite(sent_at)
    ):
        raise SchemaError(f"sent_at must be a number (Unix seconds), got {str(sent_at)[:40]!r}")
    return Request(id=request_id, kind=kind, source=source, sent_at=sent_at)


def peek_request_id(value: bytes | None) -> str | None:
    """The id of a possibly malformed request, if a safe one can be read (dead-letter headers)."""
    try:
        body = parse_json_strict(value or b"")
        return check_id(body.get("id")) if isinstance(body, dict) else None
    except SchemaError:
        return None


def encode_result(result: Result) -> bytes:
    """Encode a result as compact JSON."""
    return json.dumps(asdict(result), separators=(",", ":")).encode()


def decode_result(value: bytes) -> Result:
    """Parse a result message (for clients and tests).

    Raises:
        SchemaError: Not a result of a known schema version.
    """
    try:
        body = json.loads(value)
        if body.get("v") != SCHEMA_VERSION:
            raise SchemaError(f"unsupported result schema version {body.get('v')!r}")
        return Result(**body)
    except (TypeError, AttributeError, json.JSONDecodeError) as exc:
        raise SchemaError(f"not a result: {exc}") from None


def dead_letter_headers(
    reason: str, detail: str, request_id: str | None, source: str
) -> list[tuple[str, bytes]]:
    """Headers of a dead-letter record: typed reason, detail, request id, original position.

    Raises:
        ValueError: An unknown reason (a programming error).
    """
    if reason not in REJECT_REASONS:
        raise ValueError(f"unknown reject reason {reason!r}; valid: {REJECT_REASONS}")
    headers = [
        (H_REASON, reason.encode()),
        (H_DETAIL, detail[:1000].encode(errors="replace")),
        (H_SOURCE, source.encode()),
        (H_SCHEMA, str(SCHEMA_VERSION).encode()),
    ]
    if request_id:
        headers.append((H_REQUEST_ID, request_id.encode(errors="replace")))
    return headers


def headers_dict(headers: list[tuple[str, bytes]] | None) -> dict[str, str]:
    """Kafka headers as a str -> str dict (last value wins)."""
    return {k: (v or b"").decode(errors="replace") for k, v in headers or []}
