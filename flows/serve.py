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

from conf.loader import load_settings
from conf.settings import Settings
from tasks.artifacts import run_namer


def serve_overrides(
    runtime: Literal["onnx", "torch"] | None,
    allowed_roots: list[Path] | None,
    batch_size: int | None,
) -> list[str]:
    """The typed flow parameters as ``a.b=c`` settings overrides."""
    out = [f"serving.runtime={runtime}"] if runtime else []
    if allowed_roots:
        out.append(f"serving.allowed_roots=[{', '.join(str(p) for p in allowed_roots)}]")
    out += [f"serving.batch_size={batch_size}"] if batch_size is not None else []
    return out


@flow(name="serve", flow_run_name=run_namer("serve"), validate_parameters=True)
def serve(
    settings: Settings | None = None,
    profile: str | None = None,
    overrides: list[str] | None = None,
    runtime: Literal["onnx", "torch"] | None = None,
    allowed_roots: list[Path] | None = None,
    batch_size: int | None = None,
    run_for_s: float | None = None,
    max_messages: int | None = None,
) -> str:
    """Consume classification requests until the run is cancelled (SIGTERM) or interrupted.

    Args:
        settings: Resolved settings; else loaded from ``profile``.
        profile: Settings profile used when ``settings`` is None.
        overrides: ``a.b=c`` settings overrides.
        runtime: Override ``serving.runtime`` (``onnx`` or ``torch``).
        allowed_roots: Override ``serving.allowed_roots`` (folders path requests may name).
        batch_size: Override ``serving.batch_size``.
        run_for_s: Stop after this many seconds (smoke runs); default: run until cancelled.
        max_messages: Stop once this many requests were processed and committed.

    Returns:
        The ``models:/`` URI that was served.
    """
    from flows.etl import apply_overrides
    from serving.service import run_consumer

    logger = get_run_logger()
    extra = [*(overrides or []), *serve_overrides(runtime, allowed_roots, batch_size)]
    settings = (
        load_settings(profile, extra) if settings is None else apply_overrides(settings, extra)
    )
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
