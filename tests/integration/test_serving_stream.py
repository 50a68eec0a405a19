"""The consumer against a real Kafka broker and MLflow registry: labels, review, dead letters.

One consumer serves a stream where good requests (paths and inline bytes) are interleaved with a
corpus of hostile ones. Every good request gets a result with the right label, the uncertain one
is also sent for review, every bad one lands in the dead-letter topic with its typed reason and its
original payload, forbidden paths are never opened, and every offset ends up committed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer

from serving.headers import H_ORIGINAL_SHA256, H_ORIGINAL_SIZE, H_REASON, H_TRUNCATED, headers_dict
from serving.producer import RequestProducer
from serving.schema import encode_request
from stack.process import free_port
from tests.kafka_support import ConsumerThread, committed_to_end, has_ids, read_topic, results_by_id
from tests.serving_support import (
    BLUE,
    PURPLE,
    RED,
    image_bytes,
    png_bomb,
    register_model,
    serving_overrides,
    write_image,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

MAX_BYTES = 100_000


@pytest.fixture(scope="module")
def registered(mlflow_server: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A model whose label order is reversed, so the harmful index must come from its spec."""
    name = f"stream-{os.urandom(4).hex()}"
    register_model(
        mlflow_server, name, tmp_path_factory.mktemp("stream-model"), labels=("harmful", "safe")
    )
    return mlflow_server, name


@pytest.fixture
def topics(kafka_topics: Callable[..., str]) -> dict[str, str]:
    return {
        kind: kafka_topics(kind, partitions=2)
        for kind in ("requests", "results", "review", "dead_letter")
    }


class FifoWatch:
    """A FIFO whose opening by anyone for reading is noticed (a writer blocks until then)."""

    def __init__(self, path: Path) -> None:
        os.mkfifo(path)
        self.path = path
        self.opened = threading.Event()
        self.done = False
        self.thread = threading.Thread(target=self._wait, daemon=True)
        self.thread.start()

    def _wait(self) -> None:
        fd = os.open(self.path, os.O_WRONLY)  # blocks until some reader opens the FIFO
        if not self.done:
            self.opened.set()
        os.close(fd)

    def close(self) -> None:
        self.done = True
        fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)  # release the waiting writer
        self.thread.join(5)
        os.close(fd)


@pytest.fixture
def outside_fifo(tmp_path: Path) -> Iterator[FifoWatch]:
    (tmp_path / "outside").mkdir()
    watch = FifoWatch(tmp_path / "outside" / "secret.jpg")
    yield watch
    watch.close()


def bad_corpus(root: Path, outside_fifo: Path) -> dict[str, tuple[bytes, str]]:
    """key -> (payload, expected dead-letter reason)."""
    (root / "notimage.jpg").write_text("this is text, not a picture")
    (root / "eps.jpg").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    (root / "cut.jpg").write_bytes(image_bytes(RED)[:200])
    (root / "huge.jpg").write_bytes(b"\xff\xd8\xff" + os.urandom(MAX_BYTES))
    (root / "bomb.png").write_bytes(png_bomb())
    (root / "link.jpg").symlink_to(outside_fifo)
    os.mkfifo(root / "pipe.jpg")
    corpus = {
        "not_an_image": root / "notimage.jpg",
        "unsupported_format": root / "eps.jpg",
        "truncated": root / "cut.jpg",
        "too_large": root / "huge.jpg",
        "decompression_bomb": root / "bomb.png",
        "not_found": root / "missing.jpg",
        "not_a_file": root / "pipe.jpg",
        "forbidden_path": outside_fifo,
        "forbidden_path-symlink": root / "link.jpg",
        "forbidden_path-dotdot": root / ".." / "outside" / "secret.jpg",
        "forbidden_path-etc": Path("/etc/passwd"),
    }
    payloads = {
        f"bad-{key}": (encode_request(f"bad-{key}", path=str(path)), key.split("-")[0])
        for key, path in corpus.items()
    }
    payloads["bad-garbage"] = (b"\x00\xffnot json at all", "bad_schema")
    payloads["bad-two-sources"] = (
        json.dumps({"v": 1, "id": "bad-two-sources", "path": "/a", "s3": "s3://b/k"}).encode(),
        "bad_schema",
    )
    payloads["bad-inline-huge"] = (
        encode_request(
            "bad-inline-huge", image_b64=base64.b64encode(os.urandom(MAX_BYTES + 10)).decode()
        ),
        "too_large",
    )
    payloads["bad-s3-bucket"] = (
        encode_request("bad-s3-bucket", s3="s3://evil/x.jpg"),
        "forbidden_path",
    )
    return payloads


