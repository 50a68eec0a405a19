"""The versioned JSON messages of the streaming side, and their codec.

A *request* (topic ``kafka.requests_topic``, key = request id) names exactly one image source::

    {"v": 1, "id": "7f3c...", "path": "/srv/images/gun.jpg", "sent_at": 1732519200.123}
    {"v": 1, "id": "7f3c...", "s3": "s3://bucket/key.jpg"}
    {"v": 1, "id": "7f3c...", "image_b64": "/9j/4AAQ..."}

A *result* (topic ``kafka.results_topic``, key = request id, so a redelivery overwrites rather than
duplicates) carries the label, the harmful probability, the threshold, the model that made it and
timings. Bad input goes to the dead-letter topic as the original payload (cut to a configured size)
with typed headers.

Requests are parsed strictly (`serving.strictjson`), because every byte of them is hostile; ids
are 1 to `MAX_ID_LENGTH` characters of `ID_PATTERN`. Every refusal is a `SchemaError`
(``bad_schema``). The dead-letter reasons and headers are in `serving.headers`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, fields
from typing import Any, Final, Literal, get_args

from serving.strictjson import (
    DEFAULT_MAX_REQUEST_BYTES,
    SchemaError,
    parse_json_strict,
    top_level_pairs,
)

SCHEMA_VERSION = 1
MAX_ID_LENGTH: Final = 128
ID_PATTERN: Final = re.compile(rf"[A-Za-z0-9._:@+=-]{{1,{MAX_ID_LENGTH}}}")

SourceKind = Literal["path", "s3", "image_b64"]
SOURCE_KINDS: tuple[str, ...] = get_args(SourceKind)


# Characters that would let a request's text forge log lines or drive a terminal: C0/C1 controls
# (newline, escape...), Unicode line and paragraph separators, bidirectional overrides.
_UNSAFE_IN_LOGS: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def log_safe(text: str) -> str:
    """``text`` with the characters of `_UNSAFE_IN_LOGS` escaped (``\\n``, ``\\x1b``...)."""
    return _UNSAFE_IN_LOGS.sub(lambda found: repr(found.group())[1:-1], text)


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
    pairs = (("path", path), ("s3", s3), ("image_b64", image_b64))
    given = {k: v for k, v in pairs if v is not None}
    if len(given) != 1:
        raise SchemaError(f"a request needs exactly one of {SOURCE_KINDS}; got {sorted(given)}")
    ((kind, source),) = given.items()
    if not source and kind != "image_b64":  # empty inline bytes: the consumer dead-letters them
        raise SchemaError(f"{kind} must be a non-empty string")
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
    """The id of a possibly malformed request, if a safe one can be read (dead-letter headers).

    A document the strict parser refuses (a duplicate field, NaN, a lone surrogate, a byte that
    is not UTF-8) still names its sender's id: read leniently, one ``id`` that passes
    `check_id` by itself is it (two different ones name none), so the dead letter can be
    matched to its request.
    """
    try:
        body = parse_json_strict(value or b"")
    except SchemaError:
        ids = [v for k, v in top_level_pairs(value or b"") if k == "id"]
        body = {"id": ids[0]} if ids and all(i == ids[0] for i in ids) else None
    try:
        return check_id(body.get("id")) if isinstance(body, dict) else None
    except SchemaError:
        return None


_RESULT_FIELDS: Final = tuple(f.name for f in fields(Result))


def encode_result(result: Result) -> bytes:
    """Encode a result as compact JSON (every field is a scalar: a shallow dict of them is what
    ``asdict`` made, without its deep copy, ~0.4x the time)."""
    body = {name: getattr(result, name) for name in _RESULT_FIELDS}
    return json.dumps(body, separators=(",", ":")).encode()


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
