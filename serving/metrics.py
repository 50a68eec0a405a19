"""Prometheus metrics of the consumer, on a registry of its own (several consumers per process in
tests never collide), served over HTTP by `ServingMetrics.serve`.

``harmscan_model_info{name, version, runtime, precision}`` names the model the loop serves *now*
(set at start and at every hot swap); `served_model` reads it back, so the demo and operators can
wait until a new champion is really being served. ``harmscan_int8_speedup`` is the float/int8
time ratio the model source measured on this host when ``auto`` chose between the two graphs."""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

logger = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
SCORE_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))


class ServingMetrics:
    """Counters, histograms and gauges of one consumer."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        reg = self.registry
        self.consumed = Counter("harmscan_consumed", "Request messages consumed", registry=reg)
        self.produced = Counter(
            "harmscan_produced", "Messages produced, by topic kind", ["kind"], registry=reg
        )
        self.dead_lettered = Counter(
            "harmscan_dead_lettered", "Requests dead-lettered, by reason", ["reason"], registry=reg
        )
        self.labels = Counter(
            "harmscan_classified", "Results by label and precision", ["label", "precision"],
            registry=reg,
        )  # fmt: skip
        self.score = Histogram(
            "harmscan_score",
            "Harmful probability of each result, by model version",
            ["model_version"],
            buckets=SCORE_BUCKETS,
            registry=reg,
        )
        self.infra_errors = Counter(
            "harmscan_infrastructure_errors",
            "Batches retried after an infrastructure failure, by kind",
            ["kind"],
            registry=reg,
        )
        self.consumer_recreated = Counter(
            "harmscan_consumer_recreated",
            "Consumers closed after a fatal error (fenced: FENCED_INSTANCE_ID) and built again",
            ["reason"],
            registry=reg,
        )
        self.latency = Histogram(
            "harmscan_latency_seconds",
            "Consumer latency per request, received to result delivered",
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.e2e_latency = Histogram(
            "harmscan_end_to_end_latency_seconds",
            "Request message timestamp to result delivered",
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.batch_size = Histogram(
            "harmscan_batch_size",
            "Messages per consumed batch",
            buckets=BATCH_BUCKETS,
            registry=reg,
        )
        self.stage = Histogram(
            "harmscan_stage_seconds",
            "Time per batch in each stage of the loop (poll: taking the batch from the client; "
            "decode_wait: decoding not yet done when the batch's turn came; infer; deliver: "
            "produce, flush, acks; commit)",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.model = Info("harmscan_model", "The model currently served", registry=reg)
        self.model_swaps = Counter("harmscan_model_swaps", "Hot model swaps", registry=reg)
        self.int8_speedup = Gauge(
            "harmscan_int8_speedup",
            "Float time / int8 time of the served model's graphs measured at load on this host "
            "(serving.precision=auto with an approved int8 graph; NaN when not measured)",
            registry=reg,
        )
        self.lag = Gauge(
            "harmscan_consumer_lag",
            "Messages behind the partition end",
            ["topic", "partition"],
            registry=reg,
        )
        self._server: Any = None

    def set_model(
        self,
        name: str,
        version: str,
        runtime: str,
        precision: str = "float",
        int8_speedup: float | None = None,
    ) -> None:
        """Record the model served now (``precision``: the graph scoring, float or int8)."""
        self.model.info(
            {"name": name, "version": version, "runtime": runtime, "precision": precision}
        )
        self.int8_speedup.set(float("nan") if int8_speedup is None else int8_speedup)

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Start the ``/metrics`` HTTP endpoint; port 0 picks a free one. The port used."""
        from prometheus_client import start_http_server

        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        self._server = server
        bound = int(server.server_address[1])
        logger.info("metrics on http://%s:%d/metrics", host, bound)
        return bound

    def close(self) -> None:
        """Stop the HTTP endpoint."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


MODEL_INFO_SAMPLE = "harmscan_model_info"


def served_model(url: str, timeout: float = 2.0) -> dict[str, str] | None:
    """The ``name``, ``version`` and ``runtime`` a consumer serves, read from its ``/metrics``.

    Args:
        url: The consumer's metrics endpoint, ``http://host:port/metrics``.
        timeout: Seconds to wait for the answer.

    Returns:
        The labels of ``harmscan_model_info``, or None when the endpoint does not answer (yet) or
        has no model.
    """
    import requests
    from prometheus_client.parser import text_string_to_metric_families

    try:
        response = requests.get(url, timeout=timeout)
        response.raise_for_status()
    except requests.RequestException as exc:
        logger.debug("no metrics at %s: %s", url, exc)
        return None
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == MODEL_INFO_SAMPLE:
                return dict(sample.labels)
    return None
