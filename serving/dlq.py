"""The dead-letter topic from the operator's side: list dead letters by reason, replay chosen ones.

`read_dead_letters` reads the dead-letter topic from its start to its current end (a throw-away
reader that joins no group and commits nothing). `replay` sends the chosen dead letters' original
payloads back to the requests topic (after a fix or a model change), idempotently: every replayed
dead letter is marked in a compacted topic ``<kafka.dead_letter_topic>.replayed`` keyed by its own
``topic/partition/offset``, and a dead letter already marked there is skipped. The mark is written
after the replayed request was acknowledged, so a replay cut short is at worst sent once more —
harmless, since results are keyed by request id. A dead letter whose payload was cut
(``harmscan-truncated``) cannot be replayed: the original is not there any more.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from confluent_kafka import Message, Producer

from conf.settings import Settings
from kafkaio.reading import read_to_end
from serving.delivery import deliver
from serving.headers import (
    H_DETAIL,
    H_REASON,
    H_REPLAY_OF,
    H_REQUEST_ID,
    H_SOURCE,
    H_TRUNCATED,
    headers_dict,
)
from serving.records import Record, byte_headers
from serving.topics import ensure_topics

OWN_HEADER_PREFIX = "harmscan-"


@dataclass(frozen=True)
class DeadLetter:
    """One record of the dead-letter topic."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None  # None: the dead letter of a tombstone, replayed as a tombstone
    headers: list[tuple[str, bytes]]
    timestamp_ms: int = 0  # when the record was written (Kafka's timestamp; 0: unknown)

    @property
    def info(self) -> dict[str, str]:
        """The headers as text."""
        return headers_dict(self.headers)

    @property
    def reason(self) -> str:
        """The typed reason (``harmscan-reason``)."""
        return self.info.get(H_REASON, "")

    @property
    def request_id(self) -> str:
        """The request id, when it was readable."""
        return self.info.get(H_REQUEST_ID, "")

    @property
    def detail(self) -> str:
        """What was wrong."""
        return self.info.get(H_DETAIL, "")

    @property
    def source(self) -> str:
        """Where the original was: ``topic/partition/offset``."""
        return self.info.get(H_SOURCE, "")

    @property
    def truncated(self) -> bool:
        """Whether the payload is a cut copy (such a dead letter cannot be replayed)."""
        return self.info.get(H_TRUNCATED) == "1"


def latest(letters: list[DeadLetter], count: int) -> list[DeadLetter]:
    """The ``count`` most recently written dead letters, oldest first (across partitions: by
    timestamp, then partition and offset)."""
    if count <= 0:
        return []
    ordered = sorted(letters, key=lambda d: (d.timestamp_ms, d.partition, d.offset))
    return ordered[-count:]


def replay_log_topic(settings: Settings) -> str:
    """The compacted topic marking replayed dead letters."""
    return f"{settings.kafka.dead_letter_topic}.replayed"


def _read(settings: Settings, topic: str, timeout: float, *, missing_ok: bool) -> list[Message]:
    return read_to_end(settings.kafka, topic, timeout, purpose="dlq", missing_ok=missing_ok)


def read_dead_letters(settings: Settings, timeout: float = 10.0) -> list[DeadLetter]:
    """All dead letters now in ``kafka.dead_letter_topic``, in partition/offset order.

    Raises:
        MissingTopic: ``kafka.dead_letter_topic`` does not exist.
    """
    letters = [
        DeadLetter(
            m.partition() or 0,
            m.offset() or 0,
            m.key(),
            m.value(),
            byte_headers(m),
            max(m.timestamp()[1], 0),
        )
        for m in _read(settings, settings.kafka.dead_letter_topic, timeout, missing_ok=False)
    ]
    return sorted(letters, key=lambda d: (d.partition, d.offset))


def replayed_marks(settings: Settings, timeout: float = 10.0) -> set[str]:
    """``topic/partition/offset`` of every dead letter already replayed (none before the first
    replay made the topic of marks)."""
    messages = _read(settings, replay_log_topic(settings), timeout, missing_ok=True)
    return {key.decode() for key in (m.key() for m in messages) if key}


def count_by_reason(letters: Iterable[DeadLetter]) -> dict[str, int]:
    """Dead letters per reason, most frequent first."""
    return dict(Counter(d.reason for d in letters).most_common())


def select(
    letters: Iterable[DeadLetter],
    *,
    reasons: Iterable[str] = (),
    ids: Iterable[str] = (),
    offsets: Iterable[tuple[int, int]] = (),
) -> list[DeadLetter]:
    """The dead letters matching any of the given reasons, request ids or (partition, offset)."""
    reasons, ids, offsets = set(reasons), set(ids), set(offsets)
    return [
        d
        for d in letters
        if d.reason in reasons or d.request_id in ids or (d.partition, d.offset) in offsets
    ]


def coordinates(settings: Settings, letter: DeadLetter) -> str:
    """The dead letter's own ``topic/partition/offset``: its replay mark."""
    return f"{settings.kafka.dead_letter_topic}/{letter.partition}/{letter.offset}"


@dataclass
class ReplayReport:
    """What a replay did, by dead-letter coordinates."""

    replayed: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    truncated: list[str] = field(default_factory=list)


def replay(
    settings: Settings, letters: Iterable[DeadLetter], dry_run: bool = False
) -> ReplayReport:
    """Send the original payloads of ``letters`` to the requests topic, each at most once.

    Raises:
        DeliveryFailed: A replayed request or its mark was not acknowledged (run it again).
    """
    kafka = settings.kafka
    log_topic = replay_log_topic(settings)
    if not dry_run:
        admin = {k: v for k, v in kafka.client_config().items() if k != "bootstrap.servers"}
        ensure_topics(
            kafka.bootstrap_servers,
            {log_topic: 1},
            replication=kafka.replication_factor,
            configs={log_topic: {"cleanup.policy": "compact"}},
            client_config=admin,
        )
    done = replayed_marks(settings)
    report = ReplayReport()
    requests: list[Record] = []
    for letter in letters:
        mark = coordinates(settings, letter)
        if mark in done:
            report.already.append(mark)
        elif letter.truncated:
            report.truncated.append(mark)
        else:
            original = [h for h in letter.headers if not h[0].startswith(OWN_HEADER_PREFIX)]
            headers = [*original, (H_REPLAY_OF, mark.encode())]
            requests.append(
                Record("replay", kafka.requests_topic, letter.key, letter.value, headers)
            )
            report.replayed.append(mark)
    if dry_run or not requests:
        return report
    producer = Producer({**kafka.client_config(), "enable.idempotence": True, "acks": "all"})
    deliver(producer, requests, 60.0)
    marks = [Record("mark", log_topic, m.encode(), b"1", []) for m in report.replayed]
    deliver(producer, marks, 60.0)
    return report
