"""Delivering a batch's records and moving its offsets: produce, flush, verify, commit, rewind."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from serving.fatal import ConsumerFatal, is_fatal
from serving.records import Record, position

logger = logging.getLogger(__name__)


class DeliveryFailed(RuntimeError):
    """Some record of a batch was not acknowledged; the batch is not committed."""


def deliver(producer: Producer, records: list[Record], timeout_s: float) -> None:
    """Produce every record, flush, and check every delivery report.

    Raises:
        DeliveryFailed: A record failed or was not acknowledged within ``timeout_s``.
        KafkaException: A fatal producer error.
    """
    send(producer, records).settle(producer, timeout_s)


class Sending:
    """The delivery reports of one batch's records, counted as the producer serves them.

    Args:
        total: How many records were produced.
    """

    def __init__(self, total: int) -> None:
        self.total = total
        self.acked = 0
        self.errors: list[KafkaError] = []
        self.acked_at = 0.0  # when the last acknowledgement was served (Unix s)

    def on_delivery(self, err: KafkaError | None, _msg: Message) -> None:
        """The producer's delivery callback for every record of the batch."""
        if err is None:
            self.acked += 1
            self.acked_at = time.time()
        else:
            self.errors.append(err)

    @property
    def complete(self) -> bool:
        """Whether every record has its report (acknowledged or failed)."""
        return self.acked + len(self.errors) >= self.total

    def settle(self, producer: Producer, timeout_s: float) -> None:
        """Wait (flush) until every record has its report, then check them.

        Raises:
            DeliveryFailed: A record failed or was not acknowledged within ``timeout_s``.
            KafkaException: A fatal producer error.
        """
        remaining = 0 if self.complete else producer.flush(timeout_s)
        if self.errors or remaining or self.acked != self.total:
            fatal = next((e for e in self.errors if e.fatal()), None)
            if fatal is not None:
                raise KafkaException(fatal)
            raise DeliveryFailed(
                f"{self.acked}/{self.total} records acknowledged, {remaining} still queued, "
                f"errors: {[str(e) for e in self.errors[:3]]}"
            )
        if not self.acked_at:
            self.acked_at = time.time()


def send(producer: Producer, records: list[Record]) -> Sending:
    """Produce every record without waiting; `Sending.settle` waits for and checks the reports."""
    sending = Sending(len(records))
    for record in records:
        _produce(producer, record, sending.on_delivery)
    return sending


def _produce(producer: Producer, record: Record, on_delivery: Callable[..., None]) -> None:
    while True:
        try:
            producer.produce(
                record.topic,
                value=record.value,
                key=record.key,
                headers=record.headers or None,  # type: ignore[arg-type]
                on_delivery=on_delivery,
            )
            return
        except BufferError:  # local queue full: serve delivery reports, then retry
            producer.poll(0.1)


def next_offsets(batch: Iterable[Message]) -> list[TopicPartition]:
    """``offset + 1`` of the last message per partition: what a commit of the batch stores."""
    last: dict[tuple[str, int], int] = {}
    for message in batch:
        topic, partition, offset = position(message)
        last[(topic, partition)] = max(last.get((topic, partition), -1), offset)
    return [TopicPartition(t, p, offset + 1) for (t, p), offset in last.items()]


def _commit(consumer: Consumer, offsets: list[TopicPartition], *, asynchronous: bool) -> None:
    try:
        if asynchronous:
            consumer.commit(offsets=offsets, asynchronous=True)
        else:
            consumer.commit(offsets=offsets, asynchronous=False)
    except KafkaException as exc:
        if exc.args and is_fatal(exc.args[0]):  # fenced: this consumer can never commit
            raise ConsumerFatal(exc.args[0]) from exc
        raise


