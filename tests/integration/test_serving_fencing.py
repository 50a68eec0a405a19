"""A static member fenced off its group (``FENCED_INSTANCE_ID``) is recreated, not retried forever.

A second consumer joining with the same ``group.instance.id`` fences the serving consumer, as a
coordinator failover can do to a live member. librdkafka makes that a fatal error for the fenced
instance: every later commit fails. The loop must close it without committing, build a new one with
the same id, rejoin and redo what was not committed; every request still gets its result, and a
redelivered request's results agree (keyed by request id, so the compacted topic keeps one).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from serving.producer import RequestProducer
from tests.kafka_support import LoopThread, has_ids, read_topic, results_by_id, wait_until
from tests.serving_support import RED, save_local_model, serving_overrides, write_image

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def fence(settings: object, timeout: float = 60.0) -> None:
    """Join the group with the same ``group.instance.id`` until given partitions, then close.

    The intruder never commits; closing a static member does not leave the group, so the fenced
    consumer's successor takes the id (and the partitions) back at once.
    """
    from serving.service import make_consumer

    intruder = make_consumer(settings)  # type: ignore[arg-type]
    assigned = threading.Event()
    intruder.subscribe(
        [settings.kafka.requests_topic],  # type: ignore[attr-defined]
        on_assign=lambda _c, partitions: partitions and assigned.set(),
    )
    try:
        deadline = time.monotonic() + timeout
        while not assigned.is_set():
            assert time.monotonic() < deadline, "the intruder was never assigned partitions"
            intruder.consume(10, 0.2)
    finally:
        intruder.close()


@pytest.fixture
def setup(
    make_settings: Callable[..., object],
    kafka_bootstrap: str,
    kafka_topics: Callable[..., str],
    tmp_path: Path,
) -> Callable[..., tuple[object, dict[str, str], Path, object]]:
    """``setup(*overrides)``: settings on unique topics with their own instance id, the topics,
    a harmful image and a local model."""
    from serving.source import load_model_folder

    def build(*overrides: str) -> tuple[object, dict[str, str], Path, object]:
        root = tmp_path / "images"
        image = write_image(root / "red.jpg", RED)
        kinds = ("requests", "results", "review", "dead_letter")
        topics = {k: kafka_topics(k.replace("_", "-"), partitions=2) for k in kinds}
        tag = os.urandom(4).hex()
        settings = make_settings(
            *serving_overrides(
                bootstrap=kafka_bootstrap, tracking_uri="http://127.0.0.1:9",
                model_name="unused", topics=topics, group=f"g-{tag}", roots=[root],
            ),
            f"serving.group_instance_id=fence-{tag}", *overrides,
        )  # fmt: skip
        model = load_model_folder(
            save_local_model(tmp_path / "m"), name="m", version="1", runtime="onnx"
        )
        return settings, topics, image, model

    return build


def test_fenced_consumer_is_recreated_and_loses_nothing(
    setup: Callable[..., tuple[object, dict[str, str], Path, object]], kafka_bootstrap: str
) -> None:
    from serving.consumer import ServingConsumer
    from serving.service import make_classifier, make_consumer, make_producer

    settings, topics, image, model = setup()
    producer = RequestProducer(settings)
    before = [producer.send_path(image) for _ in range(20)]
    assert not producer.flush(30).failed
    loop = ServingConsumer(
        settings, model, make_classifier(settings), make_consumer(settings),
        make_producer(settings), consumer_factory=lambda: make_consumer(settings),
    )  # fmt: skip
    with LoopThread(loop):
        wait_until(lambda: loop.committed >= len(before), 120, "the first results")
        fence(settings)
        after = [producer.send_path(image) for _ in range(20)]
        assert not producer.flush(30).failed
        # Before the fix the fenced consumer retried its commit for ever and never came back.
        wait_until(
            lambda: loop.committed >= len(before) + len(after), 90, "the fenced consumer's return"
        )
        ids = set(before) | set(after)
        messages = read_topic(kafka_bootstrap, topics["results"], until=has_ids(ids), timeout=60)
    assert loop.metrics.consumer_recreated.labels("fenced")._value.get() >= 1
    grouped = results_by_id(messages)
    assert set(grouped) == ids, f"{len(ids - set(grouped))} requests without a result"
    for results in grouped.values():  # a redelivery rewrites the same answer under the same key
        assert {(r.label, r.model_version) for r in results} == {("harmful", "1")}


def test_fenced_beyond_the_budget_stops_with_one_line(
    setup: Callable[..., tuple[object, dict[str, str], Path, object]],
) -> None:
    from serving.consumer import ServingConsumer, ServingFatal
    from serving.service import make_classifier, make_consumer, make_producer

    settings, _topics, image, model = setup("serving.consumer_recreate_max=0")
    producer = RequestProducer(settings)
    for _ in range(8):
        producer.send_path(image)
    assert not producer.flush(30).failed
    loop = ServingConsumer(
        settings, model, make_classifier(settings), make_consumer(settings),
        make_producer(settings), consumer_factory=lambda: make_consumer(settings),
    )  # fmt: skip
    runner = LoopThread(loop)
    runner.start()
    try:
        wait_until(lambda: loop.committed >= 8, 120, "the first results")
        fence(settings)
        runner.thread.join(60)
    finally:
        runner.stop(raise_error=False, join_s=30)
    assert isinstance(runner.error, ServingFatal), runner.error
    message = str(runner.error)
    assert "\n" not in message
    assert "fenced" in message
    assert "serving.group_instance_id" in message
    assert loop.metrics.consumer_recreated.labels("fenced")._value.get() == 0
