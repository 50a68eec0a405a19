"""`kafkaio.reading.read_to_end` against the real broker: every record up to the end the topic had
when the read started, returned as soon as it is read."""

from __future__ import annotations

import time
from collections.abc import Callable

from confluent_kafka import Producer

from conf.settings import KafkaSettings
from kafkaio.reading import read_to_end

# Far longer than a read of a few records takes: a read that waits for its timeout shows.
TIMEOUT_S = 20.0


def test_a_few_records_are_read_without_waiting_for_the_timeout(
    kafka_bootstrap: str, kafka_topics: Callable[..., str]
) -> None:
    """A wait for a full batch (500 records) lasted the whole timeout on a small topic."""
    topic = kafka_topics("reading", partitions=3)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for n, partition in enumerate([0, 0, 2]):  # partition 1 stays empty
        producer.produce(topic, value=f"v{n}".encode(), partition=partition)
    assert producer.flush(30) == 0

    started = time.monotonic()
    messages = read_to_end(
        KafkaSettings(bootstrap_servers=kafka_bootstrap), topic, TIMEOUT_S, purpose="test"
    )
    took = time.monotonic() - started

    assert sorted((m.partition(), m.value()) for m in messages) == [
        (0, b"v0"), (0, b"v1"), (2, b"v2")
    ]  # fmt: skip
    assert took < TIMEOUT_S / 2, f"read 3 records in {took:.1f} s"


def test_a_partition_whose_head_was_deleted_is_read_from_its_first_record(
    kafka_bootstrap: str, kafka_topics: Callable[..., str]
) -> None:
    """Reading from offset 0 was out of range once retention deleted the head: the reset to the
    end read such a partition as empty."""
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import AdminClient

    topic = kafka_topics("reading")
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for n in range(4):
        producer.produce(topic, value=f"v{n}".encode())
    assert producer.flush(30) == 0
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    for deleted in admin.delete_records([TopicPartition(topic, 0, 2)]).values():
        deleted.result(30)

    messages = read_to_end(
        KafkaSettings(bootstrap_servers=kafka_bootstrap), topic, TIMEOUT_S, purpose="test"
    )

    assert [m.value() for m in messages] == [b"v2", b"v3"]
