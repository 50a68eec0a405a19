"""Which Kafka errors are fatal, and the bound on consumer recreations."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError

from serving.fatal import ConsumerFatal, RecreationBudget, is_fatal, is_fenced

FENCED_EVENT = (
    "Fatal error: Broker: Static consumer fenced by other consumer with same group.instance.id: "
    "OffsetCommit failed: Broker: Static consumer fenced by other consumer with same "
    "group.instance.id"
)


@pytest.mark.parametrize(
    ("error", "fatal", "fenced"),
    [
        # What a fenced commit raises, then every later commit and the consumer's error event:
        # confluent-kafka leaves fatal() false on all three.
        (KafkaError(KafkaError.FENCED_INSTANCE_ID, "Commit failed: fenced"), True, True),
        (KafkaError(KafkaError._FATAL, "Commit failed: Local: Fatal error"), True, False),
        (KafkaError(KafkaError._FATAL, FENCED_EVENT), True, True),
        (KafkaError(KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER, "x", fatal=True), True, False),
        (KafkaError(KafkaError._TRANSPORT, "broker down"), False, False),
        (KafkaError(KafkaError.REBALANCE_IN_PROGRESS, "rebalancing"), False, False),
        (KafkaError(KafkaError._MSG_TIMED_OUT), False, False),
    ],
)
def test_fatal_and_fenced(error: KafkaError, fatal: bool, fenced: bool) -> None:
    assert is_fatal(error) is fatal
    assert is_fenced(error) is fenced
    if fatal:
        assert ConsumerFatal(error).reason == ("fenced" if fenced else "fatal")


def test_budget_allows_limit_within_the_window_then_refuses() -> None:
    budget = RecreationBudget(limit=3, window_s=600)
    assert [budget.spend(t) for t in (0, 10, 20)] == [True, True, True]
    assert not budget.spend(30)
    assert budget.used == 3
    assert budget.spend(600)  # the first one left the window
    assert not budget.spend(601)


@pytest.mark.parametrize("limit", [0, 1])
def test_budget_of_zero_or_one(limit: int) -> None:
    budget = RecreationBudget(limit=limit, window_s=60)
    assert budget.spend(0) is (limit == 1)
    assert not budget.spend(1)
