"""``harmscan demo``: the main job end to end on one machine.

Brings the local stack up, registers the deployments, runs ``retrain`` through the Prefect server
(a worker runs the deployment, so the run shows in the Prefect UI), reports the champion, starts
the ``serve`` deployment (the Kafka consumer, run by the worker), streams a handful of test
images and a corrupt one through Kafka with the producer, prints one line per image from the
results (and dead-letter) topics, and ends with the Prefect and MLflow UI addresses.
"""

from __future__ import annotations

import csv
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from conf.settings import OpenImagesSettings, Settings
from stack.demo_checks import DemoError, Emit, champion_line, wait_for_champion
from stack.demo_stream import stream_and_collect

if TYPE_CHECKING:
    from stack.local import LocalStack

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("mirror", "openimages")
# Mirror test groups shown by the demo (first test image of each), and the corrupt file.
DEMO_GROUPS = ("handgun", "knife", "explosion", "dog", "cat", "bicycle")
# `harmscan demo` (fast, the default) caps these training settings; `--full` keeps the profile's.
# The size cap equals train.image_size's default (docs/image-size.md), so with the default
# settings both modes train at 160 px and --full differs in epochs (the profile's 4).
FAST_TRAIN = {"image_size": 160, "epochs": 3}


@dataclass
class DemoReport:
    """What the demo did, for callers and tests."""

    retrain_run: str = ""
    champion_version: str | None = None
    serve_run: str = ""
    lines: list[str] = field(default_factory=list)
    outcomes: dict[str, str] = field(default_factory=dict)
    prefect_ui: str = ""
    mlflow_ui: str = ""
    review_ui: str = ""
    review_waiting: int = 0


def demo_settings(settings: Settings, source: str | None, fast: bool = True) -> Settings:
    """The settings of a demo: ``source`` applied and the demo images folder allowed to serve.

    With ``fast``, training is capped to `FAST_TRAIN` (at most 160 px, 3 epochs) so that the
    whole demo fits in about 15 minutes on two CPU cores; smaller values of the user stay.

    Raises:
        DemoError: An unknown source.
    """
    if source is not None and source not in SOURCES:
        raise DemoError(f"unknown source {source!r}; valid: {', '.join(SOURCES)}")
    oi = settings.openimages
    if source == "openimages":
        defaults = OpenImagesSettings.model_fields
        oi = oi.model_copy(
            update={
                "source": "openimages",
                "s3_endpoint_url": None,
                "metadata_base_url": defaults["metadata_base_url"].default,
            }
        )
    elif source == "mirror":
        oi = oi.model_copy(update={"source": "mirror"})
    images = images_dir(settings)
    serving = settings.serving.model_copy(
        update={"allowed_roots": [*settings.serving.allowed_roots, images]}
    )
    train = settings.train
    if fast:
        train = train.model_copy(
            update={key: min(getattr(train, key), cap) for key, cap in FAST_TRAIN.items()}
        )
    return settings.model_copy(update={"openimages": oi, "serving": serving, "train": train})


def images_dir(settings: Settings) -> Path:
    """Where the demo puts the images it streams."""
    return (settings.paths.root / "demo" / "images").resolve()


def prepare_images(target: Path, mirror_dir: Path | None = None) -> list[Path]:
    """Copy one mirror test image per demo group into ``target``, plus a truncated JPEG.

    Returns:
        The image paths, the corrupt one last.

    Raises:
        DemoError: The mirror has no test image of any demo group.
    """
    mirror_dir = mirror_dir or REPO_ROOT / "mirror"
    with (mirror_dir / "expected.csv").open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["Subset"] == "test" and not r["Defect"]]
    first: dict[str, str] = {}
    for row in sorted(rows, key=lambda r: r["ImageID"]):
        first.setdefault(row["Group"], row["ImageID"])
    picked = [(group, first[group]) for group in DEMO_GROUPS if group in first]
    if not picked:
        raise DemoError(f"no test images of groups {DEMO_GROUPS} in {mirror_dir}/expected.csv")
    target.mkdir(parents=True, exist_ok=True)
    paths = []
    for group, image_id in picked:
        data = (mirror_dir / "images" / "test" / f"{image_id}.jpg").read_bytes()
        path = target / f"{group}.jpg"
        path.write_bytes(data)
        paths.append(path)
    corrupt = target / "corrupt.jpg"
    corrupt.write_bytes(paths[0].read_bytes()[:300])  # a JPEG cut short: must be rejected
    return [*paths, corrupt]