def test_stream_labels_review_and_dead_letters(
    registered: tuple[str, str],
    topics: dict[str, str],
    kafka_bootstrap: str,
    make_settings: Callable[..., object],
    tmp_path: Path,
    outside_fifo: FifoWatch,
) -> None:
    tracking_uri, name = registered
    root = tmp_path / "images"
    root.mkdir()
    metrics_port = free_port()
    settings = make_settings(
        *serving_overrides(
            bootstrap=kafka_bootstrap, tracking_uri=tracking_uri, model_name=name,
            topics=topics, group=f"g-{os.urandom(4).hex()}", roots=[root],
        ),
        f"serving.max_file_bytes={MAX_BYTES}",
        f"serving.max_inline_bytes={MAX_BYTES}",
        f"serving.metrics_port={metrics_port}",
    )  # fmt: skip
    expected: dict[str, str] = {}
    producer = RequestProducer(settings)
    raw = Producer({"bootstrap.servers": kafka_bootstrap})
    bad = bad_corpus(root, outside_fifo.path)
    bad_items = iter(bad.items())
    for i in range(6):
        for colour, label in ((RED, "harmful"), (BLUE, "safe")):
            path = write_image(root / f"{label}-{i}.jpg", colour)
            expected[producer.send_path(path)] = label
        key, (payload, _reason) = next(bad_items, (None, (None, None)))
        if key:
            raw.produce(topics["requests"], value=payload, key=key.encode())
    for key, (payload, _reason) in bad_items:
        raw.produce(topics["requests"], value=payload, key=key.encode())
    review_id = producer.send_path(write_image(root / "purple.png", PURPLE, "PNG"))
    expected[producer.send_bytes(image_bytes(RED, "PNG"))] = "harmful"
    expected[producer.send_bytes(image_bytes(BLUE, "WEBP"))] = "safe"
    assert not producer.flush().failed
    assert raw.flush(30) == 0

    with ConsumerThread(settings):
        results = read_topic(
            kafka_bootstrap, topics["results"], until=has_ids({*expected, review_id}), timeout=90
        )
        dead = read_topic(
            kafka_bootstrap, topics["dead_letter"],
            until=lambda ms: {m.key().decode() for m in ms} >= set(bad), timeout=60,
        )  # fmt: skip
        review = read_topic(
            kafka_bootstrap, topics["review"], until=has_ids({review_id}), timeout=30
        )
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics").read()
        committed_ok = committed_to_end(
            kafka_bootstrap, settings.kafka.group_id, topics["requests"]
        )

    grouped = results_by_id(results)
    assert {i: grouped[i][-1].label for i in expected} == expected
    assert grouped[review_id][-1].review
    assert review_id in {m.key().decode() for m in review}
    assert set(grouped) == {*expected, review_id}, "a bad request got a result"
    assert {r.model_version for rs in grouped.values() for r in rs} == {"1"}

    reasons = {m.key().decode(): headers_dict(m.headers())[H_REASON] for m in dead}
    assert reasons == {key: reason for key, (_payload, reason) in bad.items()}
    originals = {m.key().decode(): m.value() for m in dead}
    assert originals == {key: payload[:65_536] for key, (payload, _reason) in bad.items()}
    for message in dead:  # a cut copy still names the whole original
        headers = headers_dict(message.headers())
        payload = bad[message.key().decode()][0]
        assert headers[H_ORIGINAL_SHA256] == hashlib.sha256(payload).hexdigest()
        assert headers[H_ORIGINAL_SIZE] == str(len(payload))
    assert headers_dict(dead_by_key(dead, "bad-inline-huge").headers())[H_TRUNCATED] == "1"

    assert not outside_fifo.opened.is_set(), "a forbidden path was opened"
    assert committed_ok, "not every request offset was committed"
    text = metrics.decode()
    assert 'harmscan_dead_lettered_total{reason="truncated"} 1.0' in text
    assert "harmscan_consumed_total" in text
    for stage in ("decode_wait", "infer", "deliver", "commit"):
        assert f'harmscan_stage_seconds_count{{stage="{stage}"}}' in text


def dead_by_key(messages: list, key: str) -> object:
    return next(m for m in messages if m.key().decode() == key)
