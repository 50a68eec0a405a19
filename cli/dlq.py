"""``harmscan dlq list|replay``: the dead-letter topic from the command line.

Only typer is imported here; `serving.dlq` (Kafka) loads inside the commands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from cli.context import settings_of
from cli.failures import USAGE, fail
from cli.preflight import kafka_reachable

if TYPE_CHECKING:
    from conf.settings import Settings
    from serving.dlq import DeadLetter

dlq_app = typer.Typer(
    name="dlq",
    help="Dead letters: list them by reason, replay chosen ones to the requests topic.",
    no_args_is_help=True,
)


def _offset(text: str) -> tuple[int, int]:
    partition, _, offset = text.partition(":")
    if not (partition.isdigit() and offset.isdigit()):
        raise typer.BadParameter(f"{text!r}: give PARTITION:OFFSET, e.g. 0:42")
    return int(partition), int(offset)


def _reasons(values: list[str] | None) -> list[str]:
    """The --reason values, each a dead-letter reason the consumer writes (else exit 2)."""
    from conf.keys import did_you_mean
    from serving.headers import REJECT_REASONS

    unknown = [v for v in values or [] if v not in REJECT_REASONS]
    if unknown:
        named = ", ".join(f"{v!r}{did_you_mean(v, REJECT_REASONS)}" for v in unknown)
        typer.secho(
            f"error: unknown dead-letter reason {named}; valid: {', '.join(REJECT_REASONS)}",
            fg="red",
            err=True,
        )
        raise typer.Exit(2)
    return list(values or [])


@dlq_app.command("list")
def list_cmd(
    ctx: typer.Context,
    reason: Annotated[
        list[str] | None, typer.Option(help="Show only this reason (repeatable).")
    ] = None,
    limit: Annotated[int, typer.Option(min=0, help="Dead letters shown (0: counts only).")] = 20,
) -> None:
    """Count the dead letters by reason and show the latest ones."""
    from serving.dlq import count_by_reason, latest, replayed_marks, select
    from serving.schema import log_safe

    reason = _reasons(reason)
    settings = settings_of(ctx)
    letters = _dead_letters(settings)
    if reason:
        letters = select(letters, reasons=reason)
    marks = replayed_marks(settings)
    typer.echo(f"{len(letters)} dead letters in {settings.kafka.dead_letter_topic}")
    for name, count in count_by_reason(letters).items():
        typer.echo(f"  {log_safe(name):<20} {count}")
    for letter in latest(letters, limit):
        mark = f"{settings.kafka.dead_letter_topic}/{letter.partition}/{letter.offset}"
        flags = " [replayed]" if mark in marks else ""
        flags += " [cut]" if letter.truncated else ""
        # The detail quotes the request (a path, say): escaped, so it cannot drive the terminal.
        typer.echo(
            f"{letter.partition}:{letter.offset}  {log_safe(letter.reason):<18} "
            f"id={log_safe(letter.request_id) or '-'}  {log_safe(letter.detail[:80])}{flags}"
        )


@dlq_app.command("replay")
def replay_cmd(
    ctx: typer.Context,
    reason: Annotated[
        list[str] | None, typer.Option(help="Replay this reason (repeatable).")
    ] = None,
    request_id: Annotated[
        list[str] | None, typer.Option("--id", help="Replay this request id (repeatable).")
    ] = None,
    offset: Annotated[
        list[str] | None,
        typer.Option(help="Replay the dead letter at PARTITION:OFFSET (repeatable)."),
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Only say what would be replayed.")] = False,
) -> None:
    """Send chosen dead letters back to the requests topic (each dead letter at most once)."""
    from serving.dlq import replay, select

    if not (reason or request_id or offset):
        typer.secho(
            "error: choose dead letters with --reason, --id or --offset", fg="red", err=True
        )
        raise typer.Exit(2)
    reason = _reasons(reason)
    offsets = [_offset(o) for o in offset or []]
    settings = settings_of(ctx)
    chosen = select(
        _dead_letters(settings), reasons=reason or (), ids=request_id or (), offsets=offsets
    )
    if not chosen:
        raise fail(
            f"no dead letter in {settings.kafka.dead_letter_topic} matches "
            f"{_choice(reason, request_id, offset)}; `harmscan dlq list` shows them"
        )
    report = replay(settings, chosen, dry_run=dry_run)
    verb = "would replay" if dry_run else "replayed"
    typer.echo(f"{verb} {len(report.replayed)} to {settings.kafka.requests_topic}; "
               f"{len(report.already)} already replayed, {len(report.truncated)} cut (not "
               "replayable)")  # fmt: skip


def _dead_letters(settings: Settings) -> list[DeadLetter]:
    """Every dead letter now in the topic, once the brokers answered (else exit 3) and the topic
    was found (else exit 2: the setting names a topic nothing made)."""
    from kafkaio.reading import MissingTopic
    from serving.dlq import read_dead_letters

    kafka_reachable(settings)
    try:
        return read_dead_letters(settings)
    except MissingTopic as exc:
        raise fail(
            f"the dead-letter topic {exc.topic} does not exist (kafka.dead_letter_topic); "
            "`harmscan serve` and `harmscan produce` create the serving topics, or set "
            "kafka.dead_letter_topic to the one they use",
            USAGE,
        ) from None


def _choice(reasons: list[str] | None, ids: list[str] | None, offsets: list[str] | None) -> str:
    """The chosen dead letters in words (escaped: ids are the user's own text)."""
    from serving.schema import log_safe

    named = [("--reason", reasons), ("--id", ids), ("--offset", offsets)]
    return " or ".join(f"{flag} {log_safe(v)}" for flag, values in named for v in values or [])


def register(app: typer.Typer) -> None:
    """Add the ``dlq`` command group to the harmscan CLI."""
    app.add_typer(dlq_app, name="dlq")
