"""The review page against the real broker: queue, claims, decisions on the topic, refusals."""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from harmscan.decisions import decode_decision
from review.service import ReviewService
from serving.headers import H_INLINE_REQUEST
from serving.schema import encode_request
from tests.kafka_support import read_topic
from tests.review_support import TOKEN, review_result, review_settings, send_review, wait_for
from tests.serving_support import BLUE, RED, image_bytes, write_image

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def topic_config(bootstrap: str, topic: str) -> dict[str, str]:
    from confluent_kafka.admin import AdminClient, ConfigResource

    admin = AdminClient({"bootstrap.servers": bootstrap})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    configs = admin.describe_configs([resource])[resource].result(30)
    return {name: entry.value for name, entry in configs.items()}


def login(client: TestClient, name: str, secret: str = TOKEN) -> int:
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    response = client.post(
        "/login", data={"csrf": csrf, "name": name, "secret": secret}, follow_redirects=False
    )
    return response.status_code


def shown(client: TestClient) -> tuple[str | None, str]:
    """The request id on the reviewer's page and the page's CSRF token."""
    page = client.get("/")
    assert page.status_code == 200
    match = re.search(r'name="request_id" value="([^"]+)"', page.text)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    return (match.group(1) if match else None), csrf


def test_review_round_trip(
    make_settings: Callable[..., object],
    kafka_bootstrap: str,
    unique: Callable[[str], str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root, outside = tmp_path / "images", tmp_path / "outside"
    red, blue = write_image(root / "red.jpg", RED), write_image(root / "blue.jpg", BLUE)
    secret = write_image(outside / "secret.jpg", RED)
    settings = review_settings(make_settings, kafka_bootstrap, unique, [root])  # type: ignore[arg-type]
    b64 = base64.b64encode(image_bytes(BLUE, "PNG")).decode()
    results = [
        review_result("r-red", str(red), age_s=300),
        review_result("r-blue", str(blue), version="2", age_s=200),
        review_result("r-inline", "inline", age_s=100),
        review_result("r-secret", str(secret), age_s=50),
    ]
    send_review(
        kafka_bootstrap,
        settings.kafka.review_topic,
        results,
        {"r-inline": [(H_INLINE_REQUEST, encode_request("r-inline", image_b64=b64))]},
    )
    opened: list[str] = []
    real_open = os.open
    monkeypatch.setattr(
        os, "open", lambda p, *a, **k: (opened.append(str(p)), real_open(p, *a, **k))[1]
    )

    service = ReviewService.build(settings)
    service.feed.start()
    try:
        wait_for(lambda: service.store.waiting() == 4, what="4 items in the queue")
        ana, bob = TestClient(service.app()), TestClient(service.app())
        assert ana.get("/", follow_redirects=False).status_code == 303  # not logged in
        assert ana.get("/image/r-red").status_code == 401
        assert login(ana, "ana", "wrong") == 401
        assert login(ana, "ana") == 303
        assert login(bob, "bob") == 303
        first, csrf = shown(ana)
        assert first == "r-red"  # oldest first
        assert "4 waiting" in ana.get("/").text
        second, _ = shown(bob)
        assert second == "r-blue"  # never the item ana holds
        red = ana.get("/image/r-red")
        assert red.headers["content-type"] == "image/jpeg"
        assert red.headers["cache-control"] == "no-store"  # an image under review may be harmful
        assert ana.get("/image/r-inline").headers["content-type"] == "image/png"
        refused = ana.get("/image/r-secret")
        assert refused.status_code == 403
        assert str(secret) not in opened
        # No CSRF token, no decision.
        no_token = ana.post(
            "/decide", data={"request_id": first, "verdict": "harmful"}, follow_redirects=False
        )
        assert no_token.headers["location"] == "/?notice=stale"
        done = ana.post(
            "/decide",
            data={"csrf": csrf, "request_id": first, "verdict": "harmful"},
            follow_redirects=False,
        )
        assert done.status_code == 303
        # ana's next item is r-inline; bob may not decide it while ana holds it.
        assert shown(ana)[0] == "r-inline"
        _, bob_csrf = shown(bob)
        stolen = bob.post(
            "/decide", data={"csrf": bob_csrf, "request_id": "r-inline", "verdict": "safe"}
        )
        assert "claimed by another reviewer" in stolen.text
        for client, request_id, verdict in ((bob, "r-blue", "harmful"), (ana, "r-inline", "safe")):
            _, token = shown(client)
            form = {"csrf": token, "request_id": request_id, "verdict": verdict}
            assert client.post("/decide", data=form, follow_redirects=False).status_code == 303
        assert shown(ana)[0] == "r-secret"
        filtered = ana.get("/?model_version=2").text
        assert "0 waiting" in filtered
        assert "Nothing waiting" in filtered
        messages = read_topic(
            kafka_bootstrap, settings.kafka.decisions_topic, until=lambda m: len(m) >= 3
        )
        decisions = {d.id: d for d in (decode_decision(m.value()) for m in messages)}  # type: ignore[attr-defined]
        assert set(decisions) == {"r-red", "r-blue", "r-inline"}
        assert (decisions["r-red"].decision, decisions["r-red"].reviewer) == ("harmful", "ana")
        assert decisions["r-red"].model_version == "1"
        assert (decisions["r-blue"].reviewer, decisions["r-blue"].model_version) == ("bob", "2")
        keys = {m.key().decode() for m in messages}  # type: ignore[attr-defined]
        assert keys == set(decisions)  # keyed by request id
        assert topic_config(kafka_bootstrap, settings.kafka.decisions_topic)["cleanup.policy"] == (
            "compact"
        )
        metrics = ana.get("/metrics").text
        assert 'harmscan_review_waiting{model_version="1"} 1.0' in metrics
        assert 'harmscan_review_agreement_ratio{model_version="1"} 0.5' in metrics
        assert 'harmscan_review_overturn_ratio{model_label="safe",model_version="2"} 1.0' in metrics
    finally:
        service.close()


def test_undecided_items_come_back_after_a_restart(
    make_settings: Callable[..., object],
    kafka_bootstrap: str,
    unique: Callable[[str], str],
    tmp_path: Path,
) -> None:
    root = tmp_path / "images"
    path = write_image(root / "red.jpg", RED)
    settings = review_settings(make_settings, kafka_bootstrap, unique, [root])  # type: ignore[arg-type]
    send_review(
        kafka_bootstrap,
        settings.kafka.review_topic,
        [review_result(f"r{i}", str(path)) for i in range(3)],
    )
    service = ReviewService.build(settings)
    service.feed.start()
    wait_for(lambda: service.store.waiting() == 3, what="3 items")
    client = TestClient(service.app())
    assert login(client, "ana") == 303
    request_id, csrf = shown(client)
    client.post("/decide", data={"csrf": csrf, "request_id": request_id, "verdict": "safe"})
    service.close()
    # The store is lost: the feed reads again from the committed position.
    (settings.paths.services / "review" / "queue.sqlite").unlink()
    again = ReviewService.build(settings)
    again.feed.start()
    try:
        wait_for(lambda: again.store.waiting() == 2, what="the 2 undecided items again")
        assert again.store.get(str(request_id)) is None
    finally:
        again.close()
