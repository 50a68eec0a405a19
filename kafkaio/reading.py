"""Reading a topic from its start to its end now, with a throw-away reader (no group joined,
nothing committed)."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from conf.settings import KafkaSettings

# Seconds of each wait for records: the reader stops this soon after the last partition's end.
POLL_S = 0.1
# What the metadata of a topic that does not exist says (from the broker, or librdkafka's own).
_UNKNOWN_TOPIC = (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC)


class MissingTopic(LookupError):
    """The topic to read does not exist."""

    def __init__(self, topic: str) -> None:
        super().__init__(f"topic {topic!r} does not exist")
        self.topic = topic


def read_to_end(
    kafka: KafkaSettings, topic: str, timeout: float, *, purpose: str, missing_ok: bool = False
) -> list[Message]:
    """Every record of ``topic`` from its start to its end now, in the order consumed.

    The end is each partition's high watermark when the read starts: the read returns as soon as
    every partition has been read to it, however few records there are.

    Args:
        kafka: Where the broker is and how to reach it.
        topic: The topic to read.
        timeout: Seconds for each metadata call, and the longest wait without a record before
            every partition was read.
        purpose: Names the reader's throw-away group (``harmscan-<purpose>-<uuid>``).
        missing_ok: Read a missing topic as empty (else `MissingTopic`).

    Raises:
        MissingTopic: ``topic`` does not exist (unless ``missing_ok``).
        TimeoutError: No record came within ``timeout`` before every partition was read.
        KafkaException: The reader reported an error (other than reaching a partition's end).
    """
    consumer = Consumer(
        {
            **kafka.client_config(),
            "group.id": f"harmscan-{purpose}-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            # Off: librdkafka would print a line per refused connection (hundreds) on stderr;
            # what stops the read reaches the caller as an exception.
            "log_level": 0,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        missing = metadata is None or (
            metadata.error is not None and metadata.error.code() in _UNKNOWN_TOPIC
        )
        if missing:
            if missing_ok:
                return []
            raise MissingTopic(topic)
        if metadata.error is not None:
            raise KafkaException(metadata.error)
        starts, ends = {}, {}
        for partition in metadata.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout)
            if high > low:
                starts[partition], ends[partition] = low, high
        # From the low watermark: offset 0 of a partition whose head was deleted (retention)
        # is out of range, and the reset would jump to the end and skip every record left.
        consumer.assign([TopicPartition(topic, p, starts[p]) for p in ends])
        return _consume_until(consumer, ends, timeout)
    finally:
        consumer.close()


def _consume_until(consumer: Consumer, ends: dict[int, int], timeout: float) -> list[Message]:
    """The records of the assigned partitions up to ``ends`` (partition: end offset).

    Each wait is short (`POLL_S`): ``consume`` returns early only with a full batch, so one long
    wait would last its whole timeout on a topic of a few records.
    """
    messages: list[Message] = []
    pending = dict(ends)
    stalled_at = time.monotonic() + timeout
    while pending:
        batch = consumer.consume(500, POLL_S)
        if batch:
            stalled_at = time.monotonic() + timeout
        elif time.monotonic() >= stalled_at:
            raise TimeoutError(f"reading stalled with partitions {sorted(pending)} unfinished")
        for message in batch:
            error = message.error()
            if error is not None and error.code() != KafkaError._PARTITION_EOF:
                raise KafkaException(error)
            partition, offset = message.partition(), message.offset()
            if error is None:
                messages.append(message)
            if partition in pending and offset is not None and offset + 1 >= pending[partition]:
                pending.pop(partition)
    return messages
