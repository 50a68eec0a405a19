"""Batches of the consumer loop: how one is taken from the client, which messages are usable,
whether the next is decoded ahead, and what a batch in flight carries."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaError, Message

from serving.classifier import Outcome, PendingBatch
from serving.delivery import Sending
from serving.fatal import ConsumerFatal, is_fatal
from serving.records import Record
from serving.undecodable import UNDECODABLE_CODES

logger = logging.getLogger(__name__)


@dataclass
class InFlight:
    """A consumed batch whose decoding was started, not yet committed."""

    messages: list[Message]
    pending: PendingBatch
    received_at: float
    stages: dict[str, float] = field(default_factory=dict)
    alone: bool = False  # a suspect of the poison guard: nothing else may be in flight with it
    # Once scored and its records produced (`BatchHandler.send`): what waits for the acks.
    outcomes: list[Outcome] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    sending: Sending | None = None
    sent_at: float = 0.0  # perf_counter() when its records were produced


def usable(messages: list[Message]) -> list[Message]:
    """The messages of a poll without errors (end-of-partition skipped, fatal errors raised).

    Raises:
        ConsumerFatal: The consumer hit a fatal error (e.g. fenced), reported as a ``_FATAL``
            event whose ``fatal()`` flag confluent-kafka leaves false.
    """
    batch = []
    for message in messages:
        error = message.error()
        if error is None:
            batch.append(message)
        elif is_fatal(error):
            raise ConsumerFatal(error)
        elif error.code() not in (KafkaError._PARTITION_EOF, *UNDECODABLE_CODES):
            logger.warning("consumer error (librdkafka retries): %s", error)
    return batch


def decodes_ahead(mode: str, inflight: int, batch_size: int) -> bool:
    """Whether the next batch is polled and decoded before the one in flight is finished.

    Decoding ahead overlaps batch k+1's decoding with batch k's scoring, delivery and commit: more
    throughput under a backlog. But batch k+1 then also waits for all of batch k, and on 2 cores
    both compete for the same CPU, so without a backlog it only adds latency. ``full`` (the
    default) decodes ahead only after a full batch, i.e. when requests are queueing; ``always``
    was the loop before; ``never`` finishes every batch first (see docs/serving-measurements.md,
    "Where the time went").

    Args:
        mode: ``serving.decode_ahead``: ``full``, ``always`` or ``never``.
        inflight: Messages in the batch in flight.
        batch_size: ``serving.batch_size``.
    """
    if mode == "never":
        return False
    return mode == "always" or inflight >= batch_size


def poll_batch(consumer: Consumer, batch_size: int, timeout: float) -> list[Message]:
    """Wait at most ``timeout`` seconds for one message, then take what is already fetched (up
    to ``batch_size`` in all).

    ``consume(n, timeout)`` would wait for a full batch: at low load every request would
    wait for the poll timeout. This way a lone request is served at once, and under load the
    batches fill from the messages fetched while the previous batch was processed.
    """
    first = consumer.consume(1, timeout)
    if not first or batch_size == 1:
        return first
    return first + consumer.consume(batch_size - 1, 0)
