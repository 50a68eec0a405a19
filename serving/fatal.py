"""Fatal Kafka client errors: which ones there are and how many consumer recreations are allowed.

librdkafka raises a *fatal* error when a client instance can never work again; for the consumer
that is a static member fenced by another with the same ``group.instance.id``
(``FENCED_INSTANCE_ID``): from then on every commit fails. confluent-kafka does not always flag
them: a fenced commit raises ``FENCED_INSTANCE_ID``, later ones and the consumer's error event
``_FATAL``, all with ``fatal()`` false. So the codes decide, not only the flag.

The policy: a fatal *consumer* error recreates the consumer (close without committing, a new one
with the same id, rejoin, redo from the committed offsets), at most
``serving.consumer_recreate_max`` times within ``serving.consumer_recreate_window_s``; past that,
or on a fatal *producer* error, the loop stops with `ServingFatal` and ``harmscan serve`` exits
with code 4 and a one-line error, for its supervisor to restart it. The bound matters: two live
processes given one id would otherwise fence each other back and forth for ever.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from confluent_kafka import KafkaError

logger = logging.getLogger(__name__)
T = TypeVar("T")

FATAL_CODES = frozenset({KafkaError._FATAL, KafkaError.FENCED_INSTANCE_ID})


def is_fatal(error: KafkaError) -> bool:
    """Whether ``error`` leaves its client unusable (flagged fatal, ``_FATAL`` or fenced)."""
    return bool(error.fatal()) or error.code() in FATAL_CODES


def is_fenced(error: KafkaError) -> bool:
    """Whether ``error`` is (or wraps) a static member's fencing."""
    if error.code() == KafkaError.FENCED_INSTANCE_ID:
        return True
    return error.code() == KafkaError._FATAL and "group.instance.id" in error.str()


class ConsumerFatal(Exception):
    """The consumer instance hit a fatal error: it must be closed and replaced.

    Args:
        error: The Kafka error.
    """

    def __init__(self, error: KafkaError) -> None:
        super().__init__(error.str())
        self.error = error
        self.reason = "fenced" if is_fenced(error) else "fatal"


class ServingFatal(RuntimeError):
    """The loop cannot go on in this process (a restart by its supervisor may help)."""


@dataclass
class RecreationBudget:
    """At most ``limit`` consumer recreations within any ``window_s`` seconds."""

    limit: int
    window_s: float
    _times: deque[float] = field(default_factory=deque)

    def spend(self, now: float | None = None) -> bool:
        """Take one recreation if the budget allows it (``now``: monotonic seconds)."""
        now = time.monotonic() if now is None else now
        while self._times and now - self._times[0] >= self.window_s:
            self._times.popleft()
        if len(self._times) >= self.limit:
            return False
        self._times.append(now)
        return True

    def spend_on(self, fatal: ConsumerFatal, factory: Callable[[], T] | None) -> Callable[[], T]:
        """Take one recreation of a consumer that hit ``fatal`` (logged loudly): the ``factory``
        to build its replacement with.

        Raises:
            ServingFatal: No ``factory``, or the budget is spent.
        """
        if factory is None or not self.spend():
            raise ServingFatal(
                f"Kafka consumer {fatal.reason} ({fatal}) after {self.used} recreations in "
                f"{self.window_s:.0f} s (serving.consumer_recreate_max={self.limit}); is "
                "another process using the same serving.group_instance_id?"
            ) from fatal
        logger.error(
            "Kafka consumer %s (%s): closing it without committing and joining again "
            "(recreation %d of at most %d in %.0f s); uncommitted requests are redone",
            fatal.reason, fatal, self.used, self.limit, self.window_s,
        )  # fmt: skip
        return factory

    @property
    def used(self) -> int:
        """Recreations within the current window (as of the last `spend`)."""
        return len(self._times)
