"""The review queue and its claims, in one small SQLite file of the review app.

Items come from the review topic (`review.feed`); each row keeps where it was read (topic,
partition, offset), so the feed commits a partition only up to its oldest undecided item: an item
that was never decided is read again after a restart, whatever happened to this file.

A reviewer holds at most one claim at a time; a claim lapses after ``claim_ttl_s``, so a closed
browser tab never hides an item for long. Claiming is one ``UPDATE ... RETURNING`` under a lock,
so two reviewers can never get the same item. A decision is begun (`begin_decision`) under the
same lock: it checks the claim, renews it and marks the item as being decided until it is
recorded (`decided`) or given up (`abandon_decision`), so one item gets one decision however many
requests race for it while the broker is slow. The web app calls the store from worker threads:
one connection (``check_same_thread=False``) whose every use holds the lock. Pure of Kafka and
the web: unit-testable.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from harmscan.decisions import Decision
from review.versionstats import VersionStats, version_key, version_stats

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    request_id TEXT PRIMARY KEY,
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    "offset" INTEGER NOT NULL,
    model_name TEXT NOT NULL,
    model_version TEXT NOT NULL,
    model_label TEXT NOT NULL,
    p_harmful REAL NOT NULL,
    threshold REAL NOT NULL,
    source TEXT NOT NULL,
    inline_request BLOB,
    scored_at REAL NOT NULL,
    sha256 TEXT,
    claimed_by TEXT,
    claim_expires REAL,
    decision TEXT,
    reviewer TEXT,
    decided_at REAL
);
CREATE INDEX IF NOT EXISTS items_waiting ON items (decision, model_version, scored_at);
CREATE INDEX IF NOT EXISTS items_position ON items (topic, partition, decision, "offset");
CREATE TABLE IF NOT EXISTS skips (
    request_id TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    PRIMARY KEY (request_id, reviewer)
);
CREATE TABLE IF NOT EXISTS ended_sessions (
    session_id TEXT PRIMARY KEY,
    until REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS positions (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)
);
"""

INSERT_COLUMNS = (
    'request_id, topic, partition, "offset", model_name, model_version, model_label, '
    "p_harmful, threshold, source, inline_request, scored_at, sha256"
)
ITEM_COLUMNS = INSERT_COLUMNS + ", claimed_by, claim_expires"


@dataclass(frozen=True)
class Item:
    """One uncertain result waiting for (or held by) a reviewer."""

    request_id: str
    topic: str
    partition: int
    offset: int
    model_name: str
    model_version: str
    model_label: str
    p_harmful: float
    threshold: float
    source: str
    inline_request: bytes | None
    scored_at: float
    sha256: str | None = None  # of the bytes the model scored (None from an older consumer)
    claimed_by: str | None = None
    claim_expires: float | None = None

    def age(self, now: float) -> float:
        """Seconds since the model scored the image."""
        return max(0.0, now - self.scored_at)


