"""With the local profile, every command reaches the local stack at its stack.* ports: the
client addresses left at the default stack's follow them, others are kept."""

from __future__ import annotations

from conf.loader import load_settings

MOVED = [
    "stack.kafka_port=19092",
    "stack.mlflow_port=15000",
    "stack.prefect_port=14200",
    "stack.s3_port=19000",
    "stack.metadata_port=18088",
    "stack.review_port=18095",
]


def test_the_local_profiles_clients_follow_the_stacks_ports() -> None:
    settings = load_settings("local", MOVED, env={})
    assert settings.kafka.bootstrap_servers == "127.0.0.1:19092"
    assert settings.mlflow.tracking_uri == "http://127.0.0.1:15000"
    assert settings.prefect.api_url == "http://127.0.0.1:14200/api"
    assert settings.openimages.s3_endpoint_url == "http://127.0.0.1:19000"
    assert settings.openimages.metadata_base_url == "http://127.0.0.1:18088"
    assert settings.review.port == 18095


def test_an_address_set_to_something_else_is_kept() -> None:
    items = [*MOVED, "kafka.bootstrap_servers=10.0.0.7:9092", "mlflow.tracking_uri=https://ml.x"]
    settings = load_settings("local", items, env={})
    assert settings.kafka.bootstrap_servers == "10.0.0.7:9092"
    assert settings.mlflow.tracking_uri == "https://ml.x"
    assert settings.prefect.api_url == "http://127.0.0.1:14200/api"  # not set: it follows


def test_default_ports_and_other_profiles_are_left_as_they_are() -> None:
    assert load_settings("local", [], env={}).kafka.bootstrap_servers == "127.0.0.1:9092"
    ci = load_settings("ci", ["stack.kafka_port=19092"], env={})
    assert ci.kafka.bootstrap_servers == load_settings("ci", [], env={}).kafka.bootstrap_servers
