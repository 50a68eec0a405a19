"""Test helpers of the review page: review-topic messages, settings, the app on a free port."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from conf.settings import Settings
from serving.schema import Result, encode_result

TOKEN = "review-test-token"


def review_result(
    request_id: str,
    source: str,
    *,
    version: str = "1",
    p: float = 0.48,
    label: str = "safe",
    age_s: float = 30.0,
) -> Result:
    """A result in the review band, as the consumer puts it on the review topic."""
    now = time.time()
    return Result(
        id=request_id,
        label=label,
        p_harmful=p,
        threshold=0.5,
        review=True,
        model_name="harmscan",
        model_version=version,
        source=source,
        sent_at=None,
        received_at=now - age_s,
        completed_at=now - age_s,
        latency_ms=5.0,
    )


def send_review(
    bootstrap: str,
    topic: str,
    results: list[Result],
    headers: dict[str, list[tuple[str, bytes]]] | None = None,
) -> None:
    """Produce results to the review topic (keyed by request id) and wait for delivery.

    The topic is created first, as the consumer does at start: brokers never auto-create topics.
    """
    from confluent_kafka import Producer

    from serving.topics import ensure_topics

    ensure_topics(bootstrap, {topic: 2})
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    failed: list[object] = []
    for result in results:
        producer.produce(
            topic,
            key=result.id.encode(),
            value=encode_result(result),
            headers=(headers or {}).get(result.id, []),
            on_delivery=lambda err, _m: failed.append(err) if err else None,
        )
    assert producer.flush(30) == 0
    assert not failed, failed


def send_raw(bootstrap: str, topic: str, values: list[bytes], partition: int = 0) -> None:
    """Produce raw values (well formed or not) in order to one partition of the review topic."""
    from confluent_kafka import Producer

    from serving.topics import ensure_topics

    ensure_topics(bootstrap, {topic: 2})
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for value in values:
        producer.produce(topic, value=value, partition=partition)
    assert producer.flush(30) == 0


def review_settings(
    make_settings: Callable[..., Settings],
    bootstrap: str,
    unique: Callable[[str], str],
    roots: list[Path],
    *extra: str,
) -> Settings:
    """ci settings with unique review/decisions topics and group, a token login, ``roots``."""
    return make_settings(
        f"kafka.bootstrap_servers={bootstrap}",
        f"kafka.review_topic={unique('review')}",
        f"kafka.decisions_topic={unique('decisions')}",
        "kafka.partitions=2",
        f"review.group_id={unique('review-group')}",
        f"review.token={TOKEN}",
        f"serving.allowed_roots=[{', '.join(str(r) for r in roots)}]",
        *extra,
    )


def wait_for(check: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    """Poll ``check`` until true; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@contextmanager
def serving_app(app: object, port: int) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on 127.0.0.1:port in a thread; yields its URL."""
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"review-{uuid.uuid4().hex[:4]}", daemon=True)
    thread.start()
    wait_for(lambda: server.started, 30, "uvicorn to start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


@contextmanager
def running_app(service: object, port: int) -> Iterator[str]:
    """Run a `review.service.ReviewService` with uvicorn on 127.0.0.1:port; yields its URL."""
    from review.service import ReviewService

    assert isinstance(service, ReviewService)
    service.feed.start()
    try:
        with serving_app(service.app(), port) as url:
            yield url
    finally:
        service.close()
