"""Three Kafka brokers (KRaft, replication 3, min.insync.replicas 2) started by `stack`'s own
code: killing the leader of the requests partition and then of the results partition mid-stream
(``kill -9``) and bringing each back loses nothing and makes no conflicting result."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from serving.producer import RequestProducer
from stack.kafka_cluster import KafkaCluster
from stack.process import free_ports
from tests.fixtures.kafka import TEST_JVM_FLAGS
from tests.kafka_support import LoopThread, Stream, has_ids, read_topic, results_by_id, wait_until
from tests.serving_support import RED, save_local_model, serving_overrides, write_image

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    ports = free_ports(6)
    cluster = KafkaCluster(
        tmp_path_factory.mktemp("cluster"), ports[:3], ports[3:], heap="256m",
        jvm_flags=TEST_JVM_FLAGS,
    )  # fmt: skip
    try:
        cluster.start(300)
        yield cluster
    finally:
        cluster.stop()


def test_leader_kills_lose_nothing(
    cluster: KafkaCluster, make_settings: Callable[..., object], tmp_path: Path
) -> None:
    from serving.consumer import ServingConsumer
    from serving.service import make_classifier, make_consumer, make_producer
    from serving.source import load_model_folder
    from serving.topics import ensure_serving_topics

    root = tmp_path / "images"
    image = write_image(root / "red.jpg", RED)
    tag = os.urandom(4).hex()
    topics = {k: f"{k}-{tag}" for k in ("requests", "results", "review", "dead_letter")}
    settings = make_settings(
        *serving_overrides(
            bootstrap=cluster.bootstrap, tracking_uri="http://127.0.0.1:9", model_name="unused",
            topics=topics, group=f"g-{tag}", roots=[root],
        ),
        "kafka.partitions=1", "kafka.replication_factor=3", "kafka.min_insync_replicas=2",
        "serving.session_timeout_ms=10000",
    )  # fmt: skip
    ensure_serving_topics(settings)
    model = load_model_folder(save_local_model(tmp_path / "m"), name="m", version="1",
                              runtime="onnx")  # fmt: skip
    loop = ServingConsumer(settings, model, make_classifier(settings), make_consumer(settings),
                           make_producer(settings),
                           consumer_factory=lambda: make_consumer(settings))  # fmt: skip
    with LoopThread(loop):
        with Stream(RequestProducer(settings, rate=20), image, flush_s=120) as stream:
            for topic in (topics["requests"], topics["results"]):
                before = loop.committed
                wait_until(lambda b=before: loop.committed >= b + 20, 120, "results flowing")
                leader = cluster.leader_of(topic)
                cluster.kill(leader)
                sent = len(stream.ids)
                wait_until(lambda s=sent: len(stream.ids) >= s + 40, 120, "the stream going on")
                cluster.start_node(leader)
        messages = read_topic(
            cluster.bootstrap, topics["results"], until=has_ids(set(stream.ids)), timeout=180
        )
    grouped = results_by_id(messages)
    assert set(grouped) == set(stream.ids), f"{len(set(stream.ids) - set(grouped))} lost"
    assert all({r.label for r in rs} == {"harmful"} for rs in grouped.values())
