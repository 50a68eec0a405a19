"""Which exit code and ``error:`` line each kind of failure gets (pure: nothing runs)."""

from __future__ import annotations

import pytest
import requests
from confluent_kafka import KafkaError, KafkaException

from cli.failures import FAILED, UNREACHABLE, USAGE, explain
from conf.loader import SettingsError, load_settings
from flows.common import FlowTimeout
from flows.etl import EmptySelection
from harmscan.classtree import ClassResolutionError
from harmscan.models import WeightsError


def _caused(outer: Exception, inner: Exception) -> Exception:
    try:
        try:
            raise inner
        except Exception as exc:
            raise outer from exc
    except Exception as exc:
        return exc


@pytest.mark.parametrize(
    ("exc", "code", "names"),
    [
        (SettingsError("unknown setting 'train.epochz'"), USAGE, "train.epochz"),
        (ClassResolutionError("unknown Open Images class 'Gnu'"), USAGE, "Gnu"),
        (WeightsError("set train.weights.resnet50 to ..."), USAGE, "train.weights.resnet50"),
        (EmptySelection("... check openimages.bucket"), FAILED, "openimages.bucket"),
        (FlowTimeout("raise prefect.etl_timeout_s"), FAILED, "prefect.etl_timeout_s"),
        (
            requests.ConnectionError(
                "HTTPConnectionPool(host='127.0.0.1', port=9): Max retries exceeded"
            ),
            UNREACHABLE,
            "openimages.metadata_base_url",
        ),
        (
            _caused(RuntimeError("download failed"), ConnectionRefusedError("127.0.0.1:5999")),
            UNREACHABLE,
            "mlflow.tracking_uri",
        ),
        (
            RuntimeError("Timed out while attempting to connect to ephemeral Prefect API server."),
            UNREACHABLE,
            "prefect.api_url",
        ),
        (
            KafkaException(KafkaError(KafkaError._TRANSPORT, "Failed to get metadata")),
            UNREACHABLE,
            "cannot reach Kafka at 127.0.0.1:9092 (kafka.bootstrap_servers)",
        ),
        (ZeroDivisionError("boom"), FAILED, "--verbose"),
    ],
)
def test_each_failure_has_its_code_and_names_what_to_change(exc, code, names) -> None:
    settings = load_settings(
        "ci",
        [
            "openimages.metadata_base_url=http://127.0.0.1:9",
            "mlflow.tracking_uri=http://127.0.0.1:5999",
            "kafka.bootstrap_servers=127.0.0.1:9092",
        ],
        env={},
    )
    failure = explain(exc, settings)
    assert failure.code == code
    assert names in failure.message
    assert "\n" not in failure.message


@pytest.mark.parametrize(
    ("setting", "address", "hint"),
    [
        (
            "openimages.metadata_base_url",
            "http://127.0.0.1:8088",
            "start the mirror (harmscan mirror up",
        ),
        ("mlflow.tracking_uri", "http://localhost:5000", "start the local stack (harmscan up)"),
        ("mlflow.tracking_uri", "http://mlflow.example:5000", "start that service"),
    ],
)
def test_an_unreachable_service_on_this_machine_says_what_starts_it(setting, address, hint) -> None:
    settings = load_settings("ci", [f"{setting}={address}"], env={})
    host_port = address.split("//", 1)[1]
    failure = explain(_caused(RuntimeError("failed"), ConnectionRefusedError(host_port)), settings)
    assert failure.code == UNREACHABLE
    assert failure.message.startswith(f"cannot reach {address} ({setting}); {hint}")
    assert failure.message.endswith(f"or change {setting}")
