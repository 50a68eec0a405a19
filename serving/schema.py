"""The versioned JSON messages of the streaming side, and their codec.

A *request* (topic ``kafka.requests_topic``, key = request id) names exactly one image source::

    {"v": 1, "id": "7f3c...", "path": "/srv/images/gun.jpg", "sent_at": 1732519200.123}
    {"v": 1, "id": "7f3c...", "s3": "s3://bucket/key.jpg"}
    {"v": 1, "id": "7f3c...", "image_b64": "/9j/4AAQ..."}

A *result* (topic ``kafka.results_topic``, key = request id, so a redelivery overwrites rather than
duplicates) carries the label, the harmful probability, the threshold, the model that made it and
timings. Bad input goes to the dead-letter topic as the original payload with typed headers.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

from harmscan.decisions import INLINE_REQUEST_HEADER

SCHEMA_VERSION = 1
MAX_ID_LENGTH = 200

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
        return self.source


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
    if not request_id:
        raise SchemaError("a request needs a non-empty id")
    body: dict[str, Any] = {"v": SCHEMA_VERSION, "id": request_id, **given}
    if sent_at is not None:
        body["sent_at"] = sent_at
    return json.dumps(body, separators=(",", ":")).encode()


def decode_request(value: bytes | None) -> Request:
    """Parse and validate a request message.

    Raises:
        SchemaError: Not JSON, wrong version, missing/extra fields, or not exactly one source.
    """
    if not value:
        raise SchemaError("empty message")
    try:
        body = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SchemaError(f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise SchemaError(f"a request is a JSON object, not {type(body).__name__}")
    if body.get("v") != SCHEMA_VERSION:
        raise SchemaError(f"unsupported schema version {body.get('v')!r}; valid: {SCHEMA_VERSION}")
    unknown = sorted(set(body) - {"v", "id", "sent_at", *SOURCE_KINDS})
    if unknown:
        raise SchemaError(f"unknown fields {unknown}; valid: v, id, sent_at, {SOURCE_KINDS}")
    request_id = body.get("id")
    if not isinstance(request_id, str) or not request_id or len(request_id) > MAX_ID_LENGTH:
        raise SchemaError(f"id must be a non-empty string of <= {MAX_ID_LENGTH} chars")
    sources = [k for k in SOURCE_KINDS if k in body]
    if len(sources) != 1:
        raise SchemaError(f"a request needs exactly one of {SOURCE_KINDS}; got {sources}")
    kind: SourceKind = sources[0]  # type: ignore[assignment]
    source = body[kind]
    if not isinstance(source, str) or not source:
        raise SchemaError(f"{kind} must be a non-empty string")
    sent_at = body.get("sent_at")
    if sent_at is not None and (
        isinstance(sent_at, bool)
        or not isinstance(sent_at, int | float)
        or not math.isfinite(sent_at)
    ):
        raise SchemaError(f"sent_at must be a number (Unix seconds), got {sent_at!r}")
    return Request(id=request_id, kind=kind, source=source, sent_at=sent_at)


def peek_request_id(value: bytes | None) -> str | None:
    """The id of a possibly malformed request, if one can be read (for dead-letter headers)."""
    try:
        body = json.loads(value or b"")
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    request_id = body.get("id") if isinstance(body, dict) else None
    return request_id[:MAX_ID_LENGTH] if isinstance(request_id, str) else None


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
