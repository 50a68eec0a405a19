"""Wiring of one consumer process: Kafka clients, topics, model source, metrics, signals.

`run_consumer` is what ``harmscan serve`` and the Prefect flow ``serve`` call. It fails loudly when
no champion can be loaded (an infrastructure failure: nothing is consumed, nothing committed).
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from confluent_kafka import Consumer, Producer

from conf.settings import Settings
from serving.classifier import BatchClassifier
from serving.consumer import ServingConsumer
from serving.inputs import reader_for
from serving.metrics import ServingMetrics
from serving.source import ModelSource
from serving.topics import check_message_limits, ensure_serving_topics
from serving.watcher import ChampionWatcher

logger = logging.getLogger(__name__)


def group_instance_id(settings: Settings) -> str:
    """``serving.group_instance_id``, by default ``<hostname>-<kafka.group_id>``.

    Static membership: a restarted consumer with the same id takes its partitions back at once,
    instead of after ``serving.session_timeout_ms``. Two processes of one group on one host need
    their own ids (the second one would fence the first).
    """
    configured = settings.serving.group_instance_id
    return configured or f"{socket.gethostname()}-{settings.kafka.group_id}"


def make_consumer(settings: Settings) -> Consumer:
    """A static group member with manual, synchronous commits (at-least-once)."""
    serving = settings.serving
    config = {
        **settings.kafka.client_config(),
        "group.id": settings.kafka.group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": "cooperative-sticky",
        "max.poll.interval.ms": serving.max_poll_interval_ms,
        "session.timeout.ms": serving.session_timeout_ms,
        "group.instance.id": group_instance_id(settings),
        # librdkafka inflates a zstd batch into at most this: a bomb stops there, not at 100 MB.
        "receive.message.max.bytes": serving.max_inflated_batch_bytes + 512,
        "fetch.max.bytes": serving.max_inflated_batch_bytes,
    }
    return Consumer(config)


def make_producer(settings: Settings) -> Producer:
    """An idempotent producer whose deliveries time out within the delivery timeout."""
    return Producer(
        {
            **settings.kafka.client_config(),
            "enable.idempotence": True,
            "acks": "all",
            # Flushed in every step (deliver: wait), linger.ms is ignored; with overlap nothing
            # flushes, and the records must not wait for a linger.
            "linger.ms": 0 if settings.serving.deliver == "overlap" else 2,
            "message.timeout.ms": int(settings.serving.delivery_timeout_s * 1000),
        }
    )


def model_source(settings: Settings) -> ModelSource:
    """The registry source of ``models:/<registered_model>@<model_alias>``."""
    return ModelSource(
        tracking_uri=settings.mlflow.tracking_uri,
        name=settings.mlflow.registered_model,
        alias=settings.serving.model_alias,
        runtime=settings.serving.runtime,
        threads=settings.serving.intra_op_threads,
        cache_dir=settings.paths.cache / "serving-models",
        warmup_batch=settings.serving.batch_size,
        workers=settings.serving.inference_workers,
        precision=settings.serving.precision,
        int8_min_speedup=settings.serving.int8_min_speedup,
        max_batch=settings.serving.batch_size,
    )


def make_classifier(settings: Settings) -> BatchClassifier:
    """The batching classifier under the serving limits."""
    serving = settings.serving
    return BatchClassifier(
        reader_for(serving),
        workers=serving.decode_workers,
        max_pixels=serving.max_pixels,
        decode_timeout_s=serving.decode_timeout_s,
        jpeg_draft=serving.jpeg_draft,
        max_aspect_ratio=serving.max_aspect_ratio,
        decode_memory_mb=serving.decode_memory_mb,
        max_request_bytes=serving.max_request_bytes,
        max_frames=serving.max_frames,
    )


@contextmanager
def stop_on_signals(stop_event: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop_event`` (only from the main thread; else a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: Any) -> None:
        logger.info("received %s: finishing the current batch", signal.Signals(signum).name)
        stop_event.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_consumer(
    settings: Settings,
    stop_event: threading.Event | None = None,
    max_messages: int | None = None,
) -> None:
    """Serve the champion from the requests topic until SIGTERM/SIGINT or ``stop_event``.

    Args:
        settings: The resolved settings.
        stop_event: Set it to stop after the current batch.
        max_messages: Stop once this many messages were committed (smoke runs, tests).

    Raises:
        ModelUnavailable: No champion could be loaded from the registry.
        MessageLimitError: The inline or dead-letter cap exceeds the broker's message limit.
        ServingFatal: A fatal producer error, or fatal consumer errors (a fenced static member)
            beyond ``serving.consumer_recreate_max`` recreations of the consumer.
    """
    stop_event = stop_event or threading.Event()
    ensure_serving_topics(settings)
    check_message_limits(settings)
    source = model_source(settings)
    model = source.load()
    watcher = ChampionWatcher(source, model.version, settings.serving.swap_check_interval_s)
    metrics = ServingMetrics()
    if settings.serving.metrics_port is not None:
        metrics.serve(settings.serving.metrics_port, settings.serving.metrics_host)
    classifier = make_classifier(settings)
    loop = ServingConsumer(
        settings,
        model,
        classifier,
        make_consumer(settings),
        make_producer(settings),
        watcher=watcher.start(),
        metrics=metrics,
        stop_event=stop_event,
        max_messages=max_messages,
        consumer_factory=lambda: make_consumer(settings),
    )
    try:
        with stop_on_signals(stop_event):
            loop.run()
    finally:
        watcher.stop()
        classifier.close()
        metrics.close()
        loop.model.discard()
