"""`serving.deliver: overlap` against a real broker: the loop goes on while a batch is acknowledged.

A backlog, then a trickle of lone requests (the case the mode is for), with delivery failures
injected into the first backlog batch and into a lone request: every request gets a result, each
batch is committed only after its acknowledgements and in order, and the group's committed
offsets reach the end of the requests topic.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from serving.batches import InFlight
from serving.consumer import ServingConsumer
from serving.producer import RequestProducer
from tests.integration.test_serving_resilience import FlakyProducer
from tests.kafka_support import LoopThread, committed_to_end, has_ids, read_topic, results_by_id
from tests.serving_support import RED, save_local_model, serving_overrides, write_image

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

BATCH = 8
BACKLOG = 3 * BATCH
TRICKLE = 6


class OrderedConsumer(ServingConsumer):
    """The serving loop, recording the order of sends and completions (commits)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.events: list[tuple[str, int]] = []
        self.waited = 0  # batches sent and settled in one go (as serving.deliver=wait does)
        numbers = itertools.count()
        send, complete, finish = self.batches.send, self.batches.complete, self.batches.finish

        def sending(inflight: InFlight, model: object) -> None:
            inflight.number = next(numbers)  # type: ignore[attr-defined]
            send(inflight, model)  # type: ignore[arg-type]
            self.events.append(("sent", inflight.number))  # type: ignore[attr-defined]

        def completing(inflight: InFlight) -> None:
            assert inflight.sending is not None
            assert inflight.sending.acked == inflight.sending.total  # acknowledged first
            complete(inflight)
            self.events.append(("done", inflight.number))  # type: ignore[attr-defined]

        def finishing(inflight: InFlight, model: object) -> None:
            self.waited += 1
            finish(inflight, model)  # type: ignore[arg-type]

        self.batches.send = sending  # type: ignore[method-assign]
        self.batches.complete = completing  # type: ignore[method-assign]
        self.batches.finish = finishing  # type: ignore[method-assign]


def test_overlapped_delivery_commits_in_order_after_the_acks(
    kafka_bootstrap: str,
    kafka_topics: Callable[..., str],
    make_settings: Callable[..., object],
    tmp_path: Path,
) -> None:
    from serving.service import make_classifier, make_consumer, make_producer
    from serving.source import load_model_folder

    topics = {k: kafka_topics(k, partitions=2) for k in ("requests", "results", "review", "dlq")}
    topics["dead_letter"] = topics.pop("dlq")
    root = tmp_path / "images"
    image = write_image(root / "red.jpg", RED)
    group = f"g-{os.urandom(4).hex()}"
    settings = make_settings(
        *serving_overrides(
            bootstrap=kafka_bootstrap, tracking_uri="http://127.0.0.1:9", model_name="unused",
            topics=topics, group=group, roots=[root],
        ),
        f"serving.batch_size={BATCH}",
        "serving.deliver=overlap",
    )  # fmt: skip
    producer = RequestProducer(settings)  # type: ignore[arg-type]
    ids = [producer.send_path(image) for _ in range(BACKLOG)]
    assert not producer.flush(30).failed
    model = load_model_folder(
        save_local_model(tmp_path / "model"), name="local", version="1", runtime="onnx"
    )
    flaky = FlakyProducer(make_producer(settings), failures=2)
    loop = OrderedConsumer(
        settings, model, make_classifier(settings), make_consumer(settings),  # type: ignore[arg-type]
        flaky,  # type: ignore[arg-type]
    )  # fmt: skip
    with LoopThread(loop):
        read_topic(kafka_bootstrap, topics["results"], until=has_ids(set(ids)), timeout=90)
        for number in range(TRICKLE):  # lone requests: each its own batch, sent then settled
            if number == TRICKLE // 2:
                flaky.failures = 1  # a lone request's delivery fails: redone, not committed
            ids.append(producer.send_path(image))
            assert not producer.flush(30).failed
            time.sleep(0.3)
        messages = read_topic(
            kafka_bootstrap, topics["results"], until=has_ids(set(ids)), timeout=90
        )
        assert committed_to_end(kafka_bootstrap, group, topics["requests"], timeout=30)
    grouped = results_by_id(messages)
    assert set(grouped) == set(ids)
    assert loop.metrics.infra_errors.labels("DeliveryFailed")._value.get() >= 2
    done = [number for kind, number in loop.events if kind == "done"]
    assert done == sorted(done)  # commits in the order the batches were sent
    sent_before = {number: loop.events.index(("sent", number)) for number in done}
    assert all(sent_before[n] < loop.events.index(("done", n)) for n in done)
    assert len(done) >= 1 + TRICKLE
    assert loop.waited <= 1  # at most the last batch, at shutdown: the others went on at once
    producer.close()
