"""Kafka-side test helpers of the serving tests (no torch: subprocess scripts import them too).

A consumer in a thread (`ConsumerThread` runs the service's own `run_consumer`, `LoopThread` a
`ServingConsumer` the test built), a steady request `Stream`, reading a topic (`read_topic`,
`results_by_id`, `has_ids`), waiting for a group to commit to a topic's end (`committed_to_end`)
and `wait_until`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from serving.producer import RequestProducer


class _Background:
    """Something that runs until stopped, in a daemon thread; re-raises its error on `stop`.

    As a context manager it stops on exit; when the body failed, the body's error is the one
    that propagates.
    """

    name = "serving-consumer"

    def __init__(self) -> None:
        import threading

        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._guarded, name=self.name, daemon=True)

    def _run(self) -> None:
        raise NotImplementedError

    def _ask_to_stop(self) -> None:
        raise NotImplementedError

    def _guarded(self) -> None:
        try:
            self._run()
        except BaseException as exc:
            self.error = exc

    def start(self) -> None:
        self.thread.start()

    def __enter__(self) -> _Background:
        self.start()
        return self

    def __exit__(self, exc_type: object, *exc_info: object) -> None:
        self.stop(raise_error=exc_type is None)

    def stop(self, *, raise_error: bool = True, join_s: float = 60.0) -> None:
        """Ask it to stop, wait at most ``join_s`` and re-raise its error (if ``raise_error``)."""
        self._ask_to_stop()
        self.thread.join(join_s)
        assert not self.thread.is_alive(), f"{self.name} did not stop within {join_s:g} s"
        if raise_error and self.error is not None:
            raise self.error


class ConsumerThread(_Background):
    """`serving.service.run_consumer` in a thread; re-raises its error on `stop`."""

    def __init__(self, settings: object) -> None:
        import threading

        self.settings = settings
        self.stop_event = threading.Event()
        super().__init__()

    def _run(self) -> None:
        from serving.service import run_consumer

        run_consumer(self.settings, self.stop_event)  # type: ignore[arg-type]

    def _ask_to_stop(self) -> None:
        self.stop_event.set()


class LoopThread(_Background):
    """A `ServingConsumer` the test built itself (its own model, classifier or clients) running
    in a thread; `stop` also closes its classifier (the decode workers) and re-raises its error."""

    name = "serving-loop"

    def __init__(self, loop: object) -> None:
        self.loop = loop
        super().__init__()

    def _run(self) -> None:
        self.loop.run()  # type: ignore[attr-defined]

    def _ask_to_stop(self) -> None:
        self.loop.stop()  # type: ignore[attr-defined]

    def stop(self, *, raise_error: bool = True, join_s: float = 60.0) -> None:
        try:
            super().stop(raise_error=raise_error, join_s=join_s)
        finally:
            self.loop.classifier.close()  # type: ignore[attr-defined]


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait until ``check()`` is true; fail naming ``what`` after ``timeout`` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


class Stream:
    """Sends path requests at a steady rate from a thread until stopped; remembers the ids.

    On exit it stops, and every request sent must be delivered within ``flush_s`` seconds.
    """

    def __init__(self, producer: RequestProducer, path: Path, flush_s: float = 60.0) -> None:
        import threading

        self.producer, self.path, self.flush_s = producer, path, flush_s
        self.ids: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.ids.append(self.producer.send_path(self.path))

    def __enter__(self) -> Stream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
        assert not self.producer.flush(self.flush_s).failed


def committed_to_end(bootstrap: str, group: str, topic: str, timeout: float = 20.0) -> bool:
    """Whether ``group``'s committed offsets reach the end of every partition of ``topic``
    within ``timeout`` seconds (everything written so far was consumed and committed)."""
    import time

    from confluent_kafka import Consumer, TopicPartition

    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        partitions = probe.list_topics(topic, timeout=10).topics[topic].partitions
        tps = [TopicPartition(topic, p) for p in partitions]
        deadline = time.monotonic() + timeout
        while True:
            committed = probe.committed(tps, timeout=10)
            ends = [probe.get_watermark_offsets(tp, timeout=10)[1] for tp in tps]
            if all(c.offset == end for c, end in zip(committed, ends, strict=True)):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.5)
    finally:
        probe.close()


def read_topic(
    bootstrap: str,
    topic: str,
    *,
    until: object = None,
    timeout: float = 60.0,
    idle: float | None = None,
) -> list[object]:
    """Read a topic from the start until ``until(messages)`` is true, ``timeout`` passes, or no
    message came for ``idle`` seconds. Returns the confluent_kafka messages."""
    import time
    import uuid

    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    messages: list[object] = []
    deadline = time.monotonic() + timeout
    last = time.monotonic()
    try:
        while time.monotonic() < deadline:
            if until is not None and until(messages):  # type: ignore[operator]
                break
            if idle is not None and messages and time.monotonic() - last > idle:
                break
            for message in consumer.consume(100, 0.5):
                if message.error() is None:
                    messages.append(message)
                    last = time.monotonic()
    finally:
        consumer.close()
    return messages


def results_by_id(messages: list[object]) -> dict[str, list[object]]:
    """Decoded results grouped by request id (checks each message's key is its id)."""
    from serving.schema import decode_result

    grouped: dict[str, list[object]] = {}
    for message in messages:
        result = decode_result(message.value())  # type: ignore[attr-defined]
        assert message.key() == result.id.encode()  # type: ignore[attr-defined]
        grouped.setdefault(result.id, []).append(result)
    return grouped


def has_ids(ids: set[str]) -> object:
    """An ``until`` predicate: every id in ``ids`` has a result."""

    def check(messages: list[object]) -> bool:
        seen = {m.key().decode() for m in messages}  # type: ignore[attr-defined]
        return ids <= seen

    return check
