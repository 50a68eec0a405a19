"""What a consumed request turns into: the records to produce (result, review copy, dead letter)."""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import Message

from conf.settings import Settings
from serving.classifier import Outcome, Rejection
from serving.schema import H_INLINE_REQUEST, dead_letter_headers, encode_result


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
        where = "/".join(str(part) for part in position(message))
        original = [
            (str(h[0]), h[1] if isinstance(h[1], bytes) else b"") for h in message.headers() or []
        ]
        headers = original + dead_letter_headers(
            outcome.reason, outcome.detail, outcome.request_id, where
        )
        return [
            Record("dead_letter", kafka.dead_letter_topic, message.key(), message.value(), headers)
        ]
    value = encode_result(outcome)
    key = outcome.id.encode()
    records = [Record("results", kafka.results_topic, key, value, [])]
    if outcome.review:
        # Inline bytes are not in the result; the review copy carries the request for the page.
        inline = outcome.source == "inline" and message.value() is not None
        extra = [(H_INLINE_REQUEST, bytes(message.value() or b""))] if inline else []
        records.append(Record("review", kafka.review_topic, key, value, extra))
    return records
