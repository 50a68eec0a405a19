"""The review app's Kafka side: the feed from the review topic and the decisions writer.

`ReviewFeed` reads the review topic into the `ReviewStore` in a thread and commits each partition
only up to its oldest undecided item, so an undecided item is read again after any crash.
`DecisionWriter` produces a decision and returns only once the broker acknowledged it (acks=all,
idempotent producer): the page answers the reviewer, and the store marks the item decided, after
that. Killed in between, the decision is on the topic and the reviewer may see the item again;
the decisions topic is compacted by request id, so deciding it twice is harmless.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from conf.settings import Settings
from harmscan.decisions import Decision, encode_decision
from review.metrics import ReviewMetrics
from review.store import Item, ReviewStore
from serving.headers import H_INLINE_REQUEST
from serving.records import readable_headers
from serving.schema import SchemaError, decode_result, log_safe
from serving.topics import ensure_topics

logger = logging.getLogger(__name__)

# The decisions topic keeps the last decision per request id, forever.
DECISIONS_TOPIC_CONFIG = {"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"}


class DecisionNotDelivered(RuntimeError):
    """The broker did not acknowledge a decision; nothing was recorded."""


def ensure_review_topics(settings: Settings) -> None:
    """Create the review topic and the compacted decisions topic if they do not exist."""
    kafka = settings.kafka
    security = {k: v for k, v in kafka.client_config().items() if k != "bootstrap.servers"}
    ensure_topics(
        kafka.bootstrap_servers, {kafka.review_topic: kafka.partitions}, client_config=security
    )
    ensure_topics(
        kafka.bootstrap_servers,
        {kafka.decisions_topic: kafka.partitions},
        client_config=security,
        configs={kafka.decisions_topic: DECISIONS_TOPIC_CONFIG},
    )


def item_from_message(message: Message) -> Item:
    """The queue item of one review-topic message.

    Raises:
        SchemaError: The message is not a result.
    """
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    if topic is None or partition is None or offset is None:
        raise SchemaError("not a consumed message")
    result = decode_result(message.value() or b"")
    headers = dict(readable_headers(message))
    inline = headers.get(H_INLINE_REQUEST)
    return Item(
        request_id=result.id,
        topic=topic,
        partition=partition,
        offset=offset,
        model_name=result.model_name,
        model_version=result.model_version,
        model_label=result.label,
        p_harmful=result.p_harmful,
        threshold=result.threshold,
        source=result.source,
        inline_request=bytes(inline) if isinstance(inline, bytes) else None,
        scored_at=result.completed_at,
        sha256=result.sha256,
    )


class ReviewFeed:
    """Reads the review topic into the store, and commits what the store allows, in a thread.

    A message it cannot hold (not a result, or one the store refuses) is logged, counted
    (``harmscan_review_feed_skipped_total``) and passed: its offset counts as read, so the
    messages behind it are read and the partition is committed past it. Only the store failing
    as a whole (`sqlite3.OperationalError`: disk, locks) stops the feed; `problem` then says so.

    Args:
        settings: Kafka topics and the review group.
        store: Where items go.
        poll_timeout_s: Longest single poll.
        metrics: Where skipped messages are counted.
    """

    def __init__(
        self,
        settings: Settings,
        store: ReviewStore,
        poll_timeout_s: float = 0.5,
        metrics: ReviewMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.poll_timeout_s = poll_timeout_s
        self.metrics = metrics
        self.skipped = 0
        self.stop_event = threading.Event()
        self.commit_wanted = threading.Event()
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self._committed: dict[tuple[str, int], int] = {}
        self._thread = threading.Thread(target=self._run, name="review-feed", daemon=True)

    def start(self) -> None:
        """Start reading in the background."""
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop reading; the last commit is made on the way out."""
        self.stop_event.set()
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        """Whether the thread runs."""
        return self._thread.is_alive()

    def problem(self) -> str | None:
        """Why the feed stopped reading although nobody stopped it; None while all is well."""
        if self.error is not None:
            return f"the review feed stopped ({type(self.error).__name__}); see the log"
        if self._thread.ident is not None and not self.alive and not self.stop_event.is_set():
            return "the review feed stopped; see the log"
        return None

    def _consumer(self) -> Consumer:
        kafka, review = self.settings.kafka, self.settings.review
        return Consumer(
            {
                **kafka.client_config(),
                "group.id": review.group_id,
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
            }
        )

    def _run(self) -> None:
        consumer = self._consumer()
        try:
            consumer.subscribe(
                [self.settings.kafka.review_topic],
                on_assign=lambda _c, _p: self.ready.set(),
            )
            last_commit = time.monotonic()
            while not self.stop_event.is_set():
                messages = consumer.consume(num_messages=500, timeout=self.poll_timeout_s)
                self._ingest(messages)
                if self.commit_wanted.is_set() or time.monotonic() - last_commit > 5:
                    self.commit_wanted.clear()
                    self._commit(consumer)
                    last_commit = time.monotonic()
        except Exception as exc:  # kept for /health (`problem`); the log has the traceback
            self.error = exc
            logger.exception("review feed stopped")
        finally:
            try:
                self._commit(consumer)
            finally:
                consumer.close()

    def _ingest(self, messages: list[Message]) -> None:
        items: list[Item] = []
        seen: list[tuple[str, int, int]] = []
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    logger.warning("review topic: %s", error)
                continue
            topic, partition, offset = message.topic(), message.partition(), message.offset()
            if topic is None or partition is None or offset is None:
                continue
            seen.append((topic, partition, offset))
            try:
                items.append(item_from_message(message))
            except Exception as exc:  # any message it cannot read is passed, never fatal
                self._skip((topic, partition, offset), exc)
        if not seen:
            return
        try:
            added = self.store.add(items, seen)
        except sqlite3.OperationalError:
            raise  # the store itself failed (disk, lock): no message's fault, stop loudly
        except (sqlite3.Error, ValueError, TypeError, OverflowError):
            added = self._add_one_by_one(items, seen)
        if added:
            logger.info("%d new items to review", added)

    def _add_one_by_one(self, items: list[Item], seen: list[tuple[str, int, int]]) -> int:
        """Store a batch the store refused item by item, passing the items it refuses."""
        added = 0
        for item in items:
            try:
                added += self.store.add([item])
            except sqlite3.OperationalError:
                raise
            except (sqlite3.Error, ValueError, TypeError, OverflowError) as exc:
                self._skip((item.topic, item.partition, item.offset), exc)
        self.store.add([], seen)
        return added

    def _skip(self, where: tuple[str, int, int], exc: BaseException) -> None:
        self.skipped += 1
        if self.metrics is not None:
            self.metrics.feed_skipped.inc()
        topic, partition, offset = where
        logger.warning(
            "skipping %s/%d/%d: not a result the queue can hold (%s)",
            topic, partition, offset, log_safe(str(exc))[:300],
        )  # fmt: skip

    def _commit(self, consumer: Consumer) -> None:
        positions = {
            key: offset
            for key, offset in self.store.commit_positions().items()
            if self._committed.get(key) != offset
        }
        if not positions:
            return
        offsets = [TopicPartition(t, p, o) for (t, p), o in positions.items()]
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            # Not fatal: the items stay in the store; the next commit tries again.
            logger.warning("committing the review positions failed: %s", exc)
            return
        self._committed.update(positions)


