"""What a consumed request turns into: the records to produce (result, review copy, dead letter).

A dead-letter record always fits the broker's message limit, whatever the original was: its value
is the original cut to ``serving.dead_letter_max_payload_bytes`` (with the original's size and
sha256 in headers, and ``harmscan-truncated: 1`` when cut), its key is cut to `MAX_KEY_BYTES`, and
the original headers are copied only up to `MAX_COPIED_HEADER_BYTES` (``harmscan-headers-dropped``
counts the rest).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Final

from confluent_kafka import Message

from conf.settings import Settings
from serving.classifier import Outcome, Rejection, internal_error
from serving.headers import (
    H_DETAIL,
    H_INLINE_REQUEST,
    H_ORIGINAL_SHA256,
    H_ORIGINAL_SIZE,
    H_REASON,
    H_REQUEST_ID,
    H_SCHEMA,
    H_SOURCE,
    H_TRUNCATED,
    dead_letter_headers,
)
from serving.schema import encode_result

MAX_KEY_BYTES: Final = 256
MAX_COPIED_HEADER_BYTES: Final = 16_384
# What one more header costs in a record beyond its name and value (length varints); counted so
# that thousands of empty headers cannot slip past the cap.
HEADER_OVERHEAD_BYTES: Final = 8
# How many of the original headers did not fit in the copy (absent when none was dropped).
H_HEADERS_DROPPED: Final = "harmscan-headers-dropped"
# The headers a dead letter's own facts travel in: a request carrying any of them (a spoofed
# ``harmscan-truncated: 1`` made a dead letter unreplayable, a spoofed request id answered
# ``dlq replay --id``) has them dropped from the copy, so each fact has one source.
OWN_DEAD_LETTER_HEADERS: Final = frozenset(
    {
        H_REASON,
        H_DETAIL,
        H_REQUEST_ID,
        H_SOURCE,
        H_SCHEMA,
        H_ORIGINAL_SIZE,
        H_ORIGINAL_SHA256,
        H_TRUNCATED,
        H_HEADERS_DROPPED,
    }
)


@dataclass(frozen=True)
class Record:
    """One message to produce."""

    kind: str  # results, review, dead_letter
    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


def position(message: Message) -> tuple[str, int, int]:
    """Topic, partition and offset of a consumed (non-error) message."""
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    if topic is None or partition is None or offset is None:
        raise ValueError("not a consumed message (no topic, partition or offset)")
    return topic, partition, offset


def records_for(message: Message, outcome: Outcome, settings: Settings) -> list[Record]:
    """The records one consumed message turns into: result (+ review copy), or a dead letter."""
    kafka = settings.kafka
    if isinstance(outcome, Rejection):
        return [dead_letter(message, outcome, settings)]
    value = encode_result(outcome)
    key = outcome.id.encode()
    records = [Record("results", kafka.results_topic, key, value, [])]
    if outcome.review:
        # Inline bytes are not in the result; the review copy carries the request for the page.
        inline = outcome.source == "inline" and message.value() is not None
        extra = [(H_INLINE_REQUEST, bytes(message.value() or b""))] if inline else []
        records.append(Record("review", kafka.review_topic, key, value, extra))
    return records


def batch_records(
    batch: list[Message], outcomes: list[Outcome], settings: Settings
) -> list[Record]:
    """The records of a batch, in order; a message whose records cannot be made is dead-lettered
    (its outcome in ``outcomes`` is replaced by that rejection)."""
    records: list[Record] = []
    for index, (message, outcome) in enumerate(zip(batch, outcomes, strict=True)):
        try:
            records.extend(records_for(message, outcome, settings))
        except Exception as exc:  # the one rule: this message's fault, not the loop's
            rejection = internal_error(exc, None)
            outcomes[index] = rejection
            records.append(dead_letter(message, rejection, settings))
    return records


def dead_letter(message: Message, rejection: Rejection, settings: Settings) -> Record:
    """The dead-letter record of ``message``: a bounded copy with typed headers."""
    where = "/".join(str(part) for part in position(message))
    value = message.value()
    original = value or b""
    # A tombstone's dead letter is a tombstone (it was an empty value: null and empty differ).
    copy = None if value is None else original[: settings.serving.dead_letter_max_payload_bytes]
    headers = copied_headers(message)
    headers += dead_letter_headers(rejection.reason, rejection.detail, rejection.request_id, where)
    headers += [
        (H_ORIGINAL_SIZE, str(len(original)).encode()),
        (H_ORIGINAL_SHA256, hashlib.sha256(original).hexdigest().encode()),
    ]
    if copy is not None and len(copy) < len(original):
        headers.append((H_TRUNCATED, b"1"))
    key = message.key()
    key = key[:MAX_KEY_BYTES] if key else key
    return Record("dead_letter", settings.kafka.dead_letter_topic, key, copy, headers)


def readable_headers(message: Message) -> list[tuple[str, Any]]:
    """The message's headers, or none when confluent-kafka cannot read them.

    A header name that is not UTF-8 (any client but the Python one can send it) makes
    ``headers()`` raise ``SystemError`` once and then return that header with a NULL name, which
    crashed the consumer process (SIGSEGV) when read; so such a message's headers are replaced
    by none on the first failure.
    """
    try:
        headers = message.headers() or []
    except (SystemError, UnicodeDecodeError, ValueError):
        message.set_headers([])
        return []
    return list(headers.items() if isinstance(headers, dict) else headers)


def byte_headers(message: Message) -> list[tuple[str, bytes]]:
    """`readable_headers` with every name as text and every value as bytes (a None value, as a
    header without one reads, becomes empty), for readers of results and dead letters."""
    return [(str(name), value if isinstance(value, bytes) else b"")
            for name, value in readable_headers(message)]  # fmt: skip


def copied_headers(message: Message) -> list[tuple[str, bytes]]:
    """The original headers, in order, as many as fit in `MAX_COPIED_HEADER_BYTES`, without any
    named like the dead letter's own (`OWN_DEAD_LETTER_HEADERS`), then `H_HEADERS_DROPPED` with
    the count of those that did not fit (they were dropped silently, and one header too big to
    fit dropped every header after it)."""
    kept: list[tuple[str, bytes]] = []
    size = dropped = 0
    for header in readable_headers(message):
        name, value = str(header[0]), header[1]
        if name.lower() in OWN_DEAD_LETTER_HEADERS:
            continue
        raw = value if isinstance(value, bytes) else b""
        cost = len(name.encode(errors="replace")) + len(raw) + HEADER_OVERHEAD_BYTES
        if size + cost > MAX_COPIED_HEADER_BYTES:
            dropped += 1
            continue
        size += cost
        kept.append((name, raw))
    if dropped:
        kept.append((H_HEADERS_DROPPED, str(dropped).encode()))
    return kept
