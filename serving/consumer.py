"""The consumer loop: poll a batch, classify, produce, flush and verify, then commit offset + 1.

One rule: whatever goes wrong while handling one message's *content* is that message's fault — it
is dead-lettered with a typed reason (``internal_error`` with the exception type for the
unforeseen) and committed. Only infrastructure failures (delivery, commit, an unreachable S3)
rewind the batch and retry it with backoff, loudly, without committing. What still kills the
process is caught by the `PoisonGuard` on the next start.

At-least-once: a batch's offsets are committed only after every record of it (results, review
copies, dead letters) was acknowledged by the broker, batches in order, and when partitions are
revoked the batches in flight are finished and committed first, so the next owner does not redo
them. With ``serving.deliver: overlap`` the loop does not wait for the acknowledgements inside the
step: it polls, decodes and scores the next batch meanwhile, and commits the batch sent before
once they are in (at the latest before the next batch's records, and before it waits idle).
Results are keyed by request id, so a redelivered request overwrites its result rather than
duplicating it. A new champion prepared by the `ChampionWatcher` is swapped in between batches.
What happens to one batch between its poll and its commit (and on a failure) is
`serving.inflight.BatchHandler`'s.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable

from confluent_kafka import Consumer, Message, Producer, TopicPartition

from conf.settings import Settings
from serving.accounting import BatchReport
from serving.batches import InFlight, decodes_ahead, poll_batch, usable
from serving.classifier import BatchClassifier
from serving.delivery import Commits, DeliveryFailed, close_clients, rewind
from serving.fatal import ConsumerFatal, RecreationBudget, ServingFatal
from serving.inflight import BatchHandler
from serving.metrics import ServingMetrics
from serving.model import LoadedModel
from serving.poison import PoisonGuard, state_folder
from serving.undecodable import Undecodable, step_over, undecodable_batches
from serving.watcher import ChampionWatcher

logger = logging.getLogger(__name__)

__all__ = ["DeliveryFailed", "ServingConsumer", "ServingFatal"]


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
        guard: The poison-message guard (default: journals under `state_folder`).
        consumer_factory: Builds a replacement consumer after a fatal consumer error (a fenced
            static member); None: such an error stops the loop with `ServingFatal`.
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
        guard: PoisonGuard | None = None,
        consumer_factory: Callable[[], Consumer] | None = None,
    ) -> None:
        serving = settings.serving
        self.settings, self.model, self.classifier = settings, model, classifier
        self.consumer, self.producer, self.watcher = consumer, producer, watcher
        self.metrics = metrics or ServingMetrics()
        self.stop_event = stop_event or threading.Event()
        self.max_messages = max_messages
        self.guard = guard or PoisonGuard(
            state_folder(settings), settings.kafka.group_id, serving.poison_after_crashes
        )
        self.report = BatchReport(self.metrics, consumer)
        self.consumer_factory = consumer_factory
        self._recreations = RecreationBudget(
            serving.consumer_recreate_max, serving.consumer_recreate_window_s
        )
        self.commits = Commits(serving.commit == "async", serving.commit_interval_ms / 1000)
        self.batches = BatchHandler(
            settings, classifier, consumer, producer, self.commits, self.guard, self.metrics,
            self.report, self.stop_event,
        )  # fmt: skip
        self._inflight: InFlight | None = None
        self.metrics.set_model(
            model.name, model.version, model.runtime, model.precision, model.int8_speedup
        )

    @property
    def committed(self) -> int:
        """Messages committed so far."""
        return self.batches.committed

    def stop(self) -> None:
        """Ask the loop to finish its batch and leave."""
        self.stop_event.set()

    def run(self) -> None:
        """Consume until stopped; always flushes and closes the producer and closes the consumer.

        Raises:
            ServingFatal: A fatal producer error, or fatal consumer errors beyond the
                recreation budget.
        """
        self._subscribe()
        self._freeze_heap()
        try:
            while not self.stop_event.is_set() and not self._enough():
                self._maybe_swap()
                try:
                    self._step()
                except ConsumerFatal as fatal:
                    self._recreate(fatal)
            if self._inflight is not None or self.batches.sent is not None:
                try:
                    self._finish_with_retry(self._inflight, None, wait=True)
                except ConsumerFatal as fatal:
                    logger.warning("last batch not committed at shutdown (%s)", fatal)
                self._inflight = None
            self.commits.make_sure(self.consumer)
        finally:
            close_clients(self.producer, self.consumer)
            if self.settings.serving.gc_freeze:
                gc.unfreeze()

    def _freeze_heap(self) -> None:
        """``serving.gc_freeze``: what lives now (modules, model, clients) lives for the whole
        run, so it is moved out of the collector's reach and full collections scan only what
        serving allocated since.

        `gc.freeze` is process-wide: the objects of whatever else runs in the process (a
        Prefect worker, a bench) are frozen too, and a model swap and the end of the loop
        unfreeze them all (`gc.unfreeze`). Cyclic garbage among the frozen objects (the old
        model at a swap) waits for the next unfreeze, which a swap does at once."""
        if self.settings.serving.gc_freeze:
            gc.collect()
            gc.freeze()

    def _subscribe(self) -> None:
        topic = self.settings.kafka.requests_topic
        self.consumer.subscribe([topic], on_revoke=self._on_revoke, on_lost=self._on_lost)
        logger.info(
            "consuming %s as group %s with %s v%s", topic, self.settings.kafka.group_id,
            self.model.name, self.model.version,
        )  # fmt: skip

    def _recreate(self, fatal: ConsumerFatal) -> None:
        """Replace a consumer that hit a fatal error: drop the batch in flight uncommitted,
        close the consumer (nothing is committed), join again with a new one under the same
        ``group.instance.id``; what was not committed is redelivered and rewritten under the
        same keys.

        Raises:
            ServingFatal: No factory, or the recreation budget is spent.
        """
        self.batches.drop(self._inflight, None)
        self._inflight = None
        factory = self._recreations.spend_on(fatal, self.consumer_factory)
        self.commits.forget()
        self.consumer.close()
        self.metrics.consumer_recreated.labels(fatal.reason).inc()
        self.consumer = self.report.consumer = self.batches.consumer = factory()
        self._subscribe()

    def _enough(self) -> bool:
        if self.max_messages is None or self.committed < self.max_messages:
            return False
        logger.info("processed %d messages (max_messages): stopping", self.committed)
        return True

    def _step(self) -> None:
        """One turn: poll the next batch and start it, then finish the batch before it.

        Under a backlog (`_decode_ahead`), batch k+1 is already being decoded while batch k is
        scored and delivered; otherwise batch k is finished first. A suspect of the poison guard
        runs alone: after the batch before it is committed, and finished before the next batch
        is polled.
        """
        if self.batches.acked() and not self._settle(self._inflight):
            return
        if self._inflight is not None and not self._decode_ahead(self._inflight):
            current, self._inflight = self._inflight, None
            self._finish_with_retry(current, None)
            return
        started = time.perf_counter()
        polled = self._poll_next()
        if polled is None:
            return
        poll_s = time.perf_counter() - started
        batch = usable(polled)
        if not polled and self._inflight is None:
            self.commits.make_sure(self.consumer, idle=True)
        undecodable = undecodable_batches(polled, after=batch)
        if undecodable:
            self._step_over(undecodable, batch)
            return
        batch, later, alone = self.guard.isolate(batch)
        if later:
            rewind(self.consumer, later)
        if alone and (self._inflight is not None or self.batches.sent is not None):
            committed = self._finish_with_retry(self._inflight, None, wait=True)
            self._inflight = None
            if not committed:
                rewind(self.consumer, batch)
                return
        upcoming = self._start(batch) if batch else None
        if upcoming is not None:
            upcoming.alone = alone
            upcoming.stages["poll"] = poll_s
        if self._inflight is not None and not self._finish_with_retry(self._inflight, upcoming):
            upcoming = None  # rewound together with the failed batch
        self._inflight = upcoming

    def _step_over(self, undecodable: list[Undecodable], batch: list[Message]) -> None:
        """Dead-letter and commit past record batches that do not decompress
        (`serving.undecodable`), after the batch in flight; this poll's ``batch`` comes again."""
        rewind(self.consumer, batch)
        if self._inflight is not None or self.batches.sent is not None:
            inflight, self._inflight = self._inflight, None
            if not self._finish_with_retry(inflight, None, wait=True):
                return
        settings, consumer, producer = self.settings, self.consumer, self.producer
        if not step_over(undecodable, settings, consumer, producer, self.commits, self.report):
            self.stop_event.wait(1.0)

    def _poll_next(self) -> list[Message] | None:
        """The next poll, waiting for a first message only if no batch is in flight.

        Idle but for the acknowledgements of a batch sent (``serving.deliver: overlap``), it
        takes a request that is already here, or else settles that batch before it waits.

        Returns:
            None if the sent batch's delivery failed (it was rewound).
        """
        if self._inflight is not None or self.batches.sent is None:
            return self._poll_batch(wait=self._inflight is None)
        polled = self._poll_batch(wait=False)
        if polled:
            return polled
        if not self._finish_with_retry(None, None):
            return None
        return self._poll_batch(wait=True)

    def _settle(self, upcoming: InFlight | None) -> bool:
        """Commit the acknowledged batch sent before; on a failure rewind it and ``upcoming``.

        Returns:
            False if its delivery failed (``upcoming`` was rewound with it, out of flight).
        """
        self._inflight = None
        if self._finish_with_retry(None, upcoming):
            self._inflight = upcoming
            return True
        return False

    def _decode_ahead(self, inflight: InFlight) -> bool:
        """Whether to poll and start the next batch before ``inflight`` is finished."""
        serving = self.settings.serving
        if inflight.alone:
            return False
        return decodes_ahead(serving.decode_ahead, len(inflight.messages), serving.batch_size)

    def _poll_batch(self, wait: bool) -> list[Message]:
        """`poll_batch`: waiting (if ``wait``) at most the poll timeout for the first message."""
        serving = self.settings.serving
        timeout = serving.poll_timeout_s if wait else 0.0
        return poll_batch(self.consumer, serving.batch_size, timeout)

    def _maybe_swap(self) -> None:
        new = self.watcher.take() if self.watcher else None
        if new is None:
            return
        old, self.model = self.model, new
        self.metrics.set_model(new.name, new.version, new.runtime, new.precision, new.int8_speedup)
        self.metrics.model_swaps.inc()
        logger.info(
            "switched model %s v%s -> v%s between batches", new.name, old.version, new.version
        )
        old.discard()
        # The old model was frozen with the heap: thaw it, and collect it once the last reference
        # is gone (`old` here), or the collection keeps it and the refreeze pins it for good.
        del old
        if self.settings.serving.gc_freeze:
            gc.unfreeze()
            self._freeze_heap()

    def _start(self, batch: list[Message]) -> InFlight:
        """`BatchHandler.start` with the current model."""
        return self.batches.start(batch, self.model)

    def _finish_with_retry(
        self, inflight: InFlight | None, upcoming: InFlight | None, *, wait: bool = False
    ) -> bool:
        """`BatchHandler.finish_with_retry` with the model current now."""
        return self.batches.finish_with_retry(inflight, upcoming, self.model, wait=wait)

    def process(self, batch: list[Message]) -> None:
        """Classify one batch, deliver every record, then commit the batch's offsets.

        Raises:
            SourceUnavailable: An image source's infrastructure failed.
            DeliveryFailed: A record was not acknowledged.
            KafkaException: The commit failed.
        """
        self.batches.finish(self._start(batch), self.model)

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Finish and commit the batches in flight (and awaiting acknowledgements) before
        partitions go to another member."""
        inflight, self._inflight = self._inflight, None
        if inflight is not None or self.batches.sent is not None:
            logger.info("partitions revoked: finishing the batch in flight first")
            if not self._finish_with_retry(inflight, None, wait=True):
                logger.warning("the batch in flight was not committed; its new owner redoes it")
        self.commits.make_sure(self.consumer, partitions)
        for tp in partitions:
            self.guard.forget(tp.topic, tp.partition)

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Partitions lost (session expired): nothing may be committed for them any more."""
        inflight, self._inflight = self._inflight, None
        if inflight is not None or self.batches.sent is not None:
            self.batches.drop(inflight, None)
            logger.warning("partitions lost with a batch in flight; its new owner redoes it")
        self.commits.forget(partitions)
        for tp in partitions:
            self.guard.forget(tp.topic, tp.partition)
