"""Record batches the Kafka client cannot decompress: measured, dead-lettered and stepped over.

librdkafka refuses a compressed record batch it cannot decompress (corrupt data, or a batch that
inflates past its buffer limit: a ~1 MB zstd batch of 100 MB of requests) with a
``_BAD_COMPRESSION`` error at the batch's first offset, and fetches the same batch again forever:
its partition stalls and every request behind it waits. The error names only the batch's first
offset, so `batch_end` finds its last one by bisection with a throw-away reader (a fetch from
inside the batch fails at the same first offset; one from past it does not). The consumer then
dead-letters one record naming the offsets (``corrupt``; the requests themselves cannot be read,
so the dead letter carries no payload), commits past the batch and goes on.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Final

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from conf.settings import Settings
from serving.accounting import BatchReport
from serving.delivery import Commits, DeliveryFailed, deliver
from serving.headers import H_TRUNCATED, dead_letter_headers
from serving.records import Record

logger = logging.getLogger(__name__)

# Errors of one record batch (not of the connection): librdkafka re-fetches it forever.
UNDECODABLE_CODES: Final = frozenset({KafkaError._BAD_COMPRESSION})
PROBE_TIMEOUT_S: Final = 10.0


@dataclass(frozen=True)
class Undecodable:
    """A record batch that did not decompress: where it starts and what the client said."""

    topic: str
    partition: int
    base: int
    error: str


def undecodable_batches(messages: list[Message], after: list[Message]) -> list[Undecodable]:
    """The distinct undecodable batches reported among a poll's messages, in order, except on
    the partitions of ``after`` (the poll's good messages, which come before such a batch: they
    are handled first, and the batch is reported again on the next poll)."""
    busy = {(m.topic(), m.partition()) for m in after}
    found: dict[tuple[str, int, int], Undecodable] = {}
    for message in messages:
        error = message.error()
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        if error is None or error.code() not in UNDECODABLE_CODES:
            continue
        if topic is None or partition is None or offset is None or offset < 0:
            continue
        if (topic, partition) in busy:
            continue
        found.setdefault((topic, partition, offset), Undecodable(topic, partition, offset,
                                                                 error.str()))  # fmt: skip
    return list(found.values())


def _inside(reader: Consumer, batch: Undecodable, offset: int, deadline: float) -> bool:
    """Whether a fetch from ``offset`` fails at the batch's first offset (it is inside it)."""
    reader.assign([TopicPartition(batch.topic, batch.partition, offset)])
    while time.monotonic() < deadline:
        for message in reader.consume(1, 0.5):
            error = message.error()
            if error is None or error.code() == KafkaError._PARTITION_EOF:
                return False
            if error.code() in UNDECODABLE_CODES:
                return message.offset() == batch.base
    raise TimeoutError(f"no answer fetching {batch.topic}[{batch.partition}] at {offset}")


def batch_end(settings: Settings, batch: Undecodable, timeout: float = PROBE_TIMEOUT_S) -> int:
    """The last offset of an undecodable batch (bisection between its start and the log end).

    Raises:
        TimeoutError: The broker did not answer within ``timeout`` (retried on the next poll).
    """
    reader = Consumer(
        {
            **settings.kafka.client_config(),
            "group.id": f"harmscan-probe-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    deadline = time.monotonic() + timeout
    try:
        where = TopicPartition(batch.topic, batch.partition)
        _low, high = reader.get_watermark_offsets(where, timeout)
        low, past = batch.base + 1, max(high, batch.base + 1)  # the first offset past the batch
        while low < past:
            middle = (low + past) // 2
            if _inside(reader, batch, middle, deadline):
                low = middle + 1
            else:
                past = middle
        return low - 1
    finally:
        reader.close()


def dead_letter_for(settings: Settings, batch: Undecodable, end: int) -> Record:
    """The dead letter of an undecodable batch: no payload, its offsets and the fix."""
    count = end - batch.base + 1
    detail = (
        f"offsets {batch.base}-{end} of {batch.topic}[{batch.partition}] ({count} record(s)) "
        f"are one compressed record batch the consumer cannot decompress ({batch.error}); they "
        "were skipped. Producers: keep a batch under serving.max_inflated_batch_bytes="
        f"{settings.serving.max_inflated_batch_bytes} decompressed (lower batch.size or "
        "linger.ms, or compression.type=none) and send these requests again"
    )
    where = f"{batch.topic}/{batch.partition}/{batch.base}"
    # Marked as a cut copy: there is no original to replay.
    headers = [*dead_letter_headers("corrupt", detail, None, where), (H_TRUNCATED, b"1")]
    return Record("dead_letter", settings.kafka.dead_letter_topic, None, b"", headers)


def step_over(
    items: list[Undecodable],
    settings: Settings,
    consumer: Consumer,
    producer: Producer,
    commits: Commits,
    report: BatchReport,
) -> bool:
    """Dead-letter each undecodable record batch and commit past it synchronously, in order.

    Returns:
        False when one could not be stepped over (logged; the caller waits and polls it again).
    """
    for item in items:
        try:
            end = batch_end(settings, item)
            record = dead_letter_for(settings, item, end)
            deliver(producer, [record], settings.serving.delivery_timeout_s)
            skip = TopicPartition(item.topic, item.partition, end + 1)
            commits.sync(consumer, [skip])
            consumer.seek(skip)
        except (TimeoutError, DeliveryFailed, KafkaException) as exc:
            logger.error("could not step over undecodable batch %s (retried): %s", item, exc)
            return False
        report.delivered([record])
        logger.error("dead-lettered undecodable offsets %d-%d of %s[%d]: %s",
                     item.base, end, item.topic, item.partition, item.error)  # fmt: skip
    return True