def run_demo(
    settings: Settings,
    *,
    source: str | None = None,
    keep: bool = True,
    fast: bool = True,
    retrain_timeout: float = 1800.0,
    results_timeout: float = 300.0,
    serve_timeout: float = 300.0,
    emit: Emit = logger.info,
) -> DemoReport:
    """Run the whole demo; see the module docstring.

    Args:
        settings: The resolved settings (the ``local`` profile by default).
        source: ``mirror`` or ``openimages``; None keeps ``openimages.source``.
        keep: Leave the stack (and the serve run) running at the end; without it the stack is
            stopped even when a step fails (its logs stay in the services folder).
        fast: Cap training to `FAST_TRAIN` (see `demo_settings`).
        retrain_timeout: Seconds to wait for the retrain run.
        results_timeout: Seconds to wait for every image's result.
        serve_timeout: Seconds to wait until the consumer serves the champion (a new consumer
            starts and loads it; a running one picks it up within
            ``serving.swap_check_interval_s``).
        emit: Where the progress and result lines go.

    Raises:
        DemoError: A step failed; the message names the run or log to read.
    """
    from stack.local import LocalStack

    started = time.monotonic()
    stack = LocalStack(demo_settings(settings, source, fast))
    report = DemoReport(
        prefect_ui=stack.prefect_ui, mlflow_ui=stack.mlflow_ui, review_ui=stack.review_ui
    )
    finished = False
    try:
        _run_steps(stack, report, (retrain_timeout, serve_timeout, results_timeout), emit)
        emit(f"demo finished in {time.monotonic() - started:.0f}s")
        finished = True
    finally:
        if keep:
            emit("the stack and the consumer keep running; stop them with: harmscan down")
        else:
            if not finished:
                emit(f"stopping the stack after the failure (logs stay in {stack.services_dir})")
            stack.down()
    return report


def _run_steps(
    stack: LocalStack, report: DemoReport, timeouts: tuple[float, float, float], emit: Emit
) -> None:
    """The demo's five steps on ``stack``, filling ``report``; timeouts: retrain, serve, results."""
    from stack.deploy import deploy
    from stack.runs import active_runs, run_and_wait, start_deployment

    retrain_timeout, serve_timeout, results_timeout = timeouts
    settings = stack.settings
    emit(f"[1/5] starting the local stack (logs in {stack.services_dir})")
    stack.up(on_ready=lambda status: emit(f"      {status.name}: {status.address}"))
    emit("[2/5] registering the deployments etl, train, retrain, serve")
    deploy(settings)
    emit(f"[3/5] retrain on {settings.openimages.source} through the Prefect server")
    report.retrain_run = run_and_wait(settings, "retrain/harmscan", retrain_timeout, emit)
    report.champion_version = champion_line(settings, emit)
    emit("[4/5] starting the serve deployment (the Kafka consumer, run by the worker)")
    running = active_runs(settings, "serve/harmscan")
    report.serve_run = running[0] if running else start_deployment(settings, "serve/harmscan")
    if running:
        emit(f"      reusing the running consumer {report.serve_run}")
    if report.champion_version is not None:
        wait_for_champion(settings, report.champion_version, serve_timeout, emit, report.serve_run)
    images = prepare_images(images_dir(settings))
    emit(f"[5/5] streaming {len(images)} images through {settings.kafka.requests_topic}")
    stream_and_collect(settings, images, report, results_timeout, emit)
    report.review_waiting = sum("waits for review" in o for o in report.outcomes.values())
    publish_demo_table(settings, report)
    emit(f"Prefect UI: {stack.prefect_ui}/runs/flow-run/{report.retrain_run}")
    emit(f"MLflow UI:  {stack.mlflow_ui}/#/models/{settings.mlflow.registered_model}")
    emit(f"Review:     {stack.review_ui} ({report.review_waiting} uncertain images waiting; "
         f"log in with the token in {settings.paths.services / 'review' / 'token'})")  # fmt: skip


def publish_demo_table(settings: Settings, report: DemoReport) -> None:
    """Leave the per-image outcomes as a table artifact of a ``demo-report`` flow run."""
    from prefect import flow

    from stack.deploy import prefect_api
    from tasks.artifacts import publish_table, run_namer

    rows = [{"image": name, "outcome": outcome} for name, outcome in report.outcomes.items()]

    @flow(name="demo-report", flow_run_name=run_namer("demo-report"))
    def demo_report(rows: list[dict[str, str]], retrain_run: str, serve_run: str) -> None:
        publish_table(rows, key="demo-results", description="harmscan demo: one row per image")

    with prefect_api(settings.prefect.api_url):
        demo_report(rows, report.retrain_run, report.serve_run)
        # Send this process's queued logs and events now, while the server is surely up.
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker

        for service in (APILogWorker, EventsWorker):
            service.drain_all(timeout=10)