class DecisionWriter:
    """Produces decisions and waits for the broker's acknowledgement of each.

    Thread-safe: every call waits for its own delivery report.
    """

    def __init__(self, settings: Settings) -> None:
        self.topic = settings.kafka.decisions_topic
        self.timeout = settings.review.delivery_timeout_s
        self._producer = Producer(
            {
                **settings.kafka.client_config(),
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 0,
                "delivery.timeout.ms": int(self.timeout * 1000),
            }
        )

    def write(self, decision: Decision) -> None:
        """Produce ``decision`` keyed by request id and wait until it is delivered.

        Raises:
            DecisionNotDelivered: The broker did not acknowledge it within the timeout.
        """
        done = threading.Event()
        outcome: dict[str, Any] = {}

        def on_delivery(error: KafkaError | None, _message: Message) -> None:
            outcome["error"] = error
            done.set()

        self._producer.produce(
            self.topic,
            key=decision.id.encode(),
            value=encode_decision(decision),
            on_delivery=on_delivery,
        )
        deadline = time.monotonic() + self.timeout
        while not done.is_set() and time.monotonic() < deadline:
            self._producer.flush(min(0.5, max(0.0, deadline - time.monotonic())))
        if not done.is_set():
            raise DecisionNotDelivered(f"no acknowledgement for {decision.id!r} in {self.timeout}s")
        if outcome["error"] is not None:
            raise DecisionNotDelivered(
                f"decision {decision.id!r} not delivered: {outcome['error']}"
            )

    def close(self) -> None:
        """Deliver what is pending, then close the client.

        Closing matters: the web framework caches the app's endpoints, which hold this writer, so
        an unclosed producer would live on and keep reconnecting to a broker that is gone.
        """
        self._producer.flush(self.timeout)
        self._producer.close()
