"""A polled batch's way through the consumer loop: journalled and submitted for decoding, scored,
its records delivered and verified, its offsets committed; on an infrastructure failure rewound
uncommitted and retried after a backoff; given up uncommitted when its consumer is gone.

The loop (`serving.consumer`) decides *when* a batch starts and finishes; `BatchHandler` does
it, with one error policy: content faults were already turned into dead letters by the
classifier, so what reaches `BatchHandler.finish_with_retry` is infrastructure (an unreachable
source, an unacknowledged delivery, a failed commit), never committed.

With ``serving.deliver: overlap`` a batch is only scored and sent by `finish_with_retry`: it waits
for its acknowledgements as `sent` while the loop polls, decodes and scores the next batch, and is
committed by `settle` once they are in — at the latest before the next batch's records are
produced, so at most one batch awaits its acknowledgements and commits stay in order.
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
from serving.delivery import Commits, DeliveryFailed, rewind, send
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
        # Scored, its records produced, their acknowledgements not yet checked (deliver: overlap).
        self.sent: InFlight | None = None

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
        self,
        inflight: InFlight | None,
        upcoming: InFlight | None,
        model: LoadedModel,
        *,
        wait: bool = False,
    ) -> bool:
        """Finish a batch (None: only settle the one `sent` before); on an infrastructure failure
        rewind it, the one sent before and the upcoming one.

        With ``serving.deliver: overlap`` a batch that is not a poison suspect is only scored and
        sent, unless ``wait``: `settle` commits it once it is acknowledged.

        Returns:
            Whether the batch (and the one sent before it) was committed or sent.
        """
        try:
            if inflight is None:
                self.settle()
            elif not wait and self.settings.serving.deliver == "overlap" and not inflight.alone:
                self.send(inflight, model)
            else:
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
            sent, self.sent = self.sent, None
            failed = [sent] if sent is not None else []
            if inflight is not None and inflight is not sent:
                failed.append(inflight)
            messages = [m for b in failed for m in b.messages]
            logger.error(
                "infrastructure failure (%s), batch of %d NOT committed; rewinding and retrying "
                "in %.1fs: %s", kind, len(messages), self._backoff, exc,
            )  # fmt: skip
            if upcoming is not None:
                upcoming.pending.cancel()
                messages += upcoming.messages
            rewind(self.consumer, messages)
            self.stop_event.wait(self._backoff)
            return False

    def finish(self, inflight: InFlight, model: LoadedModel) -> None:
        """Score a started batch, deliver every record, then commit the batch's offsets (the
        batch sent before it first).

        Raises:
            SourceUnavailable: An image source's infrastructure failed.
            DeliveryFailed: A record was not acknowledged.
            KafkaException: The commit failed.
        """
        self.send(inflight, model)
        self.settle()

    def send(self, inflight: InFlight, model: LoadedModel) -> None:
        """Score a started batch and produce its records without waiting for them; the batch
        `sent` before is settled in between (its acknowledgements came in while this one was
        scored)."""
        outcomes = self.classifier.finish(
            inflight.pending, model, inflight.received_at, inflight.stages
        )
        records = batch_records(inflight.messages, outcomes, self.settings)
        self.settle()
        inflight.outcomes, inflight.records = outcomes, records
        inflight.sent_at = time.perf_counter()
        self.sent = inflight
        inflight.sending = send(self.producer, records)

    def acked(self) -> bool:
        """Whether the batch `sent` has all its delivery reports (served now, without waiting)."""
        if self.sent is None or self.sent.sending is None:
            return False
        self.producer.poll(0)
        return self.sent.sending.complete

    def settle(self) -> None:
        """Wait for the `sent` batch's acknowledgements, check them, then commit it.

        Raises:
            DeliveryFailed: A record was not acknowledged.
            KafkaException: The commit failed.
        """
        inflight = self.sent
        if inflight is None:
            return
        assert inflight.sending is not None
        inflight.sending.settle(self.producer, self.settings.serving.delivery_timeout_s)
        self.sent = None
        self.complete(inflight)

    def complete(self, inflight: InFlight) -> None:
        """Commit an acknowledged batch: offsets, the poison guard's journal, the report."""
        batch, stages, sending = inflight.messages, inflight.stages, inflight.sending
        assert sending is not None
        delivered = time.perf_counter()
        self.report.delivered(inflight.records)
        self.commits.batch(self.consumer, batch)
        self.guard.done(batch)
        stages["deliver"] = delivered - inflight.sent_at
        stages["commit"] = time.perf_counter() - delivered
        self.committed += len(batch)
        self.report.batch(batch, inflight.outcomes, inflight.received_at, stages, sending.acked_at)

    def drop(self, inflight: InFlight | None, upcoming: InFlight | None) -> None:
        """Give batches up uncommitted (their consumer is gone): no decoding, out of flight;
        the batch awaiting its acknowledgements too."""
        sent, self.sent = self.sent, None
        for batch in (sent, inflight, upcoming):
            if batch is not None:
                batch.pending.cancel()
                self.guard.abandon(batch.messages)
