"""What the demo sends through Kafka and what comes back.

`stream_and_collect` sends the demo images with the producer and prints one line per image as
its result (or dead-letter record) arrives; `collect_outcomes` reads the results and dead-letter
topics until every request has an outcome.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from conf.settings import Settings
from stack.demo_checks import DemoError, Emit, check_serving

if TYPE_CHECKING:
    from stack.demo import DemoReport


def stream_and_collect(
    settings: Settings, images: list[Path], report: DemoReport, timeout: float, emit: Emit
) -> None:
    """Send every image with the producer, then print a line per result as it arrives.

    Raises:
        DemoError: A result is missing after ``timeout``.
    """
    from serving.producer import RequestProducer

    ids: dict[str, tuple[int, Path]] = {}
    batch = uuid.uuid4().hex[:8]
    producer = RequestProducer(settings)
    for index, path in enumerate(images):
        request_id = producer.send_path(path, request_id=f"demo-{batch}-{index}")
        ids[request_id] = (index, path)
    sent = producer.flush(30)
    if sent.failed:
        raise DemoError(f"requests not delivered to Kafka: {sent.failed}")
    outcomes = collect_outcomes(settings, set(ids), timeout, report.serve_run)
    for request_id, outcome in sorted(outcomes, key=lambda item: ids[item[0]][0]):
        index, path = ids[request_id]
        line = f"[image_{index}] Path: {_display(path)} -> {outcome}"
        report.lines.append(line)
        report.outcomes[path.name] = outcome
        emit(line)
    missing = sorted(_display(ids[i][1]) for i in ids if ids[i][1].name not in report.outcomes)
    if missing:
        raise DemoError(
            f"no result after {timeout:.0f}s for {missing}; is the serve run up? see "
            f"{settings.paths.services}/prefect-worker.log"
        )


def collect_outcomes(
    settings: Settings, ids: set[str], timeout: float, serve_run: str | None = None
) -> list[tuple[str, str]]:
    """Read the results and dead-letter topics until every id has an outcome or time is up.

    Raises:
        DemoError: The serve run ``serve_run`` ended before every outcome arrived.
    """
    from confluent_kafka import Consumer

    from serving.headers import H_DETAIL, H_REASON, H_REQUEST_ID, headers_dict
    from serving.schema import decode_result

    kafka = settings.kafka
    consumer = Consumer(
        {
            **kafka.client_config(),
            "group.id": f"harmscan-demo-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([kafka.results_topic, kafka.dead_letter_topic])
    found: list[tuple[str, str]] = []
    deadline = time.monotonic() + timeout
    next_check = time.monotonic() + 5
    try:
        while len(found) < len(ids) and time.monotonic() < deadline:
            if serve_run and time.monotonic() > next_check:
                check_serving(settings, serve_run)
                next_check = time.monotonic() + 5
            message = consumer.poll(1.0)
            if message is None or message.error():
                continue
            if message.topic() == kafka.results_topic:
                result = decode_result(message.value() or b"")
                request_id = result.id
                outcome = (
                    f"{result.label} (p_harmful {result.p_harmful:.2f}) "
                    f"answered by v{result.model_version}"
                    + (", waits for review" if result.review else "")
                )
            else:
                headers = headers_dict(message.headers())
                request_id = headers.get(H_REQUEST_ID, "")
                reason, detail = headers.get(H_REASON, "?"), headers.get(H_DETAIL, "")
                outcome = f"rejected: {reason}" + (f" ({detail})" if detail else "")
            if request_id in ids and request_id not in {i for i, _ in found}:
                found.append((request_id, outcome))
    finally:
        consumer.close()
    return found


def _display(path: Path) -> str:
    try:
        return f"./{path.relative_to(Path.cwd())}"
    except ValueError:
        return str(path)
