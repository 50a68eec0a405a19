"""The review queue: claims never shared, expiry, skips, decided items, commit positions, stats."""

from __future__ import annotations

from pathlib import Path

import pytest

from harmscan.decisions import Decision
from review.store import ClaimLost, Item, ReviewStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def item(
    request_id: str,
    offset: int,
    *,
    version: str = "1",
    label: str = "safe",
    at: float = 0.0,
    partition: int = 0,
) -> Item:
    return Item(
        request_id,
        "review",
        partition,
        offset,
        "harmscan",
        version,
        label,
        0.45,
        0.5,
        f"/srv/{request_id}.jpg",
        None,
        at or 900.0 + offset,
    )


def decision(it: Item, verdict: str, reviewer: str = "ana") -> Decision:
    return Decision(
        it.request_id,
        verdict,
        reviewer,
        1000.0,
        it.model_name,
        it.model_version,  # type: ignore[arg-type]
        it.model_label,
        it.p_harmful,
        it.threshold,
        it.source,
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> ReviewStore:
    return ReviewStore(":memory:", claim_ttl_s=60, clock=clock)


def fill(store: ReviewStore, *items: Item) -> None:
    store.add(items, [(i.topic, i.partition, i.offset) for i in items])


def test_two_reviewers_never_get_the_same_item(store: ReviewStore) -> None:
    fill(store, item("a", 0), item("b", 1))
    first, second = store.claim("ana"), store.claim("bob")
    assert first is not None
    assert second is not None
    assert first.request_id == "a"
    assert second.request_id == "b"
    assert store.claim("cy") is None


def test_a_reload_shows_the_same_item_and_one_claim_per_reviewer(store: ReviewStore) -> None:
    fill(store, item("a", 0), item("b", 1))
    assert store.claim("ana").request_id == "a"  # type: ignore[union-attr]
    assert store.claim("ana").request_id == "a"  # type: ignore[union-attr]
    other = store.claim("ana", model_version="2")
    assert other is None
    # Asking for another version released the claim on "a": bob gets it.
    assert store.claim("bob").request_id == "a"  # type: ignore[union-attr]


def test_a_lapsed_claim_goes_to_the_next_reviewer(store: ReviewStore, clock: Clock) -> None:
    fill(store, item("a", 0))
    assert store.claim("ana") is not None
    assert store.claim("bob") is None
    clock.now += 61
    assert store.claim("bob").request_id == "a"  # type: ignore[union-attr]
    with pytest.raises(ClaimLost, match="another reviewer"):
        store.holding("ana", "a")


def test_a_begun_decision_holds_the_item_until_recorded_or_given_up(
    store: ReviewStore, clock: Clock
) -> None:
    fill(store, item("a", 0))
    assert store.claim("ana") is not None
    clock.now += 61  # ana's claim lapsed: beginning the decision renews it
    begun = store.begin_decision("ana", "a")
    assert begun.request_id == "a"
    for name in ("ana", "bob"):
        with pytest.raises(ClaimLost, match="being decided") as info:
            store.begin_decision(name, "a")
        assert info.value.reason == "deciding"
    clock.now += 61  # however long the broker takes
    assert store.claim("bob") is None
    store.abandon_decision("a")  # not delivered: the item is free to decide again
    assert store.begin_decision("ana", "a").request_id == "a"
    store.decided(decision(begun, "safe"))
    with pytest.raises(ClaimLost, match="decided already"):
        store.begin_decision("ana", "a")


def test_skip_puts_the_item_behind_the_others_for_that_reviewer(store: ReviewStore) -> None:
    fill(store, item("a", 0), item("b", 1))
    store.claim("ana")
    store.skip("ana", "a")
    assert store.claim("ana").request_id == "b"  # type: ignore[union-attr]
    assert store.claim("bob").request_id == "a"  # type: ignore[union-attr]


def test_only_an_item_in_the_queue_can_be_skipped(store: ReviewStore) -> None:
    fill(store, item("a", 0))
    for junk in ("x" * 3000, "never-seen"):
        with pytest.raises(ClaimLost, match="no item") as info:
            store.skip("ana", junk)
        assert info.value.reason == "unknown"
    claimed = store.claim("ana")
    assert claimed is not None
    store.decided(decision(claimed, "safe"))
    with pytest.raises(ClaimLost, match="decided already"):
        store.skip("ana", "a")
    with store._lock:
        assert store._db.execute("SELECT count(*) FROM skips").fetchone() == (0,)


def test_decided_items_leave_the_queue_and_cannot_be_decided_twice(store: ReviewStore) -> None:
    fill(store, item("a", 0))
    claimed = store.claim("ana")
    assert claimed is not None
    store.decided(decision(claimed, "harmful"))
    assert store.waiting() == 0
    assert store.claim("ana") is None
    with pytest.raises(ClaimLost, match="decided already"):
        store.holding("ana", "a")


def test_positions_stop_at_the_oldest_undecided_item(store: ReviewStore) -> None:
    items = [item("a", 0), item("b", 1), item("c", 2), item("d", 0, partition=1)]
    fill(store, *items)
    store.add([], [("review", 0, 5)])  # a message that was not an item
    assert store.commit_positions() == {("review", 0): 0, ("review", 1): 0}
    store.decided(decision(items[0], "safe"))
    store.decided(decision(items[2], "safe"))
    assert store.commit_positions() == {("review", 0): 1, ("review", 1): 0}
    store.decided(decision(items[1], "safe"))
    store.decided(decision(items[3], "safe"))
    assert store.commit_positions() == {("review", 0): 6, ("review", 1): 1}


def test_a_redelivered_item_is_stored_once(store: ReviewStore) -> None:
    fill(store, item("a", 0))
    assert store.add([item("a", 7)], [("review", 0, 7)]) == 0
    assert store.waiting() == 1


def test_stats_per_model_version(store: ReviewStore) -> None:
    items = [
        item("a", 0, label="safe"),
        item("b", 1, label="harmful"),
        item("c", 2, label="safe"),
        item("d", 3, version="2", at=500.0),
    ]
    fill(store, *items)
    store.decided(decision(items[0], "harmful"))  # overturned safe -> harmful
    store.decided(decision(items[1], "harmful"))  # agreed
    stats = {s.model_version: s for s in store.stats()}
    assert [s.model_version for s in store.stats()] == ["2", "1"]
    v1 = stats["1"]
    assert (v1.waiting, v1.decided, v1.agreed) == (1, 2, 1)
    assert v1.agreement == pytest.approx(0.5)
    assert v1.overturn_rate("safe") == pytest.approx(1.0)
    assert v1.overturn_rate("harmful") == pytest.approx(0.0)
    assert stats["2"].agreement is None
    assert stats["2"].oldest_age_s == pytest.approx(500.0)
    assert store.versions() == ["2", "1"]
    assert store.waiting("2") == 1


def test_filter_by_model_version(store: ReviewStore) -> None:
    fill(store, item("a", 0, version="1"), item("b", 1, version="2"))
    assert store.claim("ana", model_version="2").request_id == "b"  # type: ignore[union-attr]


def test_the_store_survives_a_restart(tmp_path, clock: Clock) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "queue.sqlite"
    store = ReviewStore(path, 60, clock)
    fill(store, item("a", 0))
    store.claim("ana")
    store.close()
    again = ReviewStore(path, 60, clock)
    assert again.claim("bob") is None
    assert again.claim("ana").request_id == "a"  # type: ignore[union-attr]


def test_a_queue_file_of_an_older_version_gains_the_digest_column(tmp_path: Path) -> None:
    """A queue written before results carried the scored bytes' digest keeps its items."""
    import sqlite3

    from review.store import SCHEMA

    path = tmp_path / "queue.sqlite"
    old = sqlite3.connect(path)
    old.executescript(SCHEMA.replace("    sha256 TEXT,\n", ""))
    old.execute(
        'INSERT INTO items (request_id, topic, partition, "offset", model_name, model_version, '
        "model_label, p_harmful, threshold, source, inline_request, scored_at) "
        "VALUES ('old', 'review', 0, 0, 'harmscan', '1', 'safe', 0.45, 0.5, '/a.jpg', NULL, 1.0)"
    )
    old.commit()
    old.close()
    store = ReviewStore(path, claim_ttl_s=60)
    digest = "ab" * 32
    store.add([Item("new", "review", 0, 1, "harmscan", "1", "safe", 0.45, 0.5, "/b.jpg", None,
                    2.0, digest)], [("review", 0, 1)])  # fmt: skip
    assert store.get("old").sha256 is None  # type: ignore[union-attr]
    assert store.get("new").sha256 == digest  # type: ignore[union-attr]
    assert store.claim("ana").request_id == "old"  # type: ignore[union-attr]
    store.close()
    assert ReviewStore(path, claim_ttl_s=60).get("new").sha256 == digest  # type: ignore[union-attr]
