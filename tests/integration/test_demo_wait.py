"""The demo waits until the consumer reports the champion's version (its metrics endpoint)."""

from __future__ import annotations

import threading

import pytest

from serving.metrics import ServingMetrics, served_model
from stack.demo_checks import DemoError, wait_for_champion
from stack.process import free_port


@pytest.fixture
def consumer_metrics():
    metrics = ServingMetrics()
    metrics.set_model("harmscan", "1", "onnx")
    port = metrics.serve(0)
    yield metrics, port
    metrics.close()


def test_served_model_reads_the_info_metric(consumer_metrics) -> None:
    metrics, port = consumer_metrics
    url = f"http://127.0.0.1:{port}/metrics"
    assert served_model(url) == {
        "name": "harmscan",
        "version": "1",
        "runtime": "onnx",
        "precision": "float",
    }
    metrics.set_model("harmscan", "2", "onnx")  # what a hot swap does
    assert served_model(url)["version"] == "2"
    assert served_model(f"http://127.0.0.1:{free_port()}/metrics", timeout=0.5) is None


def test_waits_for_the_swap(consumer_metrics, make_settings) -> None:
    metrics, port = consumer_metrics
    settings = make_settings(f"serving.metrics_port={port}")
    lines: list[str] = []
    swap = threading.Timer(1.5, metrics.set_model, ("harmscan", "3", "onnx"))
    swap.start()
    try:
        wait_for_champion(settings, "3", timeout=30, emit=lines.append, poll_s=0.2)
    finally:
        swap.cancel()
    assert lines[-1] == "      the consumer serves harmscan v3 (onnx)"


def test_names_the_swap_interval_when_the_old_version_stays(
    consumer_metrics, make_settings
) -> None:
    _, port = consumer_metrics
    settings = make_settings(f"serving.metrics_port={port}", "serving.swap_check_interval_s=45")
    interval = r"serving.swap_check_interval_s \(45s\)"
    with pytest.raises(DemoError, match=rf"still serves v1 .* {interval}"):
        wait_for_champion(settings, "3", timeout=1, emit=lambda _: None, poll_s=0.2)


def test_a_silent_consumer_names_the_metrics_port(make_settings) -> None:
    settings = make_settings(f"serving.metrics_port={free_port()}")
    with pytest.raises(DemoError, match=r"did not answer .*serving.metrics_port"):
        wait_for_champion(settings, "3", timeout=1, emit=lambda _: None, poll_s=0.2)
