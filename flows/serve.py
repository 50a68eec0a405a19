"""The ``serve`` flow: start the Kafka consumer that serves ``models:/<model>@champion``.

Long-running: the flow run lasts as long as the consumer, which stops on SIGTERM/SIGINT (a
cancelled flow run) after finishing its batch. Run the deployment several times to scale out;
the runs share the partitions of the requests topic as one consumer group.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Literal

from prefect import flow, get_run_logger

from conf.loader import SettingsSource
from conf.settings import Settings
from flows.common import failure_note, resolve, time_limit
from tasks.artifacts import run_namer


@flow(
    name="serve",
    flow_run_name=run_namer("serve"),
    validate_parameters=True,
    on_failure=[failure_note],
)
def serve(
    source: SettingsSource | None = None,
    runtime: Literal["onnx", "torch"] | None = None,
    allowed_roots: list[Path] | None = None,
    batch_size: int | None = None,
    run_for_s: float | None = None,
    max_messages: int | None = None,
) -> str:
    """Consume classification requests until the run is cancelled (SIGTERM) or interrupted.

    Args:
        source: Profile, extra file and typed overrides; None: the profile and file this
            process names.
        runtime: Override ``serving.runtime`` (``onnx`` or ``torch``).
        allowed_roots: Override ``serving.allowed_roots`` (folders path requests may name).
        batch_size: Override ``serving.batch_size``.
        run_for_s: Stop after this many seconds (smoke runs); default: run until cancelled.
        max_messages: Stop once this many requests were processed and committed.

    Returns:
        The ``models:/`` URI that was served.
    """
    settings = resolve(
        source,
        {
            "serving.runtime": runtime,
            "serving.allowed_roots": [str(p) for p in allowed_roots] if allowed_roots else None,
            "serving.batch_size": batch_size,
        },
    )
    with time_limit(settings, "serve"):
        return _serve(settings, run_for_s, max_messages)


def _serve(settings: Settings, run_for_s: float | None, max_messages: int | None) -> str:
    from serving.service import run_consumer

    logger = get_run_logger()
    uri = f"models:/{settings.mlflow.registered_model}@{settings.serving.model_alias}"
    logger.info(
        "serving %s from %s on %s (%s runtime, allowed roots %s)",
        uri, settings.kafka.requests_topic, settings.kafka.bootstrap_servers,
        settings.serving.runtime, [str(p) for p in settings.serving.allowed_roots],
    )  # fmt: skip
    stop = threading.Event()
    timer = threading.Timer(run_for_s, stop.set) if run_for_s else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        run_consumer(settings, stop, max_messages)
    finally:
        if timer is not None:
            timer.cancel()
    logger.info("consumer stopped")
    return uri
