"""The Prefect ``serve`` flow starts the consumer: results and dead letters come out of a run."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from conf.loader import SettingsSource
from flows.serve import serve
from serving.headers import H_REASON, headers_dict
from serving.producer import RequestProducer
from tests.kafka_support import has_ids, read_topic, results_by_id
from tests.serving_support import BLUE, RED, register_model, serving_overrides, write_image

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def test_serve_flow_classifies_and_stops(
    prefect_harness: None,
    mlflow_server: str,
    kafka_bootstrap: str,
    kafka_topics: Callable[..., str],
    make_source: Callable[..., SettingsSource],
    tmp_path: Path,
) -> None:
    name = f"flow-{os.urandom(4).hex()}"
    register_model(mlflow_server, name, tmp_path / "model")
    topics = {k: kafka_topics(k) for k in ("requests", "results", "review", "dead_letter")}
    root = tmp_path / "images"
    source = make_source(
        *serving_overrides(
            bootstrap=kafka_bootstrap, tracking_uri=mlflow_server, model_name=name,
            topics=topics, group=f"g-{os.urandom(4).hex()}", roots=[root],
        )
    )  # fmt: skip
    producer = RequestProducer(source.resolve())
    expected = {
        producer.send_path(write_image(root / "red.jpg", RED)): "harmful",
        producer.send_path(write_image(root / "blue.png", BLUE, "PNG")): "safe",
    }
    forbidden = producer.send_path(Path("/etc/hostname"))
    assert not producer.flush(30).failed

    uri = serve(source=source, runtime="torch", max_messages=3)

    assert uri == f"models:/{name}@champion"
    results = results_by_id(
        read_topic(kafka_bootstrap, topics["results"], until=has_ids(set(expected)), timeout=30)
    )
    assert {i: rs[-1].label for i, rs in results.items()} == expected
    dead = read_topic(kafka_bootstrap, topics["dead_letter"], until=has_ids({forbidden}))
    assert [headers_dict(m.headers())[H_REASON] for m in dead] == ["forbidden_path"]
