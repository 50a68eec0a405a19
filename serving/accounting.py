"""What the loop reports per batch: metrics, one log line per image, stage times, lag."""

from __future__ import annotations

import logging
import time

from confluent_kafka import Consumer, Message

from serving.classifier import Outcome
from serving.delivery import next_offsets
from serving.metrics import ServingMetrics
from serving.records import Record
from serving.schema import Result, log_safe

logger = logging.getLogger(__name__)


class BatchReport:
    """Counts, logs and times the batches of one consumer.

    Args:
        metrics: Where counters go.
        consumer: Asked for cached watermarks (lag).
    """

    def __init__(self, metrics: ServingMetrics, consumer: Consumer) -> None:
        self.metrics = metrics
        self.consumer = consumer
        self.images_logged = 0

    def delivered(self, records: list[Record]) -> None:
        """Count the delivered records by kind."""
        for record in records:
            self.metrics.produced.labels(record.kind).inc()

    def batch(
        self,
        batch: list[Message],
        outcomes: list[Outcome],
        received_at: float,
        stages: dict[str, float],
        delivered_at: float | None = None,
    ) -> None:
        """Stage times, latencies, one line per image and the lag of a committed batch.

        The latencies end when the batch's results were acknowledged (``delivered_at``, Unix s;
        default now): readable by then, whatever the commit and the book-keeping after it take.
        The end-to-end one starts at the request message's Kafka timestamp: the producer's clock
        at ``produce()`` (CreateTime, the topic's default) or the broker's on append
        (LogAppendTime), clamped at 0 against a producer clock ahead of this host's.
        """
        done = time.time() if delivered_at is None else delivered_at
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
            self.outcome(outcome)
        for tp in next_offsets(batch):
            _low, high = self.consumer.get_watermark_offsets(tp, cached=True)
            if high >= 0:
                self.metrics.lag.labels(tp.topic, str(tp.partition)).set(max(0, high - tp.offset))

    def outcome(self, outcome: Outcome) -> None:
        """Count and log one outcome (the original work's ``[image_N] Path: ...`` line)."""
        index = self.images_logged
        self.images_logged += 1
        if isinstance(outcome, Result):
            self.metrics.labels.labels(outcome.label, outcome.precision).inc()
            self.metrics.score.labels(outcome.model_version).observe(outcome.p_harmful)
            logger.info(
                "[image_%d] Path: %s -> %s (p=%.3f, v%s%s)",
                index, log_safe(outcome.source), outcome.label, outcome.p_harmful,
                outcome.model_version, ", review" if outcome.review else "",
            )  # fmt: skip
        else:
            self.metrics.dead_lettered.labels(outcome.reason).inc()
            logger.warning(
                "[image_%d] request %s -> dead-letter (%s: %s)",
                index, outcome.request_id, outcome.reason, log_safe(outcome.detail[:300]),
            )  # fmt: skip
