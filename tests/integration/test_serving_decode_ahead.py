"""When the loop decodes the next batch ahead (`serving.decode_ahead`), against a real broker.

A backlog (requests sent before the consumer starts) and then a trickle of lone requests, served
in each mode. Whatever the mode, every request gets exactly one result and every offset is
committed; what changes is only whether a batch starts while the one before is still in flight:
``never`` never overlaps, ``full`` overlaps only behind a full batch (the backlog), ``always``
overlaps whenever something was already fetched.
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
from tests.kafka_support import LoopThread, has_ids, read_topic, results_by_id
from tests.serving_support import RED, save_local_model, serving_overrides, write_image

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

BATCH = 8
BACKLOG = 5 * BATCH
TRICKLE = 5


class RecordingConsumer(ServingConsumer):
    """The serving loop, recording when each batch starts and when it was committed."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.events: list[tuple[str, int, int]] = []  # (start|done, batch number, size)
        self._numbers = itertools.count()
        finish = self.batches.finish

        def recorded(inflight: InFlight, model: object) -> None:
            finish(inflight, model)  # type: ignore[arg-type]
            self.events.append(("done", inflight.number, len(inflight.messages)))  # type: ignore[attr-defined]

        self.batches.finish = recorded  # type: ignore[method-assign]

    def _start(self, batch: list) -> InFlight:  # type: ignore[type-arg]
        inflight = super()._start(batch)
        inflight.number = next(self._numbers)  # type: ignore[attr-defined]
        self.events.append(("start", inflight.number, len(batch)))  # type: ignore[attr-defined]
        return inflight

    def overlaps(self) -> list[int]:
        """For every batch started while another was in flight: the in-flight batch's size."""
        open_batches: dict[int, int] = {}
        found: list[int] = []
        for kind, number, size in self.events:
            if kind == "start":
                found.extend(open_batches.values())
                open_batches[number] = size
            else:
                open_batches.pop(number)
        return found


@pytest.mark.parametrize("mode", ["never", "full", "always"])
def test_decode_ahead_modes_keep_every_guarantee(
    mode: str,
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
    settings = make_settings(
        *serving_overrides(
            bootstrap=kafka_bootstrap, tracking_uri="http://127.0.0.1:9", model_name="unused",
            topics=topics, group=f"g-{os.urandom(4).hex()}", roots=[root],
        ),
        f"serving.batch_size={BATCH}",
        f"serving.decode_ahead={mode}",
        "serving.deliver=wait",  # every batch finished in its step: the overlaps are decoding's
    )  # fmt: skip
    producer = RequestProducer(settings)  # type: ignore[arg-type]
    ids = [producer.send_path(image) for _ in range(BACKLOG)]
    assert not producer.flush(30).failed
    model = load_model_folder(
        save_local_model(tmp_path / "model"), name="local", version="1", runtime="onnx"
    )
    loop = RecordingConsumer(
        settings, model, make_classifier(settings), make_consumer(settings),  # type: ignore[arg-type]
        make_producer(settings),  # type: ignore[arg-type]
    )  # fmt: skip
    with LoopThread(loop):
        read_topic(kafka_bootstrap, topics["results"], until=has_ids(set(ids)), timeout=90)
        for _ in range(TRICKLE):  # lone requests: each its own batch
            ids.append(producer.send_path(image))
            assert not producer.flush(30).failed
            time.sleep(0.4)
        messages = read_topic(
            kafka_bootstrap, topics["results"], until=has_ids(set(ids)), timeout=90
        )
    grouped = results_by_id(messages)
    assert set(grouped) == set(ids)
    assert all(len(results) == 1 for results in grouped.values())  # exactly one each
    assert loop.committed == len(ids)
    assert sum(size for kind, _n, size in loop.events if kind == "done") == len(ids)
    overlaps = loop.overlaps()
    if mode == "never":
        assert overlaps == []
    elif mode == "full":
        assert overlaps, "the backlog's full batches should have been decoded ahead"
        assert set(overlaps) == {BATCH}  # only ever behind a full batch
    else:
        assert overlaps
    # No client outlives the loop: one left open kept reconnecting after the broker went.
    with pytest.raises(RuntimeError, match="closed"):
        loop.producer.flush(0)
    with pytest.raises(RuntimeError, match="closed"):
        loop.consumer.consume(1, 0)
    producer.close()
