"""A hostile corpus against one consumer on the real broker: nothing stops the good messages.

The corpus is generated here (`tests.serving_support`), one entry per class the consumer once
crashed on, stalled on or misjudged. One consumer serves it interleaved with good requests; each
class then has its own test on the shared outcome: the typed reason of its dead letter, and that
every good request still got its result. The consumer's resident memory is sampled throughout.
"""

from __future__ import annotations

import base64
import io
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import Producer
from PIL import Image

from serving.headers import (
    H_DETAIL,
    H_ORIGINAL_SIZE,
    H_REASON,
    H_REQUEST_ID,
    H_TRUNCATED,
    headers_dict,
)
from serving.producer import RequestProducer
from serving.schema import encode_request
from tests.kafka_support import LoopThread, has_ids, read_topic, results_by_id
from tests.serving_support import (
    BLUE,
    RED,
    broken_huffman_jpeg,
    jpeg_scan_bomb,
    local_stage,
    wide_png,
    write_image,
    ztxt_bomb,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

DECODE_TIMEOUT_S = 2.0


def _request(request_id: str, **fields: object) -> bytes:
    return json.dumps({"v": 1, "id": request_id, **fields}, separators=(",", ":")).encode()


def _inline(request_id: str, data: bytes) -> bytes:
    return encode_request(request_id, image_b64=base64.b64encode(data).decode())


def _encoded(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), RED).save(buffer, fmt)
    return buffer.getvalue()


HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(200)
# Headers a request sends along; those named like the dead letter's own must not reach it.
FORGED = [(H_TRUNCATED, b"1"), (H_REQUEST_ID, b"victim"), (H_REASON, b"corrupt")]
HEADERS: dict[str, list[tuple[str, bytes]]] = {"forged_headers": FORGED}


def hostile_corpus(root: Path) -> dict[str, tuple[bytes | None, str]]:
    """class -> (message value, expected dead-letter reason)."""
    (root / "wide.png").write_bytes(wide_png(100_000, 1))
    (root / "scan-bomb.jpg").write_bytes(jpeg_scan_bomb())
    path = str(root / "wide.png")
    return {
        "giant_int": (
            b'{"v":1,"id":"giant_int","path":"/a.jpg","sent_at":' + b"9" * 5000 + b"}",
            "bad_schema",
        ),
        "lone_surrogate": (b'{"v":1,"id":"a\\ud800","path":"/a.jpg"}', "bad_schema"),
        "deep_5000": (b"[" * 5000 + b"]" * 5000, "bad_schema"),
        "deep_150000": (b'{"a":' * 150_000 + b"1" + b"}" * 150_000, "bad_schema"),
        "id_1mb": (_request("x" * 1_000_000, path="/a.jpg"), "bad_schema"),
        "duplicate_id": (b'{"v":1,"id":"a","id":"b","path":"/a.jpg"}', "bad_schema"),
        "duplicate_v": (b'{"v":1,"v":1,"id":"duplicate_v","path":"/a.jpg"}', "bad_schema"),
        "empty_inline": (_request("empty_inline", image_b64=""), "not_an_image"),
        "ztxt_bomb": (_inline("ztxt_bomb", ztxt_bomb()), "decompression_bomb"),
        "broken_huffman": (_inline("broken_huffman", broken_huffman_jpeg()), "corrupt"),
        "wide_png": (encode_request("wide_png", path=path), "decompression_bomb"),
        "scan_bomb": (
            encode_request("scan_bomb", path=str(root / "scan-bomb.jpg")),
            "too_large",
        ),
        "tombstone": (None, "bad_schema"),
        "heic": (_inline("heic", HEIC), "unsupported_format"),
        "avif": (_inline("avif", _encoded("AVIF")), "unsupported_format"),
        "mime_base64": (
            _request("mime_base64", image_b64=base64.encodebytes(_encoded("JPEG")).decode()),
            "bad_schema",
        ),
        "forged_headers": (b"not json", "bad_schema"),
        # A string that never closes, made of escaped quotes: the scan for nesting took time
        # quadratic in its length (40 kB: 41 s; this one: hours) inside the consumer process.
        "unterminated_escapes": (b'{"v":1,"id":"a","path":"' + b'\\"' * 450_000, "bad_schema"),
    }


