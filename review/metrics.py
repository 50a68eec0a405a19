"""Prometheus metrics of the review queue, per model version, read from the store on scrape.

Gauges and counters are computed from the store at each scrape (one small grouped query), so the
page and ``/metrics`` always say the same. The decision latency is a histogram of the app's own.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from review.store import ReviewStore

DECISION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0)
LABELS = ("harmful", "safe")


class StoreCollector(Collector):
    """Review figures per model version, from the store."""

    def __init__(self, store: ReviewStore) -> None:
        self.store = store

    def describe(self) -> list[Metric]:
        return []  # collected lazily: no store query at registration

    def collect(self) -> Iterator[Metric]:
        waiting = GaugeMetricFamily(
            "harmscan_review_waiting", "Items waiting for a reviewer", labels=["model_version"]
        )
        age = GaugeMetricFamily(
            "harmscan_review_oldest_age_seconds",
            "Age of the oldest waiting item (scored to now)",
            labels=["model_version"],
        )
        decided = CounterMetricFamily(
            "harmscan_review_decisions",
            "Decisions recorded, by whether they kept the model's label",
            labels=["model_version", "agreed"],
        )
        agreement = GaugeMetricFamily(
            "harmscan_review_agreement_ratio",
            "Share of decisions that kept the model's label",
            labels=["model_version"],
        )
        overturn = GaugeMetricFamily(
            "harmscan_review_overturn_ratio",
            "Share of the model's results of a label that reviewers turned into the other",
            labels=["model_version", "model_label"],
        )
        for stats in self.store.stats():
            version = stats.model_version
            waiting.add_metric([version], stats.waiting)
            age.add_metric([version], stats.oldest_age_s)
            decided.add_metric([version, "true"], stats.agreed)
            decided.add_metric([version, "false"], stats.decided - stats.agreed)
            if stats.agreement is not None:
                agreement.add_metric([version], stats.agreement)
            for label in LABELS:
                rate = stats.overturn_rate(label)
                if rate is not None:
                    overturn.add_metric([version, label], rate)
        yield from (waiting, age, decided, agreement, overturn)


class ReviewMetrics:
    """The review app's registry: the store's figures plus the decision latency."""

    def __init__(self, store: ReviewStore | None = None) -> None:
        self.registry = CollectorRegistry()
        if store is not None:
            self.registry.register(StoreCollector(store))
        self.decision_seconds = Histogram(
            "harmscan_review_decision_seconds",
            "Time to record a decision: delivered to the decisions topic, then stored",
            buckets=DECISION_BUCKETS,
            registry=self.registry,
        )
        self.feed_skipped = Counter(
            "harmscan_review_feed_skipped",
            "Review-topic messages passed because they are not a result the queue can hold",
            registry=self.registry,
        )


def metric_names() -> set[str]:
    """Every metric family name the review app exports (for dashboard checks)."""
    return {
        "harmscan_review_waiting",
        "harmscan_review_oldest_age_seconds",
        "harmscan_review_decisions",
        "harmscan_review_agreement_ratio",
        "harmscan_review_overturn_ratio",
        "harmscan_review_decision_seconds",
        "harmscan_review_feed_skipped",
    }
