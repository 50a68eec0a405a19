"""A compressed record batch the consumer cannot decompress does not stall its partition.

A producer sends ten requests as one zstd batch that inflates to 100 MB (a few kB on the wire):
librdkafka refuses to decompress it and, left alone, fetches it again forever, so the requests
behind it were never answered. Now the batch is measured, dead-lettered once with its offsets
and the fix, committed past, and the good requests before and after it are all answered.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from confluent_kafka import Producer

from serving.headers import H_DETAIL, H_REASON, H_SOURCE, H_TRUNCATED, headers_dict
from serving.producer import RequestProducer
from tests.kafka_support import LoopThread, has_ids, read_topic, results_by_id
from tests.serving_support import BLUE, RED, save_local_model, serving_overrides, write_image

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

RECORDS = 10
RECORD_BYTES = 10_000_000


def test_an_undecodable_batch_is_dead_lettered_and_stepped_over(
    kafka_bootstrap: str, kafka_topics, tmp_path: Path
) -> None:
    from conf.loader import load_settings
    from serving.consumer import ServingConsumer
    from serving.service import make_classifier, make_consumer, make_producer
    from serving.source import load_model_folder

    model = load_model_folder(
        save_local_model(tmp_path / "model"), name="local", version="1", runtime="onnx"
    )
    root = tmp_path / "images"
    root.mkdir()
    topics = {k: kafka_topics(k) for k in ("requests", "results", "review", "dead_letter")}
    settings = load_settings("ci", [
        f"paths.root={tmp_path / 'harmscan'}",
        *serving_overrides(bootstrap=kafka_bootstrap, tracking_uri="http://127.0.0.1:9",
                           model_name="unused", topics=topics, group=f"g-{os.urandom(4).hex()}",
                           roots=[root]),
    ], env={})  # fmt: skip
    requests = RequestProducer(settings)
    before = requests.send_path(write_image(root / "before.jpg", RED))
    assert not requests.flush(30).failed
    # One batch for all ten: a linger longer than producing them takes on a loaded host (with
    # 500 ms the tenth record was sometimes sent in a batch of its own); flush() sends at once.
    bomb = Producer({
        "bootstrap.servers": kafka_bootstrap, "compression.type": "zstd", "linger.ms": 60_000,
        "message.max.bytes": 1_000_000_000, "batch.size": 1_000_000_000,
        "queue.buffering.max.kbytes": 2_000_000,
    })  # fmt: skip
    for index in range(RECORDS):
        bomb.produce(topics["requests"], value=b" " * RECORD_BYTES, key=b"bomb%d" % index)
    assert bomb.flush(60) == 0
    del bomb
    after = {
        requests.send_path(write_image(root / f"after-{i}.jpg", BLUE)): "safe" for i in range(3)
    }
    assert not requests.flush(30).failed

    classifier = make_classifier(settings)
    loop = ServingConsumer(settings, model, classifier, make_consumer(settings),
                           make_producer(settings))  # fmt: skip
    with LoopThread(loop):
        expected = {before: "harmful", **after}
        results = read_topic(
            kafka_bootstrap, topics["results"], until=has_ids(set(expected)), timeout=120
        )
        dead = read_topic(kafka_bootstrap, topics["dead_letter"], until=bool, timeout=30, idle=3)
    assert {i: r[-1].label for i, r in results_by_id(results).items()} == expected
    assert len(dead) == 1, "one dead letter for the whole batch"
    headers = headers_dict(dead[0].headers())  # type: ignore[attr-defined]
    assert headers[H_REASON] == "corrupt"
    assert headers[H_SOURCE] == f"{topics['requests']}/0/1"
    assert f"offsets 1-{RECORDS}" in headers[H_DETAIL]
    assert "batch.size" in headers[H_DETAIL]  # names the fix
    assert headers[H_TRUNCATED] == "1"  # nothing to replay
