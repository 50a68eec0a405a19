"""The real Apache Kafka broker: roundtrip, committed offsets across a restart, clean stop."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from serving.topics import ensure_topics
from stack.kafka import KafkaBroker, min_heap, new_cluster_id
from stack.kafka_jars import KafkaSetupError, fetch, libs_fresh
from stack.process import ServiceError, free_port, free_ports
from tests.fixtures.kafka import TEST_JVM_FLAGS, start_test_broker

N_MESSAGES = 300


def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    """Produce values keyed by their index, and fail unless every delivery is acknowledged."""
    from confluent_kafka import Producer

    errors: list[object] = []
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    for index, value in enumerate(values):
        producer.produce(
            topic, value, key=str(index).encode(), on_delivery=lambda e, _m: e and errors.append(e)
        )
    assert producer.flush(30) == 0, "messages still in the producer queue after 30 s"
    assert errors == []


def consume_committing(bootstrap: str, topic: str, group: str, expected: int) -> list[bytes]:
    """Read ``expected`` messages, committing each one synchronously after processing it."""
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    seen: list[bytes] = []
    deadline = time.monotonic() + 60
    try:
        while len(seen) < expected and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None:
                continue
            assert message.error() is None, message.error()
            seen.append(message.value())
            consumer.commit(message=message, asynchronous=False)
        # Nothing beyond what we expect may arrive.
        extra = consumer.poll(2.0)
        assert extra is None or extra.error() is not None, f"unexpected {extra.value()!r}"
    finally:
        consumer.close()
    return seen


def committed_offsets(
    bootstrap: str, topic: str, group: str, partitions: int, wait: float = 60
) -> list[int]:
    """The group's committed offset of each partition of topic.

    Right after a restart the broker may still be loading the offsets topic: the request then
    fails with NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS or COORDINATOR_NOT_AVAILABLE and is
    asked again until ``wait`` seconds have passed; any other error fails at once. (The error
    ``committed()`` raises never says ``retriable()``, so the codes are named.)
    """
    from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

    loading = {
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
    }
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    deadline = time.monotonic() + wait
    try:
        parts = [TopicPartition(topic, p) for p in range(partitions)]
        while True:
            try:
                return [tp.offset for tp in consumer.committed(parts, timeout=20)]
            except KafkaException as exc:
                if exc.args[0].code() not in loading or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        consumer.close()


def java_pids_using(folder: Path) -> list[int]:
    """Pids of live processes whose command line mentions folder."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(folder) in cmdline and "java" in cmdline:
            pids.append(int(entry.name))
    return pids


@pytest.mark.kafka
def test_roundtrip_and_committed_offsets_survive_restart(
    kafka_broker: KafkaBroker, kafka_topics: Callable[..., str], unique: Callable[[str], str]
) -> None:
    bootstrap = kafka_broker.bootstrap
    topic = kafka_topics("roundtrip", partitions=3)
    group = unique("group")
    values = [f"message-{i}".encode() for i in range(N_MESSAGES)]
    produce(bootstrap, topic, values)

    seen = consume_committing(bootstrap, topic, group, N_MESSAGES)
    assert sorted(seen) == sorted(values)
    before = committed_offsets(bootstrap, topic, group, 3)
    assert sum(before) == N_MESSAGES
    cluster_id = (kafka_broker.data_dir / "meta.properties").read_text()

    kafka_broker.restart()

    assert kafka_broker.status()["healthy"]
    # Started again on the formatted storage, not re-formatted.
    assert (kafka_broker.data_dir / "meta.properties").read_text() == cluster_id
    assert committed_offsets(bootstrap, topic, group, 3) == before
    # The same group resumes after its commits: only what was produced after the restart.
    later = [f"after-restart-{i}".encode() for i in range(10)]
    produce(bootstrap, topic, later)
    assert sorted(consume_committing(bootstrap, topic, group, len(later))) == sorted(later)


