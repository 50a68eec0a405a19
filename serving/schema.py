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
from collections.abc import Callable
from dataclasses import MISSING, dataclass, fields
from typing import Any, Final, Literal, get_args

from harmscan.bundle import LABELS
from harmscan.digests import is_sha256_hex
from serving.strictjson import (
    DEFAULT_MAX_REQUEST_BYTES,
    SchemaError,
    parse_json_strict,
    top_level_pairs,
)

SCHEMA_VERSION = 1
MAX_ID_LENGTH: Final = 128
ID_PATTERN: Final = re.compile(rf"[A-Za-z0-9._:@+=-]{{1,{MAX_ID_LENGTH}}}")

# A request's sent_at is Unix seconds below this (the year 5138): a time in milliseconds is
# refused, not read as one 1000x in the future.
MAX_SENT_AT: Final = 1e11

SourceKind = Literal["path", "s3", "image_b64"]
SOURCE_KINDS: tuple[str, ...] = get_args(SourceKind)
# What a result may say: the model's two labels (harmful first, as messages show them), and
# which graph scored it.
RESULT_LABELS: Final = tuple(sorted(LABELS))
RESULT_PRECISIONS: Final = ("float", "int8")


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
        sha256: The SHA-256 (hex) of the bytes scored, on a result in the review band (None
            on the others): the review page checks that a path or object still holds them.
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
    sha256: str | None = None
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
    if sent_at is not None and not 0 <= sent_at < MAX_SENT_AT:
        # Results echo it: a value no 64-bit reader holds, or milliseconds read as seconds,
        # would pass on to every reader of the results.
        raise SchemaError(
            f"sent_at must be Unix seconds from 0 to {MAX_SENT_AT:.0e} (milliseconds are 1000x "
            f"too large), got {str(sent_at)[:40]}"
        )
    return Request(
        id=request_id,
        kind=kind,
        source=source,
        sent_at=None if sent_at is None else float(sent_at),
    )


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
    """Parse and validate a result message (the review page reads them from the review topic, so
    a malformed one must be refused here, never stored).

    Every field is checked for its type and value: ``id`` by `check_id`, ``label`` one of
    `RESULT_LABELS`, ``p_harmful`` and ``threshold`` finite numbers in [0, 1], times finite
    numbers (``sent_at`` may be null), ``review`` a boolean, the model's name and version and the
    source non-empty strings, the frame counts non-negative integers, ``sha256`` null or 64
    lowercase hex digits. Unknown fields are refused; the ones added after version 1
    (``precision``, the frame counts and ``sha256``) may be missing.

    Raises:
        SchemaError: Not a result of a known schema version, naming the first bad field.
    """
    body = parse_json_strict(value or b"")
    if not isinstance(body, dict):
        raise SchemaError(f"a result is a JSON object, not {type(body).__name__}")
    version = body.get("v")
    if type(version) is not int or version != SCHEMA_VERSION:
        raise SchemaError(f"unsupported result schema version {version!r}; valid: {SCHEMA_VERSION}")
    unknown = sorted(set(body) - set(_RESULT_FIELDS))
    if unknown:
        raise SchemaError(f"unknown result fields {[u[:40] for u in unknown[:5]]}")
    missing = [name for name in _REQUIRED_RESULT_FIELDS if name not in body]
    if missing:
        raise SchemaError(f"a result needs {missing}")
    checked = {name: check(name, body[name]) for name, check in _RESULT_CHECKS if name in body}
    return Result(**checked)


def _number(name: str, value: object, low: float = -math.inf, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SchemaError(f"{name} must be a number, not {type(value).__name__}")
    number = float(value)  # an int too large for a float is refused by the parser's digit limit
    if not (math.isfinite(number) and low <= number <= high):
        raise SchemaError(f"{name} must be a finite number in [{low}, {high}], got {number}")
    return number


def _text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        shown = type(value).__name__ if not isinstance(value, str) else "an empty string"
        raise SchemaError(f"{name} must be a non-empty string, not {shown}")
    return value


def _one_of(choices: tuple[str, ...]) -> Callable[[str, object], str]:
    def check(name: str, value: object) -> str:
        if not isinstance(value, str) or value not in choices:
            raise SchemaError(f"{name} must be one of {choices}, got {str(value)[:40]!r}")
        return value

    return check


def _count(name: str, value: object) -> int:
    if type(value) is not int or value < 0:
        raise SchemaError(f"{name} must be a non-negative integer, got {str(value)[:40]!r}")
    return value


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise SchemaError(f"{name} must be true or false, not {type(value).__name__}")
    return value


def _unit(name: str, value: object) -> float:
    return _number(name, value, 0.0, 1.0)


def _optional_number(name: str, value: object) -> float | None:
    return None if value is None else _number(name, value)


def _optional_sha256(name: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not is_sha256_hex(value):
        raise SchemaError(
            f"{name} must be null or 64 lowercase hex digits, got {str(value)[:40]!r}"
        )
    return value


def _unchecked(_name: str, value: object) -> object:
    return value


_Check = Callable[[str, Any], Any]
_RESULT_CHECKS: Final[tuple[tuple[str, _Check], ...]] = (
    ("v", _unchecked),  # checked first, in decode_result
    ("id", lambda _name, value: check_id(value)),
    ("label", _one_of(RESULT_LABELS)),
    ("p_harmful", _unit),
    ("threshold", _unit),
    ("review", _flag),
    ("model_name", _text),
    ("model_version", _text),
    ("source", _text),
    ("sent_at", _optional_number),
    ("received_at", _number),
    ("completed_at", _number),
    ("latency_ms", _number),
    ("precision", _one_of(RESULT_PRECISIONS)),
    ("frames_scored", _count),
    ("worst_frame", _count),
    ("frames_failed", _count),
    ("sha256", _optional_sha256),
)
_REQUIRED_RESULT_FIELDS: Final = tuple(
    f.name for f in fields(Result) if f.default is MISSING and f.default_factory is MISSING
)
