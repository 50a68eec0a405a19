"""A polled batch's way through the consumer loop: journalled and submitted for decoding, scored,
its records delivered and verified, its offsets committed; on an infrastructure failure rewound
uncommitted and retried after a backoff; given up uncommitted when its consumer is gone.

The loop (`serving.consumer`) decides *when* a batch starts and finishes; `BatchHandler` does
it, with one error policy: content faults were already turned into dead letters by the
classifier, so what reaches `BatchHandler.finish_with_retry` is infrastructure (an unreachable
source, an unacknowledged delivery, a failed commit), never committed.
"""

from __future__ import annotations

import logging
import threading
import time

from confluent_kafka import Consumer, KafkaException, Message, Producer

from conf.settings import Settings
from serving.accounting import BatchReport
from serving.batches import InFlight
from serving.classifier import BatchClassifier
from serving.delivery import Commits, DeliveryFailed, deliver, rewind
from serving.fatal import ConsumerFatal, ServingFatal, is_fatal
from serving.inputs import SourceUnavailable
from serving.metrics import ServingMetrics
from serving.model import LoadedModel
from serving.poison import PoisonGuard
from serving.records import batch_records

logger = logging.getLogger(__name__)


class BatchHandler:
    """Starts, finishes, retries and drops the batches of one consumer loop.

    Args:
        settings: The resolved settings.
        classifier: Decodes and scores batches.
        consumer: The loop's Kafka consumer; reassign `consumer` when the loop replaces it.
        producer: An idempotent Kafka producer.
        commits: How offsets are committed.
        guard: The poison-message guard (journals batches in flight).
        metrics: Where counters go.
        report: Where delivered batches are accounted.
        stop_event: Cuts a retry's backoff short.
    """

    def __init__(
        self,
        settings: Settings,
        classifier: BatchClassifier,
        consumer: Consumer,
        producer: Producer,
        commits: Commits,
        guard: PoisonGuard,
        metrics: ServingMetrics,
        report: BatchReport,
        stop_event: threading.Event,
    ) -> None:
        self.settings, self.classifier = settings, classifier
        self.consumer, self.producer, self.commits = consumer, producer, commits
        self.guard, self.metrics, self.report = guard, metrics, report
        self.stop_event = stop_event
        self.committed = 0
        self._backoff = 0.0

    def start(self, batch: list[Message], model: LoadedModel) -> InFlight:
        """Journal the batch as in flight and submit it; poison messages are not decoded."""
        self.metrics.consumed.inc(len(batch))
        self.metrics.batch_size.observe(len(batch))
        verdicts = self.guard.verdicts(batch)
        self.guard.begin(batch)
        values = [m.value() for m in batch]
        pending = self.classifier.submit(values, model.preset, verdicts)
        return InFlight(batch, pending, time.time())

    def finish_with_retry(
        self, inflight: InFlight, upcoming: InFlight | None, model: LoadedModel
    ) -> bool:
        """Finish a batch; on an infrastructure failure rewind it (and the upcoming one).

        Returns:
            Whether the batch was committed.
        """
        try:
            self.finish(inflight, model)
            self._backoff = 0.0
            return True
        except ConsumerFatal:
            self.drop(inflight, upcoming)
            raise
        except (SourceUnavailable, DeliveryFailed, KafkaException) as exc:
            if isinstance(exc, KafkaException) and exc.args and is_fatal(exc.args[0]):
                raise ServingFatal(f"fatal Kafka producer error: {exc.args[0].str()}") from exc
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
            rewind(self.consumer, messages)
            self.stop_event.wait(self._backoff)
            return False

    def finish(self, inflight: InFlight, model: LoadedModel) -> None:
        """Score a started batch, deliver every record, then commit the batch's offsets.

        Raises:
            SourceUnavailable: An image source's infrastructure failed.
            DeliveryFailed: A record was not acknowledged.
            KafkaException: The commit failed.
        """
        batch, stages = inflight.messages, inflight.stages
        outcomes = self.classifier.finish(inflight.pending, model, inflight.received_at, stages)
        records = batch_records(batch, outcomes, self.settings)
        start = time.perf_counter()
        deliver(self.producer, records, self.settings.serving.delivery_timeout_s)
        self.report.delivered(records)
        delivered, delivered_at = time.perf_counter(), time.time()
        self.commits.batch(self.consumer, batch)
        self.guard.done(batch)
        stages["deliver"] = delivered - start
        stages["commit"] = time.perf_counter() - delivered
        self.committed += len(batch)
        self.report.batch(batch, outcomes, inflight.received_at, stages, delivered_at)

    def drop(self, inflight: InFlight, upcoming: InFlight | None) -> None:
        """Give batches up uncommitted (their consumer is gone): no decoding, out of flight."""
        for batch in (inflight, upcoming):
            if batch is not None:
                batch.pending.cancel()
                self.guard.abandon(batch.messages)