class ClaimLost(RuntimeError):
    """The item is not claimed by this reviewer (any more), or is unknown.

    Attributes:
        reason: Why, as a key: ``unknown``, ``decided``, ``claimed`` (by another reviewer) or
            ``deciding`` (a decision on it waits for the broker).
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class ReviewStore:
    """The queue and claims; one connection shared under a lock (the app's threads use it).

    Args:
        path: The SQLite file (``":memory:"`` for tests).
        claim_ttl_s: How long a claim lasts.
        clock: Unix time source (tests move it).
    """

    def __init__(
        self, path: Path | str, claim_ttl_s: float, clock: Callable[[], float] = time.time
    ) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(items)")}
        if "sha256" not in columns:  # a queue file written before results carried the digest
            self._db.execute("ALTER TABLE items ADD COLUMN sha256 TEXT")
        self._lock = threading.Lock()
        self._deciding: set[str] = set()  # decisions begun, not yet recorded or given up
        self.claim_ttl_s = claim_ttl_s
        self.clock = clock

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def add(self, items: Iterable[Item], seen: Iterable[tuple[str, int, int]] = ()) -> int:
        """Store new items (an id already stored is left as it is) and the offsets read.

        Args:
            items: The items read from the review topic.
            seen: (topic, partition, offset) of every message read, items or not.

        Returns:
            How many items were new.
        """
        rows = [
            (
                i.request_id, i.topic, i.partition, i.offset, i.model_name, i.model_version,
                i.model_label, i.p_harmful, i.threshold, i.source, i.inline_request, i.scored_at,
                i.sha256,
            )
            for i in items
        ]  # fmt: skip
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            before = self._db.total_changes
            self._db.executemany(
                f"INSERT OR IGNORE INTO items ({INSERT_COLUMNS}) "  # noqa: S608
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            added = self._db.total_changes - before
            self._db.executemany(
                "INSERT INTO positions VALUES (?, ?, ?) ON CONFLICT (topic, partition) "
                "DO UPDATE SET next_offset = max(next_offset, excluded.next_offset)",
                [(t, p, o + 1) for t, p, o in seen],
            )
        return added

    def claim(self, reviewer: str, model_version: str | None = None) -> Item | None:
        """The item this reviewer should look at now, claimed for them; None if none waits.

        The reviewer's own live claim comes first (a reload shows the same image), then items
        they did not skip, oldest first. Any other claim of theirs is released.
        """
        now = self.clock()
        version_clause = "AND model_version = :version" if model_version else ""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            row = self._db.execute(
                f"""
                UPDATE items SET claimed_by = :reviewer, claim_expires = :expires
                WHERE request_id = (
                    SELECT request_id FROM items
                    WHERE decision IS NULL {version_clause}
                      AND (claimed_by IS NULL OR claim_expires <= :now OR claimed_by = :reviewer)
                      AND request_id NOT IN (SELECT value FROM json_each(:deciding))
                    ORDER BY (claimed_by = :reviewer AND claim_expires > :now) DESC,
                             EXISTS (SELECT 1 FROM skips s WHERE s.request_id = items.request_id
                                     AND s.reviewer = :reviewer),
                             scored_at, request_id
                    LIMIT 1)
                RETURNING {ITEM_COLUMNS}
                """,  # noqa: S608 (the only interpolation is a fixed clause)
                {
                    "reviewer": reviewer,
                    "expires": now + self.claim_ttl_s,
                    "now": now,
                    "version": model_version,
                    "deciding": json.dumps(sorted(self._deciding)),
                },
            ).fetchone()
            item = _item(row) if row else None
            self._db.execute(
                "UPDATE items SET claimed_by = NULL, claim_expires = NULL "
                "WHERE claimed_by = ? AND request_id IS NOT ?",
                (reviewer, item.request_id if item else None),
            )
        return item

    def get(self, request_id: str) -> Item | None:
        """The stored item of a request id, decided or not."""
        with self._lock:
            row = self._db.execute(
                f"SELECT {ITEM_COLUMNS} FROM items WHERE request_id = ?",  # noqa: S608
                (request_id,),
            ).fetchone()
        return _item(row) if row else None

    def holding(self, reviewer: str, request_id: str) -> Item:
        """The undecided item ``request_id`` if this reviewer may decide it now.

        A lapsed claim still counts while nobody else took the item.

        Raises:
            ClaimLost: Unknown, decided, claimed by someone else, or being decided.
        """
        with self._lock:
            return self._holding(reviewer, request_id)

    def begin_decision(self, reviewer: str, request_id: str) -> Item:
        """Check as `holding`, then renew the reviewer's claim and mark the item as being decided,
        in one step: until `decided` or `abandon_decision`, nobody else claims or decides it.

        Raises:
            ClaimLost: As `holding`; also while another decision on it is begun.
        """
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            item = self._holding(reviewer, request_id)
            self._db.execute(
                "UPDATE items SET claimed_by = ?, claim_expires = ? WHERE request_id = ?",
                (reviewer, self.clock() + self.claim_ttl_s, request_id),
            )
            self._deciding.add(request_id)
        return item

    def abandon_decision(self, request_id: str) -> None:
        """Give up a begun decision that was not delivered; the item stays the reviewer's."""
        with self._lock:
            self._deciding.discard(request_id)

    def _holding(self, reviewer: str, request_id: str) -> Item:
        row = self._db.execute(
            f"SELECT {ITEM_COLUMNS}, decision FROM items WHERE request_id = ?",  # noqa: S608
            (request_id,),
        ).fetchone()
        shown = repr(request_id[:80])
        if row is None:
            raise ClaimLost("unknown", f"no item {shown} in the queue")
        item, decision = _item(row[:-1]), row[-1]
        if decision is not None:
            raise ClaimLost("decided", f"{shown} was decided already")
        if request_id in self._deciding:
            raise ClaimLost("deciding", f"{shown} is being decided already")
        owner, expires = item.claimed_by, item.claim_expires
        if owner not in (None, reviewer) and (expires or 0) > self.clock():
            raise ClaimLost("claimed", f"{shown} is claimed by another reviewer")
        return item

    def decided(self, decision: Decision) -> None:
        """Record a decision that is on the decisions topic (call only after delivery)."""
        with self._lock, self._db:
            self._db.execute(
                "UPDATE items SET decision = ?, reviewer = ?, decided_at = ?, claimed_by = NULL, "
                "claim_expires = NULL WHERE request_id = ?",
                (decision.decision, decision.reviewer, decision.decided_at, decision.id),
            )
            self._db.execute("DELETE FROM skips WHERE request_id = ?", (decision.id,))
            self._deciding.discard(decision.id)

    def skip(self, reviewer: str, request_id: str) -> None:
        """Release the reviewer's claim and put the item behind the others for them.

        Raises:
            ClaimLost: No such item waits (unknown or decided): nothing is stored for it.
        """
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            row = self._db.execute(
                "SELECT decision FROM items WHERE request_id = ?", (request_id,)
            ).fetchone()
            if row is None:
                raise ClaimLost("unknown", f"no item {request_id[:80]!r} in the queue")
            if row[0] is not None:
                raise ClaimLost("decided", f"{request_id[:80]!r} was decided already")
            self._db.execute(
                "UPDATE items SET claimed_by = NULL, claim_expires = NULL "
                "WHERE request_id = ? AND claimed_by = ?",
                (request_id, reviewer),
            )
            self._db.execute("INSERT OR IGNORE INTO skips VALUES (?, ?)", (request_id, reviewer))

    def end_session(self, session_id: str, until: float) -> None:
        """Remember that a reviewer's session ended (logged out) until it would have expired:
        its signed cookie stays valid by itself, so the app refuses it by this record. Records
        past their time are forgotten here."""
        with self._lock, self._db:
            now = self.clock()
            self._db.execute("DELETE FROM ended_sessions WHERE until < ?", (now,))
            self._db.execute(
                "INSERT OR REPLACE INTO ended_sessions (session_id, until) VALUES (?, ?)",
                (session_id, until),
            )

    def session_ended(self, session_id: str) -> bool:
        """Whether the session was ended by a log-out (`end_session`)."""
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM ended_sessions WHERE session_id = ? AND until >= ?",
                (session_id, self.clock()),
            ).fetchone()
        return row is not None

    def commit_positions(self) -> dict[tuple[str, int], int]:
        """Per (topic, partition): the offset the feed may commit (its oldest undecided item,
        or past everything read when all are decided)."""
        with self._lock:
            rows = self._db.execute(
                """
                SELECT p.topic, p.partition, coalesce(
                    (SELECT min(i."offset") FROM items i WHERE i.topic = p.topic
                     AND i.partition = p.partition AND i.decision IS NULL), p.next_offset)
                FROM positions p
                """
            ).fetchall()
        return {(topic, partition): offset for topic, partition, offset in rows}

    def waiting(self, model_version: str | None = None) -> int:
        """How many items wait for a decision (claimed or not)."""
        clause, args = ("AND model_version = ?", (model_version,)) if model_version else ("", ())
        with self._lock:
            (count,) = self._db.execute(
                f"SELECT count(*) FROM items WHERE decision IS NULL {clause}",  # noqa: S608
                args,
            ).fetchone()
        return int(count)

    def stats(self) -> list[VersionStats]:
        """Waiting, oldest age, agreement and overturns, per model version (newest first)."""
        now = self.clock()
        with self._lock:
            rows = self._db.execute(
                """
                SELECT model_version, model_label,
                       sum(decision IS NULL), min(CASE WHEN decision IS NULL THEN scored_at END),
                       sum(decision IS NOT NULL), sum(decision = model_label)
                FROM items GROUP BY model_version, model_label
                """
            ).fetchall()
        return version_stats(rows, now)

    def versions(self) -> list[str]:
        """Model versions that have items waiting (newest first)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT model_version FROM items WHERE decision IS NULL"
            ).fetchall()
        return sorted((r[0] for r in rows), key=version_key, reverse=True)


def _item(row: tuple) -> Item:
    return Item(*row)
