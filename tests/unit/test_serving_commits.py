"""The loop's asynchronous commits are made sure of, never moved backwards (a fault injected)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from serving.delivery import Commits
from serving.fatal import ConsumerFatal


@dataclass
class Msg:
    """What `next_offsets` reads of a consumed message."""

    _topic: str
    _partition: int
    _offset: int

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset


@dataclass
class Recorder:
    """Records commits; raises ``fail`` on the next synchronous one (the injected fault)."""

    calls: list[tuple[bool, list[tuple[str, int, int]]]] = field(default_factory=list)
    fail: KafkaError | None = None

    def commit(self, *, offsets: list[TopicPartition], asynchronous: bool) -> None:
        if not asynchronous and self.fail is not None:
            error, self.fail = self.fail, None
            raise KafkaException(error)
        self.calls.append((asynchronous, [(t.topic, t.partition, t.offset) for t in offsets]))


def test_async_commits_are_settled_once_with_the_newest_offsets() -> None:
    consumer, commits = Recorder(), Commits(asynchronous=True)
    commits.batch(consumer, [Msg("r", 0, 4), Msg("r", 1, 7)])  # type: ignore[arg-type]
    commits.batch(consumer, [Msg("r", 0, 5), Msg("r", 0, 6)])  # type: ignore[arg-type]
    assert [a for a, _ in consumer.calls] == [True, True]
    commits.settle(consumer)  # type: ignore[arg-type]
    assert consumer.calls[-1] == (False, [("r", 0, 7), ("r", 1, 8)])
    assert not commits.unsure
    commits.settle(consumer)  # type: ignore[arg-type]
    assert len(consumer.calls) == 3  # nothing unsure: no round trip


def test_a_failed_settle_keeps_the_offsets_for_the_next_try() -> None:
    consumer, commits = Recorder(), Commits(asynchronous=True)
    commits.batch(consumer, [Msg("r", 0, 9)])  # type: ignore[arg-type]
    consumer.fail = KafkaError(KafkaError._TRANSPORT, "broker down")
    with pytest.raises(KafkaException):
        commits.settle(consumer)  # type: ignore[arg-type]
    assert commits.unsure
    commits.settle(consumer)  # type: ignore[arg-type]
    assert consumer.calls[-1] == (False, [("r", 0, 10)])


def test_a_later_synchronous_commit_is_never_undone_by_settling() -> None:
    consumer, commits = Recorder(), Commits(asynchronous=True)
    commits.batch(consumer, [Msg("r", 0, 3)])  # type: ignore[arg-type]
    commits.sync(consumer, [TopicPartition("r", 0, 20)])  # type: ignore[arg-type]
    commits.settle(consumer)  # type: ignore[arg-type]
    assert consumer.calls[-1] == (False, [("r", 0, 20)])


def test_settle_by_partition_and_forget() -> None:
    consumer, commits = Recorder(), Commits(asynchronous=True)
    commits.batch(consumer, [Msg("r", 0, 1), Msg("r", 1, 2)])  # type: ignore[arg-type]
    commits.settle(consumer, [TopicPartition("r", 1)])  # type: ignore[arg-type]
    assert consumer.calls[-1] == (False, [("r", 1, 3)])
    commits.forget([TopicPartition("r", 0)])
    assert not commits.unsure


def test_sync_mode_commits_every_batch_synchronously_and_a_fenced_one_is_fatal() -> None:
    consumer, commits = Recorder(), Commits(asynchronous=False)
    commits.batch(consumer, [Msg("r", 0, 1)])  # type: ignore[arg-type]
    assert consumer.calls == [(False, [("r", 0, 2)])]
    assert not commits.unsure
    consumer.fail = KafkaError(KafkaError.FENCED_INSTANCE_ID, "fenced")
    with pytest.raises(ConsumerFatal):
        commits.batch(consumer, [Msg("r", 0, 2)])  # type: ignore[arg-type]


def test_spaced_commits_carry_the_offsets_in_between() -> None:
    consumer, commits = Recorder(), Commits(asynchronous=True, interval_s=3600)
    commits.batch(consumer, [Msg("r", 0, 1)])  # type: ignore[arg-type]
    commits.batch(consumer, [Msg("r", 1, 5)])  # type: ignore[arg-type]
    commits.batch(consumer, [Msg("r", 0, 2)])  # type: ignore[arg-type]
    assert consumer.calls == [(True, [("r", 0, 2)])]  # the first at once, the rest wait
    commits.settle(consumer)  # type: ignore[arg-type]
    assert consumer.calls[-1] == (False, [("r", 0, 3), ("r", 1, 6)])
    commits.interval_s = 0
    commits.batch(consumer, [Msg("r", 1, 6)])  # type: ignore[arg-type]
    assert consumer.calls[-1] == (True, [("r", 1, 7)])
