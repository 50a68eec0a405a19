"""The review feed against the real broker: a malformed message on the review topic is passed
(logged, counted, committed past) and never stops the messages behind it; a feed that did stop
makes /health answer 503."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from review.service import ReviewService
from serving.schema import encode_result
from tests.integration.test_review_app import login, shown
from tests.review_support import review_result, review_settings, send_raw, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def malformed(request_id: str | None, **changes: object) -> bytes:
    body = json.loads(encode_result(review_result("x", "/srv/x.jpg")))
    body.update(id=request_id, **changes)
    return json.dumps(body).encode()


def committed(settings: Any) -> int:
    from confluent_kafka import Consumer, TopicPartition

    kafka, review = settings.kafka, settings.review
    consumer = Consumer({"bootstrap.servers": kafka.bootstrap_servers, "group.id": review.group_id})
    try:
        tp = TopicPartition(kafka.review_topic, 0)
        return int(consumer.committed([tp], timeout=30)[0].offset)
    finally:
        consumer.close()


def test_malformed_messages_are_passed_and_the_ones_behind_them_read(
    make_settings: Callable[..., Any],
    kafka_bootstrap: str,
    unique: Callable[[str], str],
    tmp_path: Path,
) -> None:
    settings = review_settings(make_settings, kafka_bootstrap, unique, [tmp_path])
    values = [
        encode_result(review_result("good-1", "/srv/1.jpg", age_s=60)),
        malformed("bad-list", model_version=["2"]),
        malformed(None),  # a null id
        malformed("bad-text", p_harmful="0.5x", completed_at="yesterday"),
        b"not json",
        encode_result(review_result("good-2", "/srv/2.jpg", age_s=30)),
    ]
    send_raw(kafka_bootstrap, settings.kafka.review_topic, values)
    service = ReviewService.build(settings)
    service.feed.start()
    try:
        wait_for(lambda: service.store.waiting() == 2, what="the 2 good items")
        wait_for(lambda: service.feed.skipped == 4, what="4 messages skipped")
        assert service.feed.alive
        client = TestClient(service.app())
        assert client.get("/health").text == "ok"
        metrics = client.get("/metrics")
        assert metrics.status_code == 200
        assert "harmscan_review_feed_skipped_total 4.0" in metrics.text
        assert login(client, "ana") == 303
        for expected in ("good-1", "good-2"):
            request_id, csrf = shown(client)
            assert request_id == expected  # the bad ones never reach the queue
            form = {"csrf": csrf, "request_id": request_id, "verdict": "safe"}
            assert client.post("/decide", data=form, follow_redirects=False).status_code == 303
        assert "Nothing waiting" in client.get("/").text
    finally:
        service.close()
    assert committed(settings) == len(values)  # past the bad ones: they are not read again


def test_a_feed_that_stopped_makes_health_fail(
    make_settings: Callable[..., Any],
    kafka_bootstrap: str,
    unique: Callable[[str], str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = review_settings(make_settings, kafka_bootstrap, unique, [tmp_path])
    send_raw(
        kafka_bootstrap,
        settings.kafka.review_topic,
        [encode_result(review_result("r1", "/srv/1.jpg"))],
    )
    service = ReviewService.build(settings)

    def broken(*_args: object, **_kwargs: object) -> int:
        raise sqlite3.OperationalError("disk I/O error")  # the store itself failing

    monkeypatch.setattr(service.store, "add", broken)
    client = TestClient(service.app())
    assert client.get("/health").status_code == 200
    service.feed.start()
    try:
        wait_for(lambda: not service.feed.alive, what="the feed to stop")
        health = client.get("/health")
        assert health.status_code == 503
        assert "review feed stopped" in health.text
    finally:
        service.close()


def test_an_item_the_store_refuses_is_passed_not_fatal(
    make_settings: Callable[..., Any],
    kafka_bootstrap: str,
    unique: Callable[[str], str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Defence in depth: an item that passed the schema but that SQLite cannot bind."""
    from review import kafka as review_kafka

    settings = review_settings(make_settings, kafka_bootstrap, unique, [tmp_path])
    ids = ["r1", "unbindable", "r2"]
    send_raw(
        kafka_bootstrap,
        settings.kafka.review_topic,
        [encode_result(review_result(i, f"/srv/{i}.jpg")) for i in ids],
    )
    real = review_kafka.item_from_message

    def inject(message: Any) -> Any:
        item = real(message)
        if item.request_id == "unbindable":
            return item.__class__(**{**item.__dict__, "model_version": ["2"]})
        return item

    monkeypatch.setattr(review_kafka, "item_from_message", inject)
    service = ReviewService.build(settings)
    service.feed.start()
    try:
        wait_for(lambda: service.feed.skipped == 1, what="the unbindable item skipped")
        wait_for(lambda: service.store.waiting() == 2, what="r1 and r2")
        assert service.feed.alive
        assert service.store.get("unbindable") is None
    finally:
        service.close()
    assert committed(settings) == 0  # r1 and r2 wait: nothing committed past them yet