class Commits:
    """The loop's commits: per batch synchronously, or asynchronously and made sure of later.

    A batch is committed only after every record of it was acknowledged, so an asynchronous commit
    changes no guarantee: a commit that is lost (the process killed, the broker gone) leaves the
    batch to be redone, and its results are rewritten under the same keys. What it saves is the
    commit's round trip inside every step of the loop (the next request waited for it). The
    newest offset handed to an asynchronous commit is *unsure* until a synchronous commit covers
    it: `settle` makes one when the loop is idle, before partitions are revoked and at shutdown,
    so a failed asynchronous commit costs at most redelivery, never a committed offset that stays
    behind for ever.

    Asynchronous commits can also be spaced out: with ``interval_s``, a batch's offsets wait (as
    unsure ones) until that long after the last commit, and the next commit carries them. At low
    load, where every batch is one request, that saves the broker an offset commit per request;
    the price is up to ``interval_s`` of requests redone after a crash.

    Args:
        asynchronous: ``serving.commit == "async"``.
        interval_s: Least time between two asynchronous commits (0: every batch).
    """

    def __init__(self, asynchronous: bool, interval_s: float = 0.0) -> None:
        self.asynchronous = asynchronous
        self.interval_s = interval_s
        self._unsure: dict[tuple[str, int], int] = {}
        self._last = -math.inf

    def batch(self, consumer: Consumer, batch: Iterable[Message]) -> None:
        """Commit ``offset + 1`` of a delivered batch.

        Raises:
            ConsumerFatal: The consumer can never commit again.
            KafkaException: A synchronous commit failed (or an asynchronous one was refused).
        """
        offsets = next_offsets(batch)
        if not self.asynchronous:
            self.sync(consumer, offsets)
            return
        for tp in offsets:
            key = (tp.topic, tp.partition)
            self._unsure[key] = max(self._unsure.get(key, -1), tp.offset)
        now = time.monotonic()
        if now - self._last < self.interval_s:
            return  # carried by the next commit (or made sure of by `settle`)
        self._last = now
        unsure = [TopicPartition(t, p, offset) for (t, p), offset in self._unsure.items()]
        _commit(consumer, unsure, asynchronous=True)

    def sync(self, consumer: Consumer, offsets: list[TopicPartition]) -> None:
        """Commit ``offsets`` synchronously; unsure offsets they reach are sure now.

        Raises:
            ConsumerFatal: The consumer can never commit again.
            KafkaException: The commit failed.
        """
        _commit(consumer, offsets, asynchronous=False)
        for tp in offsets:
            key = (tp.topic, tp.partition)
            if self._unsure.get(key, tp.offset + 1) <= tp.offset:
                del self._unsure[key]

    @property
    def unsure(self) -> bool:
        """Whether an asynchronous commit is not yet covered by a synchronous one."""
        return bool(self._unsure)

    def settle(
        self, consumer: Consumer, partitions: Iterable[TopicPartition] | None = None
    ) -> None:
        """Commit the unsure offsets (of ``partitions``, default all) synchronously.

        Raises:
            ConsumerFatal: The consumer can never commit again.
            KafkaException: The commit failed (they stay unsure).
        """
        keys = (
            list(self._unsure)
            if partitions is None
            else [
                (tp.topic, tp.partition)
                for tp in partitions
                if (tp.topic, tp.partition) in self._unsure
            ]
        )
        if keys:
            self.sync(consumer, [TopicPartition(t, p, self._unsure[(t, p)]) for t, p in keys])

    def make_sure(
        self,
        consumer: Consumer,
        partitions: list[TopicPartition] | None = None,
        *,
        idle: bool = False,
    ) -> None:
        """`settle`, where a failed commit leaves the offsets to the next try (at worst their
        batches are redone, never lost).

        Raises:
            ConsumerFatal: When ``idle`` (the loop's own turn), the consumer can never commit.
        """
        if not self._unsure:
            return
        try:
            self.settle(consumer, partitions)
        except KafkaException as exc:
            logger.warning("could not make sure of the last commits (tried again later): %s", exc)
        except ConsumerFatal as fatal:
            self.forget()
            if idle:  # the loop recreates the consumer
                raise
            logger.warning("the last commits were not made sure of (%s): they are redone", fatal)

    def forget(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        """Drop the unsure offsets of partitions this consumer may no longer commit (all: None)."""
        if partitions is None:
            self._unsure.clear()
        for tp in partitions or ():
            self._unsure.pop((tp.topic, tp.partition), None)


def rewind(consumer: Consumer, batch: Iterable[Message]) -> None:
    """Seek every partition of ``batch`` back to its first message (fetched again next)."""
    first: dict[tuple[str, int], int] = {}
    for message in batch:
        topic, partition, offset = position(message)
        first[(topic, partition)] = min(first.get((topic, partition), offset), offset)
    for (topic, partition), offset in first.items():
        try:
            consumer.seek(TopicPartition(topic, partition, offset))
        except KafkaException as exc:  # partition revoked meanwhile: its new owner redoes it
            logger.warning("cannot rewind %s[%d] to %d: %s", topic, partition, offset, exc)


def close_clients(producer: Producer, consumer: Consumer) -> None:
    """Flush and close the producer, close the consumer: no client outlives the loop (one left to
    the garbage collector kept reconnecting, and logging, after the broker went)."""
    remaining = producer.flush(10)
    if remaining:
        logger.error("%d records not delivered at shutdown (not committed)", remaining)
        producer.purge()  # uncommitted: redelivered to the next consumer
    producer.close()
    consumer.close()
    logger.info("consumer closed")
