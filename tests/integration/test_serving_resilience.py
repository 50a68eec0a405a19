"""The consumer under change and failure: a champion swap, a broker restart, a ``kill -9``.

In each, requests keep streaming; afterwards every request has a result (redeliveries only as
results with the same key and the same answer) and each result names the model version that made it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from serving.producer import RequestProducer
from tests.kafka_support import (
    ConsumerThread,
    LoopThread,
    Stream,
    has_ids,
    read_topic,
    results_by_id,
    wait_until,
)
from tests.serving_support import BLUE, RED, register_model, serving_overrides, write_image

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def topics(kafka_topics: Callable[..., str]) -> dict[str, str]:
    kinds = ("requests", "results", "review", "dead_letter")
    return {kind: kafka_topics(kind, partitions=2) for kind in kinds}


@pytest.fixture
def model_name(mlflow_server: str, tmp_path: Path) -> str:
    name = f"resilience-{os.urandom(4).hex()}"
    register_model(mlflow_server, name, tmp_path / "model")
    return name


@pytest.fixture
def overrides(
    kafka_bootstrap: str,
    mlflow_server: str,
    model_name: str,
    topics: dict[str, str],
    tmp_path: Path,
) -> list[str]:
    root = tmp_path / "images"
    root.mkdir()
    return serving_overrides(
        bootstrap=kafka_bootstrap, tracking_uri=mlflow_server, model_name=model_name,
        topics=topics, group=f"g-{os.urandom(4).hex()}", roots=[root],
    )  # fmt: skip


@pytest.fixture
def images(tmp_path: Path) -> dict[str, Path]:
    return {
        "harmful": write_image(tmp_path / "images" / "red.jpg", RED),
        "safe": write_image(tmp_path / "images" / "blue.jpg", BLUE),
    }


def test_champion_swap_mid_stream(
    overrides: list[str],
    make_settings: Callable[..., object],
    kafka_bootstrap: str,
    mlflow_server: str,
    model_name: str,
    topics: dict[str, str],
    images: dict[str, Path],
    tmp_path: Path,
) -> None:
    settings = make_settings(*overrides)
    producer = RequestProducer(settings, rate=15)
    with ConsumerThread(settings):
        with Stream(producer, images["harmful"]) as stream:
            wait_until(lambda: len(stream.ids) >= 15, 30, "the stream to start")
            # v2 answers the other way round: red is safe for it.
            register_model(mlflow_server, model_name, tmp_path / "v2", invert=True)
            started = time.monotonic()

            def v2_seen() -> bool:
                found = read_topic(kafka_bootstrap, topics["results"], timeout=2, idle=0.5)
                return any(r.model_version == "2" for rs in results_by_id(found).values()
                           for r in rs)  # fmt: skip

            wait_until(v2_seen, 90, "a result of the new champion")
            swap_took = time.monotonic() - started
            time.sleep(1.0)  # a little more traffic after the swap
        messages = read_topic(
            kafka_bootstrap, topics["results"], until=has_ids(set(stream.ids)), timeout=90
        )
    grouped = results_by_id(messages)
    assert set(grouped) == set(stream.ids), "requests without results"
    expected = {"1": "harmful", "2": "safe"}
    for results in grouped.values():
        for result in results:
            assert result.label == expected[result.model_version], result
    by_partition: dict[int, list[str]] = {}
    for message in messages:
        version = results_by_id([message])[message.key().decode()][0].model_version
        by_partition.setdefault(message.partition(), []).append(version)
    for versions in by_partition.values():
        assert versions == sorted(versions, key=int), "a partition went back to the old model"
    assert {r.model_version for rs in grouped.values() for r in rs} == {"1", "2"}
    assert swap_took < 90


def test_broker_restart_mid_stream(
    overrides: list[str],
    make_settings: Callable[..., object],
    kafka_broker: object,
    kafka_bootstrap: str,
    topics: dict[str, str],
    images: dict[str, Path],
) -> None:
    settings = make_settings(*overrides)
    producer = RequestProducer(settings, rate=10)
    with ConsumerThread(settings):
        with Stream(producer, images["safe"]) as stream:
            wait_until(
                lambda: (
                    len(read_topic(kafka_bootstrap, topics["results"], timeout=2, idle=0.5)) >= 10
                ),
                120,
                "the consumer's first results",
            )
            kafka_broker.restart()  # type: ignore[attr-defined]
            sent_before = len(stream.ids)
            wait_until(lambda: len(stream.ids) >= sent_before + 10, 60, "the stream to resume")
        messages = read_topic(
            kafka_bootstrap, topics["results"], until=has_ids(set(stream.ids)), timeout=120
        )
    grouped = results_by_id(messages)
    assert set(grouped) == set(stream.ids)
    assert {r.label for rs in grouped.values() for r in rs} == {"safe"}


@pytest.fixture
def serve_process(overrides: list[str], tmp_path: Path) -> Iterator[Callable[[], subprocess.Popen]]:
    started: list[subprocess.Popen] = []
    log = (tmp_path / "serve.log").open("ab")

    def start() -> subprocess.Popen:
        command = [str(Path(sys.executable).parent / "harmscan"), "--profile", "ci",
                   "--set", f"paths.root={tmp_path / 'harmscan'}",
                   "--set", "serving.group_instance_id=crash-test"]  # fmt: skip
        for item in overrides:
            command += ["--set", item]
        # The default session timeout: a resume within seconds shows static membership at work.
        command += ["--set", "serving.session_timeout_ms=45000"]
        process = subprocess.Popen([*command, "serve"], cwd=REPO, stdout=log, stderr=log)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    log.close()


def test_kill_9_and_restart_loses_nothing(
    overrides: list[str],
    make_settings: Callable[..., object],
    serve_process: Callable[[], subprocess.Popen],
    kafka_bootstrap: str,
    topics: dict[str, str],
    images: dict[str, Path],
    tmp_path: Path,
) -> None:
    settings = make_settings(*overrides)

    def result_count() -> int:
        return len(read_topic(kafka_bootstrap, topics["results"], timeout=2, idle=0.5))

    with Stream(RequestProducer(settings, rate=30), images["harmful"]) as stream:
        first = serve_process()
        wait_until(lambda: result_count() >= 10, 180, "the first consumer's results")
        first.send_signal(signal.SIGKILL)
        assert first.wait(10) == -signal.SIGKILL
        killed_at = len(stream.ids)
        log = tmp_path / "serve.log"
        lines_before = log.read_text().count("[image_")
        second = serve_process()
        wait_until(lambda: log.read_text().count(" consuming ") >= 2, 300, "the second start")
        subscribed = time.monotonic()
        wait_until(lambda: log.read_text().count("[image_") > lines_before, 60, "a resume")
        resumed_in = time.monotonic() - subscribed
        wait_until(lambda: len(stream.ids) > killed_at + 30, 60, "more requests after the kill")
    messages = read_topic(
        kafka_bootstrap, topics["results"], until=has_ids(set(stream.ids)), timeout=180
    )
    second.send_signal(signal.SIGTERM)
    assert second.wait(60) == 0, log.read_text()[-3000:]
    # Static membership: the partitions come back at once, not after the 45 s session timeout.
    print(f"resumed {resumed_in:.1f}s after subscribing")
    assert resumed_in < 20
    grouped = results_by_id(messages)
    assert set(grouped) == set(stream.ids)
    for results in grouped.values():
        assert {r.label for r in results} == {"harmful"}  # a redelivery gives the same answer
    assert "[image_0] Path: " in log.read_text()
    assert "received SIGTERM" in log.read_text()


class FlakyProducer:
    """A real producer whose first ``failures`` records fail delivery (fault injection)."""

    def __init__(self, real: object, failures: int) -> None:
        self.real = real
        self.failures = failures

    def produce(self, topic: str, **kwargs: object) -> None:
        from confluent_kafka import KafkaError

        if self.failures > 0:
            self.failures -= 1
            kwargs["on_delivery"](KafkaError(KafkaError._MSG_TIMED_OUT), None)  # type: ignore[operator]
            return
        self.real.produce(topic, **kwargs)  # type: ignore[attr-defined]

    def flush(self, timeout: float) -> int:
        return self.real.flush(timeout)  # type: ignore[attr-defined]

    def poll(self, timeout: float) -> int:
        return self.real.poll(timeout)  # type: ignore[attr-defined]

    def purge(self) -> None:
        self.real.purge()  # type: ignore[attr-defined]

    def close(self) -> bool:
        return self.real.close()  # type: ignore[attr-defined]


def test_failed_delivery_is_retried_not_committed(
    overrides: list[str],
    make_settings: Callable[..., object],
    kafka_bootstrap: str,
    topics: dict[str, str],
    images: dict[str, Path],
    tmp_path: Path,
) -> None:
    from serving.consumer import ServingConsumer
    from serving.service import make_classifier, make_consumer, make_producer
    from serving.source import load_model_folder
    from tests.serving_support import save_local_model

    settings = make_settings(*overrides)
    model = load_model_folder(
        save_local_model(tmp_path / "local-model"), name="local", version="7", runtime="onnx"
    )
    producer = RequestProducer(settings)
    ids = {producer.send_path(images["harmful"]) for _ in range(12)}
    assert not producer.flush(30).failed
    loop = ServingConsumer(
        settings, model, make_classifier(settings), make_consumer(settings),
        FlakyProducer(make_producer(settings), failures=5),  # type: ignore[arg-type]
    )  # fmt: skip
    with LoopThread(loop):
        messages = read_topic(kafka_bootstrap, topics["results"], until=has_ids(ids), timeout=90)
    grouped = results_by_id(messages)
    assert set(grouped) == ids
    assert {r.model_version for rs in grouped.values() for r in rs} == {"7"}
    failures = loop.metrics.infra_errors.labels("DeliveryFailed")._value.get()
    assert failures >= 1
    assert loop.committed >= len(ids)


def test_consumers_in_one_group_share_the_partitions(
    overrides: list[str],
    make_settings: Callable[..., object],
    kafka_bootstrap: str,
    topics: dict[str, str],
    images: dict[str, Path],
    tmp_path: Path,
) -> None:
    from serving.consumer import ServingConsumer
    from serving.service import make_classifier, make_consumer, make_producer
    from serving.source import load_model_folder
    from tests.serving_support import save_local_model

    settings = make_settings(*overrides)
    folder = save_local_model(tmp_path / "local-model")
    loops = [
        ServingConsumer(
            settings,
            load_model_folder(folder, name="local", version="1", runtime="onnx"),
            make_classifier(settings),
            make_consumer(settings.model_copy(update={"serving": serving})),
            make_producer(settings),
        )
        for serving in (
            settings.serving.model_copy(update={"group_instance_id": f"member-{index}"})
            for index in range(2)
        )
    ]
    runners = [LoopThread(loop) for loop in loops]
    for runner in runners:
        runner.start()
    try:
        with Stream(RequestProducer(settings, rate=20), images["safe"]) as stream:
            wait_until(lambda: all(loop.committed > 0 for loop in loops), 90, "both consumers")
        messages = read_topic(
            kafka_bootstrap, topics["results"], until=has_ids(set(stream.ids)), timeout=90
        )
    finally:
        for loop in loops:
            loop.stop()  # both at once: the group rebalances once
        for runner in runners:
            runner.stop()
    assert set(results_by_id(messages)) == set(stream.ids)
    assert all(loop.committed > 0 for loop in loops)
