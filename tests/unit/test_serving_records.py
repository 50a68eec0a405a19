"""Dead-letter records always fit, and the poison guard's journal (pure, no broker)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from conf.loader import load_settings
from harmscan.imagepolicy import REASONS
from serving.classifier import Rejection
from serving.headers import (
    H_ORIGINAL_SHA256,
    H_ORIGINAL_SIZE,
    H_REASON,
    H_REQUEST_ID,
    H_TRUNCATED,
    REJECT_REASONS,
    headers_dict,
)
from serving.poison import SLOT, PoisonGuard
from serving.records import H_HEADERS_DROPPED, MAX_COPIED_HEADER_BYTES, dead_letter


class Consumed:
    """A consumed message as the loop sees it (topic, partition, offset, key, value, headers)."""

    def __init__(self, offset: int, value: bytes | None = b"x", key: bytes | None = b"k",
                 headers: list | None = None, partition: int = 0) -> None:  # fmt: skip
        self._offset, self._value, self._key = offset, value, key
        self._headers, self._partition = headers, partition

    def topic(self) -> str:
        return "requests"

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> list | None:
        return self._headers


def test_a_dead_letter_of_a_huge_message_is_a_bounded_copy(tmp_path: Path) -> None:
    settings = load_settings("ci", [f"paths.root={tmp_path}"], env={})
    value = b"v" * 3_000_000
    headers = [(f"h{i}", b"y" * 1000) for i in range(100)]
    message = Consumed(5, value, key=b"k" * 1_000_000, headers=headers)
    record = dead_letter(message, Rejection("bad_schema", "d" * 10_000, None), settings)  # type: ignore[arg-type]
    size = len(record.value or b"") + len(record.key or b"")
    size += sum(len(k) + len(v) for k, v in record.headers)
    assert size < settings.serving.dead_letter_max_payload_bytes + MAX_COPIED_HEADER_BYTES + 4096
    info = headers_dict(record.headers)
    assert info[H_ORIGINAL_SIZE] == "3000000"
    assert info[H_ORIGINAL_SHA256] == hashlib.sha256(value).hexdigest()
    assert info[H_TRUNCATED] == "1"
    assert info["harmscan-source"] == "requests/0/5"


def test_a_small_dead_letter_keeps_the_original(tmp_path: Path) -> None:
    settings = load_settings("ci", [f"paths.root={tmp_path}"], env={})
    message = Consumed(1, b"payload", headers=[("trace", b"abc")])
    record = dead_letter(message, Rejection("corrupt", "bad", "r1"), settings)  # type: ignore[arg-type]
    assert (record.value, record.key) == (b"payload", b"k")
    assert H_TRUNCATED not in headers_dict(record.headers)
    assert ("trace", b"abc") in record.headers


def test_a_request_cannot_forge_the_dead_letters_own_headers(tmp_path: Path) -> None:
    """Forged ``harmscan-truncated: 1`` made a dead letter unreplayable; a forged request id
    answered ``dlq replay --id``; the replay trail is kept."""
    settings = load_settings("ci", [f"paths.root={tmp_path}"], env={})
    forged = [(H_TRUNCATED, b"1"), (H_REQUEST_ID, b"victim"), (H_REASON, b"corrupt"),
              ("harmscan-replay-of", b"dlq/0/3"), ("trace", b"abc")]  # fmt: skip
    record = dead_letter(
        Consumed(2, b"not json", headers=forged),  # type: ignore[arg-type]
        Rejection("bad_schema", "not JSON", None),
        settings,
    )
    names = [name for name, _ in record.headers]
    assert H_TRUNCATED not in names
    assert H_REQUEST_ID not in names
    assert names.count(H_REASON) == 1
    assert headers_dict(record.headers)[H_REASON] == "bad_schema"
    assert ("harmscan-replay-of", b"dlq/0/3") in record.headers
    assert ("trace", b"abc") in record.headers


def test_thousands_of_empty_headers_count_against_the_cap(tmp_path: Path) -> None:
    settings = load_settings("ci", [f"paths.root={tmp_path}"], env={})
    message = Consumed(3, b"x", headers=[("", b"")] * 50_000)
    record = dead_letter(message, Rejection("bad_schema", "d", None), settings)  # type: ignore[arg-type]
    assert len(record.headers) < MAX_COPIED_HEADER_BYTES // 8 + 20


def test_headers_that_do_not_fit_are_counted_and_later_ones_still_copied(tmp_path: Path) -> None:
    # One header over the cap dropped every header after it, and nothing said headers were lost.
    settings = load_settings("ci", [f"paths.root={tmp_path}"], env={})
    headers = [("first", b"1"), ("big", b"x" * 20_000), ("after", b"2"),
               (H_HEADERS_DROPPED, b"0")]  # fmt: skip
    record = dead_letter(Consumed(4, b"x", headers=headers),  # type: ignore[arg-type]
                         Rejection("bad_schema", "d", None), settings)  # fmt: skip
    assert ("first", b"1") in record.headers
    assert ("after", b"2") in record.headers
    assert "big" not in headers_dict(record.headers)
    assert [v for k, v in record.headers if k == H_HEADERS_DROPPED] == [b"1"]  # not the forged
    whole = dead_letter(Consumed(5, b"x", headers=headers[:1]),  # type: ignore[arg-type]
                        Rejection("bad_schema", "d", None), settings)  # fmt: skip
    assert H_HEADERS_DROPPED not in headers_dict(whole.headers)


def test_a_tombstones_dead_letter_is_a_tombstone(tmp_path: Path) -> None:
    # Its value was b"": replayed, a tombstone came back as an empty message.
    settings = load_settings("ci", [f"paths.root={tmp_path}"], env={})
    rejection = Rejection("bad_schema", "no value (a tombstone)", None)
    tombstone = dead_letter(Consumed(6, None), rejection, settings)  # type: ignore[arg-type]
    empty = dead_letter(Consumed(7, b""), rejection, settings)  # type: ignore[arg-type]
    assert (tombstone.value, empty.value) == (None, b"")
    for record in (tombstone, empty):
        assert headers_dict(record.headers)[H_ORIGINAL_SIZE] == "0"
        assert H_TRUNCATED not in headers_dict(record.headers)


def test_poison_guard_strikes_isolates_and_clears(tmp_path: Path) -> None:
    batch = [Consumed(offset) for offset in range(10, 14)]

    def crash_with(inflight: list[Consumed]) -> PoisonGuard:
        guard = PoisonGuard(tmp_path, "group/one", limit=2)
        guard.begin(inflight)  # type: ignore[arg-type]
        return PoisonGuard(tmp_path, "group/one", limit=2)  # the next process

    guard = crash_with(batch)
    assert [guard.strikes(m) for m in batch] == [1, 1, 1, 1]  # type: ignore[arg-type]
    now, later, alone = guard.isolate(batch)  # type: ignore[arg-type]
    assert (now, later, alone) == (batch[:1], batch[1:], True)
    guard.begin(batch[:1])  # type: ignore[arg-type]
    guard.done(batch[:1])  # type: ignore[arg-type]
    assert guard.strikes(batch[0]) == 0  # type: ignore[arg-type]
    guard.begin(batch[1:2])  # type: ignore[arg-type]
    guard = PoisonGuard(tmp_path, "group/one", limit=2)  # crashed again on offset 11, alone
    assert guard.is_poison(batch[1])  # type: ignore[arg-type]
    assert not guard.is_poison(batch[2])  # type: ignore[arg-type]
    guard.begin(batch[1:])  # type: ignore[arg-type]
    guard.done(batch[1:])  # type: ignore[arg-type]
    (journal,) = (tmp_path / "group_one").glob("*.json")
    assert json.loads(journal.read_text()) == {"inflight": [], "strikes": {}}


def test_a_clean_batch_is_not_cut(tmp_path: Path) -> None:
    guard = PoisonGuard(tmp_path, "g", limit=3)
    batch = [Consumed(offset) for offset in range(3)]
    assert guard.isolate(batch) == (batch, [], False)  # type: ignore[arg-type]
    assert guard.isolate([]) == ([], [], False)


def test_the_journal_is_rewritten_in_place_one_page(tmp_path: Path) -> None:
    guard = PoisonGuard(tmp_path, "g", limit=3)
    guard.begin([Consumed(offset) for offset in range(5, 9)])  # type: ignore[arg-type]
    (path,) = (tmp_path / "g").glob("*.json")
    inode = path.stat().st_ino
    guard.done([Consumed(5)])  # type: ignore[arg-type]
    assert path.stat().st_ino == inode  # no new file renamed over it
    assert path.stat().st_size == SLOT
    assert json.loads(path.read_text()) == {"inflight": [6, 7, 8], "strikes": {}}
    again = PoisonGuard(tmp_path, "g", limit=3)  # the process died with 6, 7, 8 in flight
    assert [again.strikes(Consumed(o)) for o in (5, 6, 8)] == [0, 1, 1]  # type: ignore[arg-type]
    assert not list((tmp_path / "g").glob("*.tmp"))


def test_a_journal_over_a_page_is_renamed_into_place(tmp_path: Path) -> None:
    guard = PoisonGuard(tmp_path, "g", limit=3)
    many = [Consumed(10**9 + offset) for offset in range(600)]
    guard.begin(many)  # type: ignore[arg-type]
    (path,) = (tmp_path / "g").glob("*.json")
    assert path.stat().st_size > SLOT
    assert len(json.loads(path.read_text())["inflight"]) == 600
    guard.done(many[1:])  # small again: the big file is replaced whole, then rewritten in place
    assert path.stat().st_size < SLOT
    assert json.loads(path.read_text())["inflight"] == [10**9]
    guard.done(many[:1])
    assert path.stat().st_size == SLOT
    assert json.loads(path.read_text()) == {"inflight": [], "strikes": {}}
    assert [PoisonGuard(tmp_path, "g", 3).strikes(m) for m in many[:2]] == [0, 0]  # type: ignore[arg-type]


def test_every_image_rejection_reason_is_a_typed_dead_letter_reason() -> None:
    # RejectReason is a Literal, so it repeats harmscan.imagepolicy.REASONS; this keeps them equal.
    assert set(REASONS) <= set(REJECT_REASONS), set(REASONS) - set(REJECT_REASONS)