@pytest.mark.kafka
def test_ensure_topics_is_idempotent(kafka_bootstrap: str, unique: Callable[[str], str]) -> None:
    from confluent_kafka.admin import AdminClient

    wanted = {unique("a"): 1, unique("b"): 4}
    assert sorted(ensure_topics(kafka_bootstrap, wanted)) == sorted(wanted)
    assert ensure_topics(kafka_bootstrap, wanted) == []
    topics = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=10).topics
    assert {name: len(topics[name].partitions) for name in wanted} == wanted


@pytest.mark.kafka
def test_status_down_and_start_on_other_ports(tmp_path: Path) -> None:
    broker = start_test_broker(tmp_path / "kafka")
    try:
        status = broker.status()
        assert status["running"]
        assert status["healthy"]
        assert java_pids_using(broker.state_dir) == [status["pid"]]
        # A second broker on the same ports is refused with the ports named.
        with pytest.raises(ServiceError, match=str(broker.port)):
            KafkaBroker(tmp_path / "other", port=broker.port, controller_port=free_port()).start()
    finally:
        assert broker.stop()
    assert java_pids_using(broker.state_dir) == []
    status = broker.status()
    assert status["running"] is False
    assert status["healthy"] is False
    assert broker.stop() is False

    # The formatted storage starts again when the ports change (a changed stack.* setting).
    ports = free_ports(2)
    moved = KafkaBroker(
        broker.state_dir, port=ports[0], controller_port=ports[1], jvm_flags=TEST_JVM_FLAGS
    )
    try:
        moved.start()
        assert moved.status()["healthy"]
        assert moved.bootstrap != broker.bootstrap
    finally:
        assert moved.stop()
    assert java_pids_using(broker.state_dir) == []


def test_server_properties_single_node_on_loopback(tmp_path: Path) -> None:
    broker = KafkaBroker(tmp_path, port=19092, controller_port=19093, overrides={"x.y": "1"})
    props = broker.server_properties()
    assert props["process.roles"] == "broker,controller"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:19093"
    assert props["log.dirs"] == str(tmp_path.resolve() / "data")
    assert props["x.y"] == "1"
    assert broker.bootstrap == "127.0.0.1:19092"


def test_same_port_twice_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="9092"):
        KafkaBroker(tmp_path, port=9092, controller_port=9092)


def test_bad_log_level_names_choices(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"'LOUD' is not one of .*WARN"):
        KafkaBroker(tmp_path, log_level="LOUD")


@pytest.mark.parametrize(("heap", "initial"), [("512m", "131072k"), ("1g", "262144k")])
def test_min_heap(heap: str, initial: str) -> None:
    assert min_heap(heap) == initial


@pytest.mark.parametrize("heap", ["512", "lots", "5x"])
def test_bad_heap_names_value(heap: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=heap):
        min_heap(heap)
    with pytest.raises(ValueError, match=heap):
        KafkaBroker(tmp_path, heap=heap)


def test_cluster_id_format() -> None:
    ids = {new_cluster_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(len(i) == 22 and "=" not in i for i in ids)
    # 1 in 64 raw ids starts with "-", which the storage tool would parse as an option.
    assert not any(i.startswith("-") for i in ids)


def test_fetch_names_missing_java_or_maven(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kafka_dir = tmp_path / "kafka"
    kafka_dir.mkdir()
    shutil.copy(Path(__file__).resolve().parents[2] / "kafka" / "pom.xml", kafka_dir)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(KafkaSetupError, match="`java` was not found"):
        fetch(kafka_dir)
    # Without Java a broker still reports its status (not running) instead of failing.
    assert KafkaBroker(tmp_path / "state").status()["running"] is False
    java_home = Path(os.path.realpath(shutil.which("java", path=os.defpath) or "/usr/bin/java"))
    monkeypatch.setenv("JAVA_HOME", str(java_home.parents[1]))
    with pytest.raises(KafkaSetupError, match="`mvn` was not found"):
        fetch(kafka_dir)
    assert not libs_fresh(kafka_dir)
