"""A burst of 1,000 bad requests, then good ones, against one consumer on the real broker.

Every bad record (of ten kinds, with null keys, duplicate and non-UTF-8 headers, a header naming
a content type the consumer does not read) must get exactly one dead letter with its typed reason
and a detail naming the fault, nothing behind the burst may stall: every good request after it
gets its result and the group's offsets reach the end of the topic.
"""

from __future__ import annotations

import base64
import io
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import Message, Producer
from PIL import Image

from serving.headers import H_DETAIL, H_REASON, H_REQUEST_ID, headers_dict
from serving.producer import RequestProducer
from tests.kafka_support import LoopThread, committed_to_end, read_topic, results_by_id
from tests.serving_support import BLUE, RED, local_stage, write_image

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

BURST = 1000
GOOD = 24


def _request(request_id: object, **fields: object) -> bytes:
    return json.dumps({"v": 1, "id": request_id, **fields}, separators=(",", ":")).encode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), RED).save(buffer, "JPEG")
    return buffer.getvalue()


URL_SAFE = b"\xfb\xff" * 9  # base64 of it holds "-" and "_" in the URL-safe alphabet
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(200)


def bad_kinds(root: Path) -> dict[str, tuple[Callable[[int], bytes | None], str, str]]:
    """kind -> (value for the i-th record, expected reason, words the detail must hold)."""
    return {
        "not_json": (lambda i: b"not json %d" % i, "bad_schema", "not JSON"),
        "tombstone": (lambda i: None, "bad_schema", "tombstone"),
        "int_id": (lambda i: _request(i, path="/a.jpg"), "bad_schema", "got int"),
        "reply_to": (
            lambda i: _request(f"b{i}", path="/a.jpg", reply_to=7), "bad_schema", "reply_to"
        ),
        "text": (lambda i: _request(f"b{i}", image_b64=_b64(b"hello %d" % i)), "not_an_image",
                 "no accepted image format"),
        "cut_jpeg": (lambda i: _request(f"b{i}", image_b64=_b64(_jpeg()[:300])), "truncated",
                     "send the whole file"),
        "heic": (lambda i: _request(f"b{i}", image_b64=_b64(HEIC)), "unsupported_format",
                 "HEIC"),
        "outside_root": (lambda i: _request(f"b{i}", path="/etc/passwd"), "forbidden_path",
                         "allowed"),
        "missing": (lambda i: _request(f"b{i}", path=str(root / f"missing-{i}.jpg")),
                    "not_found", "missing"),
        "url_safe_b64": (
            lambda i: _request(f"b{i}", image_b64=base64.urlsafe_b64encode(URL_SAFE).decode()),
            "bad_schema", "URL-safe alphabet"),
    }  # fmt: skip


HEADERS: list[list[tuple[str, bytes | None]]] = [
    [],
    [("content-type", b"image/heic"), ("content-type", b"application/json")],
    [("trace", b"\xff\xfe\x00bad"), ("trace", None)],
    [("harmscan-reason", b"corrupt")],
]


@dataclass
class Served:
    dead: list[Message]
    expected_dead: Counter[tuple[str, str]]
    results: dict[str, list[object]]
    expected: dict[str, str]
    committed: bool
    took: float


@pytest.fixture(scope="module")
def served(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Served:
    stage = local_stage(kafka_bootstrap, tmp_path_factory.mktemp("burst"),
                        "serving.decode_workers=1")  # fmt: skip
    root, topics, settings = stage.root, stage.topics, stage.settings
    kinds = bad_kinds(root)
    names = sorted(kinds)
    raw = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 20})
    expected_dead: Counter[tuple[str, str]] = Counter()
    for index in range(BURST):
        kind = names[index % len(names)]
        make, reason, _says = kinds[kind]
        key = None if index % 7 == 0 else f"{kind}-{index}".encode()
        raw.produce(topics["requests"], value=make(index), key=key,
                    headers=HEADERS[index % len(HEADERS)], partition=index % 2)  # fmt: skip
        raw.poll(0)
        expected_dead[(kind, reason)] += 1
    assert raw.flush(60) == 0
    producer = RequestProducer(settings)
    expected: dict[str, str] = {}
    for index in range(GOOD):
        colour, label = (RED, "harmful") if index % 2 else (BLUE, "safe")
        path = write_image(root / f"good-{index}.jpg", colour)
        expected[producer.send_path(path)] = label
    assert not producer.flush(30).failed

    started = time.monotonic()
    with LoopThread(stage.consumer()):
        results = read_topic(
            kafka_bootstrap, topics["results"],
            until=lambda ms: {m.key().decode() for m in ms} >= set(expected), timeout=300,
        )  # fmt: skip
        dead = read_topic(kafka_bootstrap, topics["dead_letter"],
                          until=lambda ms: len(ms) >= BURST, timeout=300, idle=10)  # fmt: skip
        committed = committed_to_end(kafka_bootstrap, stage.group, topics["requests"], timeout=60)
        took = time.monotonic() - started
    return Served(dead, expected_dead, results_by_id(results), expected, committed, took)


def test_every_good_request_behind_the_burst_is_answered(served: Served) -> None:
    assert {i: served.results[i][-1].label for i in served.expected if i in served.results} == (
        served.expected
    )
    print(f"1,000 bad and {GOOD} good requests served in {served.took:.1f}s")


def test_every_bad_record_has_exactly_one_dead_letter(served: Served) -> None:
    assert len(served.dead) == BURST


def test_each_dead_letter_has_its_reason_and_says_why(served: Served, tmp_path: Path) -> None:
    kinds = bad_kinds(tmp_path)
    got: Counter[tuple[str, str]] = Counter()
    wrong: list[tuple[str, str, str]] = []
    for message in served.dead:
        headers = headers_dict(message.headers())
        reason, detail = headers[H_REASON], headers.get(H_DETAIL, "")
        matching = [k for k, (_make, r, says) in kinds.items() if r == reason and says in detail]
        if len(matching) != 1:
            wrong.append((reason, detail[:120], (message.key() or b"")[:30].decode()))
            continue
        got[(matching[0], reason)] += 1
    assert not wrong[:10], wrong[:10]
    assert got == served.expected_dead


def test_forged_reason_headers_do_not_reach_the_dead_letter(served: Served) -> None:
    for message in served.dead:
        names = [name for name, _value in message.headers()]
        assert names.count(H_REASON) == 1
        assert names.count(H_REQUEST_ID) <= 1


def test_the_group_commits_past_the_burst(served: Served) -> None:
    assert served.committed
