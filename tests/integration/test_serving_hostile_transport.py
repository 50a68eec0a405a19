"""Hostile Kafka records, not only hostile JSON, against one consumer on the real broker.

Keys of 900 kB, thousands of headers, a header of 700 kB, tombstones carrying headers, empty
values, JSON edge cases (NaN, numbers as strings, look-alike field names, data: URLs), and record
batches that inflate: a gzip batch of ~60 kB holding a 60 MB request (librdkafka inflates gzip
without a limit) and zstd ones holding 150 MB and 40 MB (past serving.max_inflated_batch_bytes:
undecodable). Each
bad record must get a dead letter with its reason and what the README promises of the original
(its key cut to 256 bytes, its headers up to 16 KiB, its size and hash), the consumer must go on,
and every good request around them must be answered.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass

import pytest
from confluent_kafka import Message, Producer

from conf.settings import Settings
from serving.dlq import read_dead_letters, replay
from serving.headers import (
    H_DETAIL,
    H_ORIGINAL_SHA256,
    H_ORIGINAL_SIZE,
    H_REASON,
    H_REPLAY_OF,
    H_TRUNCATED,
    headers_dict,
)
from serving.producer import RequestProducer
from serving.topics import ensure_topics
from tests.kafka_support import LoopThread, has_ids, read_topic, results_by_id
from tests.serving_support import BLUE, RED, local_stage, write_image

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

GZIP_BOMB_BYTES = 60 * 2**20
ZSTD_BOMB_BYTES = 150 * 2**20
# Under librdkafka's own 100 MB buffer: inflated whole (and copied into Python) before the
# consumer capped it at serving.max_inflated_batch_bytes (32 MiB).
ZSTD_SMALL_BOMB_BYTES = 40 * 2**20
MANY_HEADERS = [(f"h{index}", b"") for index in range(5000)]
HUGE_KEY = b"huge_key" + b"k" * 900_000


def _request(request_id: str, **fields: object) -> bytes:
    return json.dumps({"v": 1, "id": request_id, **fields}, separators=(",", ":")).encode()


# key -> (value, headers, expected reason, words the detail must hold)
CORPUS: dict[bytes, tuple[bytes | None, list[tuple[str, bytes | None]], str, str]] = {
    HUGE_KEY: (b"not json", [], "bad_schema", "not JSON"),
    b"many_headers": (b"{}", MANY_HEADERS, "bad_schema", "schema version"),
    b"huge_header": (b"[]", [("big", b"x" * 700_000), ("after", b"1")], "bad_schema", "object"),
    b"tombstone": (None, [("trace", b"t-1"), ("nul", None)], "bad_schema", "tombstone"),
    b"empty": (b"", [("trace", b"t-2")], "bad_schema", "empty message"),
    b"nan": (b'{"v":1,"id":"nan","path":"/a.jpg","sent_at":NaN}', [], "bad_schema", "NaN"),
    b"v_string": (b'{"v":"1","id":"v_string","path":"/a.jpg"}', [], "bad_schema", "version"),
    b"fullwidth": (
        '{"v":1,"\uff49\uff44":"f","path":"/a.jpg"}'.encode(),
        [],
        "bad_schema",
        "unknown fields",
    ),
    b"data_url": (
        _request("data_url", image_b64="data:image/png;base64,iVBORw0KGgo="),
        [],
        "bad_schema",
        "data: URL",
    ),
    b"binary_header": (b"\xff\xfe{", [("bin", b"\xff\x00\xfe")], "bad_schema", "UTF-16"),
}


@dataclass
class Served:
    dead: list[Message]
    results: dict[str, list[object]]
    expected: dict[str, str]
    took: float
    alive: bool
    settings: Settings


def _produce_bomb(bootstrap: str, topic: str, codec: str, size: int, key: bytes) -> None:
    bomb = Producer({"bootstrap.servers": bootstrap, "compression.type": codec,
                     "message.max.bytes": 1_000_000_000})  # fmt: skip
    failed: list[object] = []
    value = b'{"v":1,"id":"' + key + b'","path":"' + b"a" * size + b'"}'
    bomb.produce(topic, value=value, key=key,
                 on_delivery=lambda err, _msg: failed.append(err) if err else None)  # fmt: skip
    del value
    assert bomb.flush(60) == 0
    assert not failed, failed


@pytest.fixture(scope="module")
def served(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Served:
    stage = local_stage(kafka_bootstrap, tmp_path_factory.mktemp("transport"),
                        "serving.decode_workers=1", partitions=1)  # fmt: skip
    root, topics, settings = stage.root, stage.topics, stage.settings
    producer = RequestProducer(settings)
    raw = Producer({"bootstrap.servers": kafka_bootstrap, "message.max.bytes": 2_000_000})
    expected: dict[str, str] = {}
    for index, (key, (value, headers, _reason, _says)) in enumerate(CORPUS.items()):
        colour, label = (RED, "harmful") if index % 2 else (BLUE, "safe")
        expected[producer.send_path(write_image(root / f"good-{index}.jpg", colour))] = label
        raw.produce(topics["requests"], value=value, key=key, headers=headers)
        assert raw.flush(30) == 0
    assert not producer.flush(30).failed
    _produce_bomb(kafka_bootstrap, topics["requests"], "gzip", GZIP_BOMB_BYTES, b"gzip_bomb")
    _produce_bomb(kafka_bootstrap, topics["requests"], "zstd", ZSTD_BOMB_BYTES, b"zstd_bomb")
    _produce_bomb(kafka_bootstrap, topics["requests"], "zstd", ZSTD_SMALL_BOMB_BYTES, b"zstd_40")
    expected[producer.send_path(write_image(root / "last.png", RED, "PNG"))] = "harmful"
    assert not producer.flush(30).failed

    started = time.monotonic()
    with LoopThread(stage.consumer()) as runner:
        results = read_topic(
            kafka_bootstrap, topics["results"], until=has_ids(set(expected)), timeout=180
        )
        dead = read_topic(kafka_bootstrap, topics["dead_letter"],
                          until=lambda ms: len(ms) >= len(CORPUS) + 3, timeout=120)  # fmt: skip
        took = time.monotonic() - started
        alive = runner.thread.is_alive()
    return Served(dead, results_by_id(results), expected, took, alive, settings)


def _dead_letter(served: Served, key: bytes) -> Message:
    found = [m for m in served.dead if (m.key() or b"") == key[:256]]
    assert len(found) == 1, [(m.key() or b"")[:20] for m in served.dead]
    return found[0]


def test_every_good_request_is_answered_and_the_consumer_goes_on(served: Served) -> None:
    assert served.alive
    assert {i: served.results[i][-1].label for i in served.expected} == served.expected


@pytest.mark.parametrize("key", list(CORPUS), ids=lambda k: k[:12].decode())
def test_each_bad_record_gets_its_reason(served: Served, key: bytes) -> None:
    value, _headers, reason, says = CORPUS[key]
    headers = headers_dict(_dead_letter(served, key).headers())
    assert headers[H_REASON] == reason
    assert says in headers[H_DETAIL]
    assert int(headers[H_ORIGINAL_SIZE]) == len(value or b"")


def test_a_tombstones_dead_letter_is_replayed_as_a_tombstone(
    served: Served, kafka_bootstrap: str
) -> None:
    letters = read_dead_letters(served.settings)
    by_key = {letter.key: letter for letter in letters}
    assert by_key[b"tombstone"].value is None  # not an empty value: that is another request
    assert by_key[b"empty"].value == b""
    # replayed to a topic of their own (the corpus's requests topic holds undecodable batches)
    fresh = f"replayed-{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka_bootstrap, {fresh: 1}, replication=1)
    kafka = served.settings.kafka.model_copy(update={"requests_topic": fresh})
    report = replay(served.settings.model_copy(update={"kafka": kafka}),
                    [by_key[b"tombstone"], by_key[b"empty"]])  # fmt: skip
    assert len(report.replayed) == 2
    requests = read_topic(kafka_bootstrap, fresh, until=lambda ms: len(ms) >= 2, timeout=30)
    assert {m.key(): m.value() for m in requests} == {b"tombstone": None, b"empty": b""}
    assert all(H_REPLAY_OF in dict(m.headers() or []) for m in requests)


def test_a_huge_key_is_cut_to_256_bytes(served: Served) -> None:
    assert len(_dead_letter(served, HUGE_KEY).key()) == 256


def test_the_original_headers_travel_with_the_dead_letter(served: Served) -> None:
    assert _dead_letter(served, b"tombstone").value() is None  # a tombstone's is a tombstone
    assert _dead_letter(served, b"empty").value() == b""
    tombstone = _dead_letter(served, b"tombstone").headers()
    assert ("trace", b"t-1") in tombstone
    assert [name for name, _value in tombstone].count("nul") == 1
    assert ("trace", b"t-2") in _dead_letter(served, b"empty").headers()
    assert ("bin", b"\xff\x00\xfe") in _dead_letter(served, b"binary_header").headers()


def test_headers_past_the_copy_limit_are_counted_not_silently_lost(served: Served) -> None:
    many = _dead_letter(served, b"many_headers").headers()
    copied = [name for name, _value in many if name.startswith("h") and name[1:].isdigit()]
    assert 0 < len(copied) < len(MANY_HEADERS)
    dropped = headers_dict(many)["harmscan-headers-dropped"]
    assert int(dropped) == len(MANY_HEADERS) - len(copied)
    huge = headers_dict(_dead_letter(served, b"huge_header").headers())
    assert "big" not in huge
    assert huge["after"] == "1"  # a later header that fits is still copied
    assert huge["harmscan-headers-dropped"] == "1"


def test_a_gzip_bomb_is_a_cut_dead_letter(served: Served) -> None:
    headers = headers_dict(_dead_letter(served, b"gzip_bomb").headers())
    assert headers[H_REASON] == "bad_schema"
    assert int(headers[H_ORIGINAL_SIZE]) > GZIP_BOMB_BYTES
    assert headers[H_TRUNCATED] == "1"
    assert len(headers[H_ORIGINAL_SHA256]) == 64


def test_zstd_batches_past_the_inflated_cap_are_stepped_over(served: Served) -> None:
    corrupt = [headers_dict(m.headers()) for m in served.dead if m.key() is None]
    assert [h[H_REASON] for h in corrupt] == ["corrupt", "corrupt"]
    assert all("cannot decompress" in h[H_DETAIL] for h in corrupt)
    assert "serving.max_inflated_batch_bytes=33554432" in corrupt[1][H_DETAIL]


def test_it_took_seconds_not_minutes(served: Served) -> None:
    print(f"transport corpus served in {served.took:.1f}s")
    assert served.took < 120
