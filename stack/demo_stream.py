"""What the demo sends through Kafka and what comes back.

`stream_and_collect` sends the demo images with the producer and prints one line per image
from its result (or dead-letter record), read back by `serving.outcomes.OutcomeReader`.
"""

from __future__ import annotations

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
        DemoError: A result is missing after ``timeout``, or the serve run ended.
    """
    from serving.outcomes import OutcomeReader
    from serving.producer import RequestProducer

    ids: dict[str, tuple[int, Path]] = {}
    batch = uuid.uuid4().hex[:8]
    producer = RequestProducer(settings)  # creates the serving topics the reader starts from
    with OutcomeReader(settings) as reader:  # opened before sending: reads only what follows
        for index, path in enumerate(images):
            request_id = producer.send_path(path, request_id=f"demo-{batch}-{index}")
            ids[request_id] = (index, path)
        sent = producer.close(30)
        if sent.failed:
            raise DemoError(f"requests not delivered to Kafka: {sent.failed}")
        check = (lambda: check_serving(settings, report.serve_run)) if report.serve_run else None
        outcomes = reader.collect(ids, timeout, check=check)
    for request_id, outcome in sorted(outcomes.items(), key=lambda item: ids[item[0]][0]):
        index, path = ids[request_id]
        line = f"[image_{index}] Path: {_display(path)} -> {outcome.describe()}"
        report.lines.append(line)
        report.outcomes[path.name] = outcome.describe()
        emit(line)
    missing = sorted(_display(ids[i][1]) for i in ids if i not in outcomes)
    if missing:
        raise DemoError(
            f"no result after {timeout:.0f}s for {missing}; is the serve run up? see "
            f"{settings.paths.services}/prefect-worker.log"
        )


def _display(path: Path) -> str:
    try:
        return f"./{path.relative_to(Path.cwd())}"
    except ValueError:
        return str(path)
