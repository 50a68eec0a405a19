"""The consumer loop: poll a batch, classify, produce, flush and verify, then commit offset + 1.

At-least-once: offsets are committed synchronously only after every record of the batch (results,
review copies, dead letters) was acknowledged by the broker. Bad input is dead-lettered *and*
committed; an infrastructure failure (delivery, commit, an unreachable S3) rewinds the batch and
retries it with backoff, loudly, without committing. Results are keyed by request id, so a
redelivered request overwrites its result rather than duplicating it. A new champion prepared by
the `ChampionWatcher` is swapped in between batches, and every result names its model version.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from conf.settings import Settings
from serving.classifier import BatchClassifier, Outcome, PendingBatch
from serving.inputs import SourceUnavailable
from serving.metrics import ServingMetrics
from serving.records import Record, position, records_for
from serving.schema import Result
from serving.source import ChampionWatcher, LoadedModel

logger = logging.getLogger(__name__)


@dataclass
class InFlight:
    """A consumed batch whose decoding was started, not yet committed."""

    messages: list[Message]
    pending: PendingBatch
    received_at: float


class DeliveryFailed(RuntimeError):
    """Some record of a batch was not acknowledged; the batch is not committed."""


class ServingConsumer:
    """The poll-classify-produce-commit loop of one consumer process.

    Args:
        settings: The resolved settings.
        model: The model to start with.
        classifier: Decodes and scores batches.
        consumer: A subscribed-to-nothing-yet Kafka consumer (manual commits).
        producer: An idempotent Kafka producer.
        watcher: Prepares new champions in the background (optional).
        metrics: Where counters go.
        stop_event: Set it (or call `stop`) to leave the loop after the current batch.
        max_messages: Leave the loop once this many messages were committed (smoke runs).
    """

    def __init__(
        self,
        settings: Settings,
        model: LoadedModel,
        classifier: BatchClassifier,
        consumer: Consumer,
        producer: Producer,
        *,
        watcher: ChampionWatcher | None = None,
        metrics: ServingMetrics | None = None,
        stop_event: threading.Event | None = None,
        max_messages: int | None = None,
    ) -> None:
        self.settings = settings
        self.model = model
        self.classifier = classifier
        self.consumer = consumer
        self.producer = producer
        self.watcher = watcher
        self.metrics = metrics or ServingMetrics()
        self.stop_event = stop_event or threading.Event()
        self.images_logged = 0
        self.max_messages = max_messages
        self.committed = 0
        self._backoff = 0.0
        self.metrics.set_model(model.name, model.version, model.runtime, model.precision)

    def stop(self) -> None:
        """Ask the loop to finish its batch and leave."""
        self.stop_event.set()

    def run(self) -> None:
        """Consume until stopped; always flushes the producer and closes the consumer."""
        self.consumer.subscribe([self.settings.kafka.requests_topic])
        logger.info(
            "consuming %s as group %s with %s v%s",
            self.settings.kafka.requests_topic, self.settings.kafka.group_id,
            self.model.name, self.model.version,
        )  # fmt: skip
        inflight: InFlight | None = None
        try:
            while not self.stop_event.is_set():
                self._maybe_swap()
                # While batch k is scored and delivered, batch k+1 is already being decoded.
                batch = self._usable(self._poll_batch(wait=inflight is None))
                upcoming = self._start(batch) if batch else None
                if inflight is not None and not self._finish_with_retry(inflight, upcoming):
                    upcoming = None  # rewound together with the failed batch
                inflight = upcoming
                if self.max_messages is not None and self.committed >= self.max_messages:
                    logger.info("processed %d messages (max_messages): stopping", self.committed)
                    break
            if inflight is not None:
                self._finish_with_retry(inflight, None)
        finally:
            remaining = self.producer.flush(10)
            if remaining:
                logger.error("%d records not delivered at shutdown (not committed)", remaining)
            self.consumer.close()
            logger.info("consumer closed")

    def _poll_batch(self, wait: bool) -> list[Message]:
        """Wait (if ``wait``, at most the poll timeout) for one message, then take what is
        already fetched.

        ``consume(n, timeout)`` would wait for a full batch: at low load every request would
        wait for the poll timeout. This way a lone request is served at once, and under load the
        batches fill from the messages fetched while the previous batch was processed.
        """
        serving = self.settings.serving
        first = self.consumer.consume(1, serving.poll_timeout_s if wait else 0)
        if not first or serving.batch_size == 1:
            return first
        return first + self.consumer.consume(serving.batch_size - 1, 0)

    def _maybe_swap(self) -> None:
        new = self.watcher.take() if self.watcher else None
        if new is None:
            return
        old, self.model = self.model, new
        self.metrics.set_model(new.name, new.version, new.runtime, new.precision)
        self.metrics.model_swaps.inc()
        logger.info(
            "switched model %s v%s -> v%s between batches", new.name, old.version, new.version
        )
        old.discard()

    def _usable(self, messages: list[Message]) -> list[Message]:
        batch = []
        for message in messages:
            error = message.error()
            if error is None:
                batch.append(message)
            elif error.code() == KafkaError._PARTITION_EOF:
                continue
            elif error.fatal():
                raise KafkaException(error)
            else:
                logger.warning("consumer error (librdkafka retries): %s", error)
        return batch

    def _finish_with_retry(self, inflight: InFlight, upcoming: InFlight | None) -> bool:
        """Finish a batch; on an infrastructure failure rewind it (and the upcoming one).

        Returns:
            Whether the batch was committed.
        """
        try:
            self._finish(inflight)
            self._backoff = 0.0
            return True
        except (SourceUnavailable, DeliveryFailed, KafkaException) as exc:
            if isinstance(exc, KafkaException) and exc.args and exc.args[0].fatal():
                raise
            kind = type(exc).__name__
            self.metrics.infra_errors.labels(kind).inc()
            self._backoff = min(
                self.settings.serving.retry_backoff_max_s, max(0.5, self._backoff * 2)
            )
            logger.error(
                "infrastructure failure (%s), batch of %d NOT committed; rewinding and retrying "
                "in %.1fs: %s", kind, len(inflight.messages), self._backoff, exc,
            )  # fmt: skip
            messages = list(inflight.messages)
            if upcoming is not None:
                upcoming.pending.cancel()
                messages += upcoming.messages
            self._rewind(messages)
            self.stop_event.wait(self._backoff)
            return False

    def _start(self, batch: list[Message]) -> InFlight:
        self.metrics.consumed.inc(len(batch))
        self.metrics.batch_size.observe(len(batch))
        pending = self.classifier.submit([m.value() for m in batch], self.model.preset)
        return InFlight(batch, pending, time.time())

    def process(self, batch: list[Message]) -> None:
        """Classify one batch, deliver every record, then commit the batch's offsets.

        Raises:
            SourceUnavailable: An image source's infrastructure failed.
            DeliveryFailed: A record was not acknowledged.
            KafkaException: The commit failed.
        """
        self._finish(self._start(batch))

    def _finish(self, inflight: InFlight) -> None:
        batch, received_at = inflight.messages, inflight.received_at
        stages: dict[str, float] = {}
        outcomes = self.classifier.finish(inflight.pending, self.model, received_at, stages)
        records: list[Record] = []
        for message, outcome in zip(batch, outcomes, strict=True):
            records.extend(records_for(message, outcome, self.settings))
        start = time.perf_counter()
        self.deliver(records)
        delivered = time.perf_counter()
        self.consumer.commit(offsets=self._next_offsets(batch), asynchronous=False)
        stages["deliver"] = delivered - start
        stages["commit"] = time.perf_counter() - delivered
        self.committed += len(batch)
        self._account(batch, outcomes, received_at, stages)

    def deliver(self, records: list[Record]) -> None:
        """Produce every record, flush, and check every delivery report.

        Raises:
            DeliveryFailed: A record failed or was not acknowledged in time.
        """
        errors: list[KafkaError] = []
        acked = [0]

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            if err is None:
                acked[0] += 1
            else:
                errors.append(err)

        for record in records:
            self._produce(record, on_delivery)
        remaining = self.producer.flush(self.settings.serving.delivery_timeout_s)
        if errors or remaining or acked[0] != len(records):
            fatal = next((e for e in errors if e.fatal()), None)
            if fatal is not None:
                raise KafkaException(fatal)
            raise DeliveryFailed(
                f"{acked[0]}/{len(records)} records acknowledged, {remaining} still queued, "
                f"errors: {[str(e) for e in errors[:3]]}"
            )
        for record in records:
            self.metrics.produced.labels(record.kind).inc()

    def _produce(self, record: Record, on_delivery: Callable[..., None]) -> None:
        while True:
            try:
                self.producer.produce(
                    record.topic,
                    value=record.value,
                    key=record.key,
                    headers=record.headers or None,  # type: ignore[arg-type]
                    on_delivery=on_delivery,
                )
                return
            except BufferError:  # local queue full: serve delivery reports, then retry
                self.producer.poll(0.1)

    @staticmethod
    def _next_offsets(batch: list[Message]) -> list[TopicPartition]:
        last: dict[tuple[str, int], int] = {}
        for message in batch:
            topic, partition, offset = position(message)
            last[(topic, partition)] = max(last.get((topic, partition), -1), offset)
        return [TopicPartition(t, p, offset + 1) for (t, p), offset in last.items()]

    def _rewind(self, batch: list[Message]) -> None:
        first: dict[tuple[str, int], int] = {}
        for message in batch:
            topic, partition, offset = position(message)
            first[(topic, partition)] = min(first.get((topic, partition), offset), offset)
        for (topic, partition), offset in first.items():
            try:
                self.consumer.seek(TopicPartition(topic, partition, offset))
            except KafkaException as exc:  # partition revoked meanwhile: its new owner redoes it
                logger.warning("cannot rewind %s[%d] to %d: %s", topic, partition, offset, exc)

    def _account(
        self,
        batch: list[Message],
        outcomes: list[Outcome],
        received_at: float,
        stages: dict[str, float],
    ) -> None:
        done = time.time()
        for stage, seconds in stages.items():
            self.metrics.stage.labels(stage).observe(seconds)
        logger.debug(
            "batch of %d: %s, %.1f ms after it was consumed", len(batch),
            ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in stages.items()),
            (done - received_at) * 1000,
        )  # fmt: skip
        for message, outcome in zip(batch, outcomes, strict=True):
            self.metrics.latency.observe(done - received_at)
            _kind, stamp = message.timestamp()
            if stamp > 0:
                self.metrics.e2e_latency.observe(max(0.0, done - stamp / 1000.0))
            self._log_outcome(outcome)
        for tp in self._next_offsets(batch):
            _low, high = self.consumer.get_watermark_offsets(tp, cached=True)
            if high >= 0:
                self.metrics.lag.labels(tp.topic, str(tp.partition)).set(max(0, high - tp.offset))

    def _log_outcome(self, outcome: Outcome) -> None:
        index = self.images_logged
        self.images_logged += 1
        if isinstance(outcome, Result):
            self.metrics.labels.labels(outcome.label, outcome.precision).inc()
            self.metrics.score.labels(outcome.model_version).observe(outcome.p_harmful)
            logger.info(
                "[image_%d] Path: %s -> %s (p=%.3f, v%s%s)",
                index, outcome.source, outcome.label, outcome.p_harmful,
                outcome.model_version, ", review" if outcome.review else "",
            )  # fmt: skip
        else:
            self.metrics.dead_lettered.labels(outcome.reason).inc()
            logger.warning(
                "[image_%d] request %s -> dead-letter (%s: %s)",
                index, outcome.request_id, outcome.reason, outcome.detail,
            )  # fmt: skip