class RssSampler(threading.Thread):
    """Samples this process's resident memory (the consumer runs in a thread here)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[int] = []
        self.stop = threading.Event()

    def run(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while not self.stop.wait(0.1):
            self.samples.append(int(Path("/proc/self/statm").read_text().split()[1]) * page)


@dataclass
class Served:
    """What the consumer made of the corpus."""

    reasons: dict[str, str]
    dead: dict[str, object]
    results: dict[str, list[object]]
    expected: dict[str, str]
    peak_rss: int
    baseline_rss: int
    took: float


@pytest.fixture(scope="module")
def served(
    kafka_bootstrap: str,
    tmp_path_factory: pytest.TempPathFactory,
    kafka_topics_module: Callable[..., str],
) -> Served:
    kinds = ("requests", "results", "review", "dead_letter")
    stage = local_stage(
        kafka_bootstrap, tmp_path_factory.mktemp("hostile"),
        f"serving.decode_timeout_s={DECODE_TIMEOUT_S}", "serving.decode_workers=2",
        topics={kind: kafka_topics_module(kind, partitions=2) for kind in kinds},
    )  # fmt: skip
    root, topics, settings = stage.root, stage.topics, stage.settings
    corpus = hostile_corpus(root)
    producer = RequestProducer(settings)
    raw = Producer({"bootstrap.servers": kafka_bootstrap, "message.max.bytes": 2_000_000})
    expected: dict[str, str] = {}
    for index, (key, (value, _reason)) in enumerate(corpus.items()):
        colour, label = (RED, "harmful") if index % 2 else (BLUE, "safe")
        expected[producer.send_path(write_image(root / f"good-{index}.jpg", colour))] = label
        raw.produce(topics["requests"], value=value, key=key.encode(), headers=HEADERS.get(key))
        raw.poll(0)
    expected[producer.send_bytes(write_image(root / "last.png", RED, "PNG").read_bytes())] = (
        "harmful"
    )
    assert raw.flush(30) == 0
    assert not producer.flush(30).failed
    sampler = RssSampler()
    sampler.start()
    time.sleep(0.3)
    started = time.monotonic()
    with LoopThread(stage.consumer()):
        results = read_topic(
            kafka_bootstrap, topics["results"], until=has_ids(set(expected)), timeout=180
        )
        dead = read_topic(
            kafka_bootstrap, topics["dead_letter"],
            until=lambda ms: {m.key().decode() for m in ms} >= set(corpus), timeout=120,
        )  # fmt: skip
        took = time.monotonic() - started
    sampler.stop.set()
    sampler.join(5)
    by_key = {m.key().decode(): m for m in dead}
    reasons = {key: headers_dict(m.headers())[H_REASON] for key, m in by_key.items()}
    return Served(
        reasons, by_key, results_by_id(results), expected,
        max(sampler.samples), sampler.samples[0], took,
    )  # fmt: skip


@pytest.fixture(scope="module")
def kafka_topics_module(kafka_bootstrap: str) -> Callable[..., str]:
    from serving.topics import ensure_topics

    def make(prefix: str, partitions: int = 1) -> str:
        name = f"{prefix}-{os.urandom(6).hex()}"
        ensure_topics(kafka_bootstrap, {name: partitions})
        return name

    return make


CLASSES = [
    "giant_int",
    "lone_surrogate",
    "deep_5000",
    "deep_150000",
    "id_1mb",
    "duplicate_id",
    "duplicate_v",
    "empty_inline",
    "ztxt_bomb",
    "broken_huffman",
    "wide_png",
    "scan_bomb",
    "tombstone",
    "heic",
    "avif",
    "mime_base64",
    "forged_headers",
    "unterminated_escapes",
]


@pytest.mark.parametrize("kind", CLASSES)
def test_hostile_message_gets_its_reason(served: Served, kind: str, tmp_path: Path) -> None:
    expected = hostile_corpus(tmp_path)[kind][1]
    assert served.reasons.get(kind) == expected, served.reasons


def test_every_good_message_is_answered_right(served: Served) -> None:
    assert {i: served.results[i][-1].label for i in served.expected} == served.expected
    assert set(served.results) == set(served.expected), "a hostile message got a result"


def test_a_1mb_message_is_dead_lettered_as_a_cut_copy(served: Served) -> None:
    headers = headers_dict(served.dead["id_1mb"].headers())  # type: ignore[attr-defined]
    assert headers[H_TRUNCATED] == "1"
    assert int(headers[H_ORIGINAL_SIZE]) > 1_000_000
    assert len(served.dead["id_1mb"].value()) == 65_536  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("kind", "says"),
    [
        ("tombstone", "no value (a tombstone)"),
        ("heic", "HEIC is not an accepted image format"),
        ("avif", "AVIF is not an accepted image format"),
        ("mime_base64", "line breaks or spaces"),
    ],
)
def test_the_detail_says_what_was_wrong(served: Served, kind: str, says: str) -> None:
    detail = headers_dict(served.dead[kind].headers())[H_DETAIL]  # type: ignore[attr-defined]
    assert says in detail


def test_forged_dead_letter_headers_are_not_copied(served: Served) -> None:
    headers = served.dead["forged_headers"].headers()  # type: ignore[attr-defined]
    names = [name for name, _value in headers]
    assert H_TRUNCATED not in names  # it is not a cut copy, so it can be replayed
    assert H_REQUEST_ID not in names  # "not json" has no readable id
    assert headers_dict(headers)[H_REASON] == "bad_schema"


def test_memory_and_time_stay_bounded(served: Served) -> None:
    # The 100000x1 PNG once added ~620 MB to the consumer; the scan bomb cost ~21 s of CPU.
    grew = served.peak_rss - served.baseline_rss
    print(f"consumer RSS: {served.baseline_rss / 2**20:.0f} MB at start, peak "
          f"{served.peak_rss / 2**20:.0f} MB; corpus served in {served.took:.1f}s")  # fmt: skip
    # What the consumer adds to this test process (which also holds torch and MLflow); decoding
    # happens in worker processes, whose address space is capped.
    assert grew < 150 * 2**20
