"""The poison-message guard: a message that keeps killing the consumer is dead-lettered unread.

Content errors are dead-lettered by the loop, and decoding runs in worker processes, so little can
still kill the consumer. For what still does (a crash in native code outside the workers, the
kernel's OOM killer), the guard keeps a *journal* of the offsets in flight: one small JSON file per
consumer group, topic and partition under ``serving.state_dir``, rewritten in place when a
batch starts and after its commit. A journal found holding offsets in flight when the partition is
first used by a process means the process before died with them: each gets a *strike*. A message
with strikes is a *suspect* and is processed alone (after the batch before it is committed), so a
later crash strikes only the message that caused it; one with ``serving.poison_after_crashes``
strikes is dead-lettered as ``poison_message`` without being decoded. A commit past an offset
clears its strikes, so only *consecutive* crashes count.

A local file rather than a Kafka topic: it needs no broker while the process is dying, and it is
rewritten in place, one page at offset 0 (`Journal.save`: ~3 us, where a write + rename took a
median of 0.1-0.3 ms and up to ~10 ms at its 99th percentile on a shared host, twice per
batch). The price: a partition that moves to another host starts with a clean journal there
(one more crash before the guard acts), which static membership makes rare.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from confluent_kafka import Message

from conf.settings import Settings
from serving.classifier import Rejection
from serving.records import position

# A journal is one page, rewritten at offset 0 by a single pwrite: the kernel copies a write into
# the page cache page by page and only checks for a fatal signal (SIGKILL, the OOM killer) between
# pages, so a process killed while writing one page leaves the old page or the new one.
SLOT: Final = 4096


@dataclass
class Journal:
    """The in-flight offsets and strikes of one partition."""

    path: Path
    inflight: set[int] = field(default_factory=set)
    strikes: dict[int, int] = field(default_factory=dict)
    _fd: int | None = field(default=None, repr=False, compare=False)

    @classmethod
    def claim(cls, path: Path) -> Journal:
        """Load a partition's journal; offsets left in flight by a dead process get a strike."""
        try:
            body = json.loads(path.read_text())
            inflight = {int(o) for o in body.get("inflight", [])}
            strikes = {int(o): int(n) for o, n in body.get("strikes", {}).items()}
        except (OSError, ValueError, TypeError, AttributeError):
            inflight, strikes = set(), {}
        for offset in inflight:
            strikes[offset] = strikes.get(offset, 0) + 1
        journal = cls(path, set(), strikes)
        journal.save()
        return journal

    def save(self) -> None:
        """Write the journal atomically (a crash mid-write leaves the previous version).

        In place: the JSON padded with spaces to one page (`SLOT`), one ``pwrite`` at offset 0.
        A body over a page (hundreds of offsets in flight) is written to a temporary file and
        renamed over the journal instead.
        """
        body = json.dumps({"inflight": sorted(self.inflight), "strikes": self.strikes}).encode()
        if len(body) <= SLOT and self._write_in_place(body.ljust(SLOT)):
            return
        self.close()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_bytes(body)
        os.replace(temporary, self.path)

    def _write_in_place(self, page: bytes) -> bool:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            if os.fstat(fd).st_size > SLOT:  # a bigger journal's tail would follow the page
                os.close(fd)
                return False
            self._fd = fd
        return os.pwrite(self._fd, page, 0) == len(page)

    def close(self) -> None:
        """Close the journal's file (it stays on disk)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:150]


class PoisonGuard:
    """Journals of the partitions this process uses (see the module docstring).

    Args:
        folder: Where the journals live (``serving.state_dir``).
        group: The consumer group (journals are per group).
        limit: Strikes after which a message is dead-lettered unread.
    """

    def __init__(self, folder: Path, group: str, limit: int) -> None:
        self.folder = Path(folder) / _safe(group)
        self.limit = limit
        self._journals: dict[tuple[str, int], Journal] = {}

    def _journal(self, topic: str, partition: int) -> Journal:
        key = (topic, partition)
        if key not in self._journals:
            path = self.folder / f"{_safe(topic)}.{partition}.json"
            self._journals[key] = Journal.claim(path)
        return self._journals[key]

    def strikes(self, message: Message) -> int:
        """How many consecutive crashes ``message`` was in flight at."""
        topic, partition, offset = position(message)
        return self._journal(topic, partition).strikes.get(offset, 0)

    def is_poison(self, message: Message) -> bool:
        """Whether ``message`` reached the strike limit."""
        return self.strikes(message) >= self.limit

    def verdicts(self, batch: list[Message]) -> dict[int, Rejection]:
        """The dead-letter verdicts of the batch's poison messages, by index (never decoded)."""
        return {
            index: Rejection(
                "poison_message",
                f"in flight at {self.strikes(message)} consecutive consumer crashes",
                None,
            )
            for index, message in enumerate(batch)
            if self.is_poison(message)
        }

    def isolate(self, batch: list[Message]) -> tuple[list[Message], list[Message], bool]:
        """Cut a batch so that a suspect runs alone.

        Returns:
            The batch to process now, the messages to fetch again (rewind), and whether the
            batch is one isolated suspect.
        """
        for index, message in enumerate(batch):
            if 0 < self.strikes(message) < self.limit:
                if index == 0:
                    return batch[:1], batch[1:], True
                return batch[:index], batch[index:], False
        return batch, [], False

    def begin(self, batch: Iterable[Message]) -> None:
        """Record a batch as in flight (before it is decoded)."""
        self._update(batch, add=True)

    def done(self, batch: Iterable[Message]) -> None:
        """Record a batch as committed: out of flight, strikes cleared."""
        self._update(batch, add=False)

    def abandon(self, batch: Iterable[Message]) -> None:
        """Record a batch as dropped uncommitted by a living process (redone later): out of
        flight, strikes kept — it did not kill anything."""
        self._update(batch, add=False, clear=False)

    def _update(self, batch: Iterable[Message], *, add: bool, clear: bool = True) -> None:
        touched: dict[tuple[str, int], Journal] = {}
        for message in batch:
            topic, partition, offset = position(message)
            journal = touched.setdefault((topic, partition), self._journal(topic, partition))
            if add:
                journal.inflight.add(offset)
            else:
                journal.inflight.discard(offset)
                if clear:
                    journal.strikes.pop(offset, None)
        for journal in touched.values():
            journal.save()

    def forget(self, topic: str, partition: int) -> None:
        """Drop a revoked partition (its journal is claimed again if it comes back)."""
        journal = self._journals.pop((topic, partition), None)
        if journal is not None:
            journal.close()


def state_folder(settings: Settings) -> Path:
    """Where the poison-message journals live: ``serving.state_dir`` or ``paths.root/serving``."""
    return settings.serving.state_dir or settings.paths.root / "serving"
