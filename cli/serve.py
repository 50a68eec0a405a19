"""``harmscan serve`` and ``harmscan produce``: the streaming side from the command line.

Only typer is imported here; Kafka, MLflow and the runtimes load inside the commands.
"""

from __future__ import annotations

import math
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.context import settings_of
from cli.failures import SERVING_FATAL, UNREACHABLE, USAGE, fail
from cli.preflight import checked_options, kafka_reachable

if TYPE_CHECKING:
    from conf.settings import Settings
    from serving.outcomes import Outcome, OutcomeReader


def _settings(ctx: typer.Context, **serving: Any) -> Settings:
    """The invocation's settings with the given ``serving.*`` options (None: not given)."""
    return checked_options(settings_of(ctx), {f"serving.{k}": v for k, v in serving.items()})


def serve(
    ctx: typer.Context,
    allowed_root: Annotated[
        list[Path] | None,
        typer.Option(
            help="Folder local image paths may resolve into (repeatable; adds to "
            "serving.allowed_roots)."
        ),
    ] = None,
    runtime: Annotated[
        str | None, typer.Option(help="Inference runtime: onnx (default) or torch.")
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Prometheus /metrics port (0 = any free port).")
    ] = None,
    max_messages: Annotated[
        int | None, typer.Option(help="Stop after this many requests (default: run until stopped).")
    ] = None,
) -> None:
    """Classify image requests from Kafka with the registry's champion until SIGTERM/Ctrl-C."""
    roots = list(settings_of(ctx).serving.allowed_roots) + list(allowed_root or [])
    settings = _settings(
        ctx, allowed_roots=roots or None, runtime=runtime, metrics_port=metrics_port
    )
    kafka_reachable(settings)
    from serving.fatal import ServingFatal
    from serving.model import ModelUnavailable
    from serving.service import run_consumer

    if not settings.serving.allowed_roots:
        typer.secho(
            "note: serving.allowed_roots is empty, so every path request will be refused "
            "(forbidden_path); pass --allowed-root DIR or --set serving.allowed_roots=[DIR]",
            fg="yellow",
            err=True,
        )
    try:
        run_consumer(settings, max_messages=max_messages)
    except ModelUnavailable as exc:
        raise fail(exc, UNREACHABLE) from None
    except ServingFatal as exc:  # its supervisor restarts it (docker compose: unless-stopped)
        raise fail(exc, SERVING_FATAL) from None


def produce(
    ctx: typer.Context,
    sources: Annotated[
        list[str],
        typer.Argument(
            help="Image files or folders to send, or s3://bucket/key objects (in a bucket of "
            "serving.allowed_buckets; the consumer reads them).",
            metavar="PATHS_OR_S3_URIS...",
        ),
    ],
    inline: Annotated[
        bool,
        typer.Option(
            help="Send local images' bytes (base64) instead of their paths (s3:// objects are "
            "always sent by URI)."
        ),
    ] = False,
    rate: Annotated[
        float | None, typer.Option(help="Requests per second (default: as fast as possible).")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    wait: Annotated[
        float | None,
        typer.Option(
            help="Then wait up to this many seconds for every request's result or dead letter "
            "and print one line per image (exit 1 if any is missing)."
        ),
    ] = None,
    json_lines: Annotated[
        bool,
        typer.Option(
            "--json",
            help="With --wait: print each answer as one JSON object per line (file, request_id, "
            "label, p_harmful, model_version, review, reason, detail).",
        ),
    ] = False,
) -> None:
    """Send classification requests for image files, folders or s3:// objects to Kafka."""
    from serving.producer import (
        MIN_RATE,
        iter_image_files,
        produce_files,
        split_sources,
        unlisted_buckets,
    )
    from serving.schema import log_safe

    settings = _settings(ctx)
    if wait is not None and not (math.isfinite(wait) and wait > 0):
        raise fail(ValueError(f"--wait must be a positive number of seconds, got {wait}"), USAGE)
    if rate is not None and not (math.isfinite(rate) and rate >= MIN_RATE):
        raise fail(
            ValueError(
                f"--rate must be a finite number of requests per second, at least {MIN_RATE} "
                f"(leave it out to send as fast as possible), got {rate}"
            ),
            USAGE,
        )
    if json_lines and wait is None:
        raise fail(ValueError("--json prints the answers: give --wait SECONDS too"), USAGE)
    try:
        given = split_sources(sources)
        files = list(iter_image_files(given.paths))  # a wrong path is named before Kafka is asked
        if given.paths and not files:
            shown = ", ".join(str(p) for p in given.paths)
            raise ValueError(f"no image file in {shown} (image suffixes are read in folders)")
        for bucket in unlisted_buckets(given.s3_uris, settings.serving.allowed_buckets):
            typer.secho(
                f"note: bucket {bucket!r} is not in serving.allowed_buckets here, so a consumer "
                "with these settings dead-letters its requests (forbidden_path)",
                fg="yellow",
                err=True,
            )
        kafka_reachable(settings)
        with ExitStack() as stack:
            # Opened before sending, the reader sees exactly the answers to these requests.
            reader = stack.enter_context(_outcome_reader(settings)) if wait is not None else None
            report = produce_files(
                settings,
                files,
                s3_uris=given.s3_uris,
                inline=inline,
                rate=rate,
                show_progress=progress,
            )
            sent = f"sent {len(report.sent)} requests to {settings.kafka.requests_topic}"
            typer.echo(sent, err=json_lines)  # with --json, stdout holds only the answers
            for path, error in report.failed.items():
                typer.secho(f"failed: {log_safe(path)}: {error}", fg="red", err=True)
            missing = (
                _print_outcomes(reader, report.sent, wait, as_json=json_lines)
                if reader and wait
                else []
            )
    except (FileNotFoundError, ValueError) as exc:
        raise fail(exc, USAGE) from None
    for path in missing:
        typer.secho(f"no answer within {wait:g} s: {log_safe(path)}", fg="red", err=True)
    if report.failed or missing:
        raise typer.Exit(1)


def _outcome_reader(settings: Settings) -> OutcomeReader:
    from serving.outcomes import OutcomeReader
    from serving.topics import ensure_serving_topics

    ensure_serving_topics(settings)
    return OutcomeReader(settings)


def _print_outcomes(
    reader: OutcomeReader, sent: dict[str, str], wait: float, *, as_json: bool = False
) -> list[str]:
    """Print each sent file's outcome as it arrives (a line, or a JSON object per line); the
    files still without one after ``wait``."""
    import dataclasses
    import json

    from serving.schema import log_safe

    path_of = {request_id: path for path, request_id in sent.items()}

    def show(outcome: Outcome) -> None:
        if as_json:
            record = {"file": path_of[outcome.request_id], **dataclasses.asdict(outcome)}
            typer.echo(json.dumps(record, ensure_ascii=True))  # escaped: one line per outcome
            return
        line = f"{log_safe(path_of[outcome.request_id])} -> {outcome.describe()}"
        typer.secho(line, fg="red" if outcome.rejected else None)

    outcomes = reader.collect(path_of, wait, on_outcome=show)
    return [path for request_id, path in path_of.items() if request_id not in outcomes]


def register(app: typer.Typer) -> None:
    """Add ``serve`` and ``produce`` to the harmscan app."""
    app.command("serve")(serve)
    app.command("produce")(produce)
