"""What the consumer answered to the requests one sent: results and dead letters, read back.

An `OutcomeReader` is opened *before* the requests are sent. It starts at the current end of the
results and dead-letter topics, so it reads only what arrives after it (never the history of a
long-lived topic), and `OutcomeReader.collect` waits until every request id it is given has an
outcome or the time is up. A result names its label, score and model version; a dead letter its
reason and detail (matched by its ``harmscan-request-id`` header: a request whose id could not be
read has none, and stays without an outcome). A message on either topic that is not ours, or
not a result at all, is skipped.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType

from confluent_kafka import Consumer, Message, TopicPartition

from conf.settings import Settings
from serving.headers import H_DETAIL, H_REASON, H_REQUEST_ID, headers_dict
from serving.records import byte_headers
from serving.schema import SchemaError, decode_result, log_safe

# How long the reader waits for the broker's metadata and watermarks when it opens.
METADATA_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Outcome:
    """The consumer's answer to one request: a classification, or the reason it was rejected.

    Attributes:
        request_id: The request's id.
        label: ``harmful`` or ``safe``; None when the request was dead-lettered.
        p_harmful: The harmful probability; None when dead-lettered.
        model_version: The registered version that scored it; None when dead-lettered.
        review: Whether the score lies in the model's review band.
        reason: The dead-letter reason (``not_found``, ``truncated``...); None when classified.
        detail: The dead letter's detail (it may quote the request: escape it before printing).
    """

    request_id: str
    label: str | None = None
    p_harmful: float | None = None
    model_version: str | None = None
    review: bool = False
    reason: str | None = None
    detail: str = ""

    @property
    def rejected(self) -> bool:
        """Whether the request went to the dead-letter topic instead of being classified."""
        return self.reason is not None

    def describe(self) -> str:
        """One line for a terminal: the label and score, or the rejection (escaped)."""
        if self.reason is not None:
            detail = f" ({log_safe(self.detail)})" if self.detail else ""
            return f"rejected: {log_safe(self.reason)}{detail}"
        review = ", waits for review" if self.review else ""
        score = f"p_harmful {self.p_harmful:.2f}"
        return f"{self.label} ({score}) answered by v{self.model_version}{review}"


def read_outcome(message: Message, results_topic: str) -> Outcome | None:
    """The outcome a results or dead-letter message carries; None for one that carries none."""
    if message.topic() == results_topic:
        try:
            result = decode_result(message.value() or b"")
        except SchemaError:
            return None
        return Outcome(result.id, result.label, result.p_harmful, result.model_version,
                       result.review)  # fmt: skip
    # Read as the dead-letter tools read them: a header name that is not UTF-8 crashes a plain
    # ``headers()`` read (see `serving.records.readable_headers`).
    headers = headers_dict(byte_headers(message))
    request_id = headers.get(H_REQUEST_ID, "")
    if not request_id:
        return None
    return Outcome(request_id, reason=headers.get(H_REASON, "?"), detail=headers.get(H_DETAIL, ""))


class OutcomeReader:
    """Reads the results and dead-letter topics from where they end when it is opened.

    Raises:
        RuntimeError: A topic does not exist or the broker did not answer (from the constructor).
    """

    def __init__(self, settings: Settings) -> None:
        kafka = settings.kafka
        self.results_topic = kafka.results_topic
        self._consumer = Consumer(
            {
                **kafka.client_config(),
                "group.id": f"harmscan-outcomes-{uuid.uuid4().hex[:12]}",
                "enable.auto.commit": False,
                "enable.partition.eof": False,
            }
        )
        try:
            self._consumer.assign(self._ends([kafka.results_topic, kafka.dead_letter_topic]))
        except BaseException:
            self._consumer.close()
            raise

    def _ends(self, topics: Iterable[str]) -> list[TopicPartition]:
        ends = []
        for topic in topics:
            listed = self._consumer.list_topics(topic, timeout=METADATA_TIMEOUT_S).topics.get(topic)
            if listed is None or listed.error is not None or not listed.partitions:
                raise RuntimeError(
                    f"topic {topic} is not there ({listed.error if listed else 'unknown'}); "
                    "`harmscan serve` or `harmscan produce` creates the serving topics"
                )
            for partition in sorted(listed.partitions):
                _low, high = self._consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=METADATA_TIMEOUT_S, cached=False
                )
                ends.append(TopicPartition(topic, partition, high))
        return ends

    def collect(
        self,
        ids: Iterable[str],
        timeout: float,
        *,
        check: Callable[[], None] | None = None,
        check_every_s: float = 5.0,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> dict[str, Outcome]:
        """Outcomes of ``ids`` (request id -> the first outcome read), waiting up to ``timeout``
        seconds for the last one; ``check`` is called every ``check_every_s`` (it may raise to stop
        waiting), ``on_outcome`` on each outcome as it arrives."""
        wanted = set(ids)
        found: dict[str, Outcome] = {}
        deadline = time.monotonic() + timeout
        next_check = time.monotonic() + check_every_s
        while len(found) < len(wanted) and time.monotonic() < deadline:
            if check is not None and time.monotonic() >= next_check:
                check()
                next_check = time.monotonic() + check_every_s
            message = self._consumer.poll(min(1.0, max(0.0, deadline - time.monotonic())))
            if message is None or message.error():
                continue
            outcome = read_outcome(message, self.results_topic)
            if outcome is None or outcome.request_id not in wanted:
                continue
            if outcome.request_id not in found:
                found[outcome.request_id] = outcome
                if on_outcome is not None:
                    on_outcome(outcome)
        return found

    def close(self) -> None:
        """Close the consumer (it commits nothing: its group is its own and thrown away)."""
        self._consumer.close()

    def __enter__(self) -> OutcomeReader:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()
