"""The typed dead-letter reasons and the ``harmscan-*`` headers of dead-letter and review copies."""

from __future__ import annotations

from typing import Literal, get_args

from harmscan.decisions import INLINE_REQUEST_HEADER
from serving.schema import SCHEMA_VERSION

# The typed dead-letter reasons: `harmscan.imagepolicy.REASONS` plus the request-level ones.
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
