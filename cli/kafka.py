"""``harmscan kafka fetch|up|down|status``: the local Apache Kafka broker from the command line.

Also ``python -m cli.kafka fetch|up|down|status`` (what ``./dev setup`` calls), through
`standalone`. Only typer is imported at module level; `stack.kafka` is loaded per command.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.context import CliState, settings_of
from cli.failures import fail

if TYPE_CHECKING:
    pass

kafka_app = typer.Typer(
    name="kafka",
    help="The local Apache Kafka broker (KRaft, one node on loopback, jars from Maven Central).",
    no_args_is_help=True,
)


@kafka_app.command("fetch")
def fetch_cmd(
    force: Annotated[bool, typer.Option(help="Fetch again even if the jars are current.")] = False,
) -> None:
    """Copy the Kafka broker jars from Maven Central into kafka/libs (seconds when cached)."""
    from stack.kafka_jars import KafkaSetupError, fetch

    try:
        libs = fetch(force=force)
    except KafkaSetupError as exc:
        raise fail(exc) from None
    typer.echo(f"kafka jars ready in {libs}")


@kafka_app.command("up")
def up_cmd(
    ctx: typer.Context,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for health.")] = 60.0,
) -> None:
    """Start the broker (formats its storage on first start) and wait until it answers."""
    from stack.kafka import broker_from_settings
    from stack.kafka_jars import KafkaSetupError
    from stack.process import ServiceError

    broker = broker_from_settings(settings_of(ctx))
    try:
        broker.start(timeout)
    except (KafkaSetupError, ServiceError) as exc:
        raise fail(exc) from None
    typer.echo(f"kafka up on {broker.bootstrap} (log {broker.process.log_file})")


@kafka_app.command("down")
def down_cmd(ctx: typer.Context) -> None:
    """Stop the broker; its data stays for the next start."""
    from stack.kafka import broker_from_settings

    broker = broker_from_settings(settings_of(ctx))
    typer.echo("kafka stopped" if broker.stop() else "kafka was not running")


@kafka_app.command("status")
def status_cmd(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """Show pid, health, address and log file; exits 1 when the broker is not healthy."""
    from stack.kafka import broker_from_settings

    status = broker_from_settings(settings_of(ctx)).status()
    if as_json:
        typer.echo(json.dumps(status))
    else:
        for key, value in status.items():
            typer.echo(f"{key}: {value}")
    if not status["healthy"]:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the ``kafka`` command group to the harmscan CLI."""
    app.add_typer(kafka_app, name="kafka")


def standalone() -> None:
    """``python -m cli.kafka``: the kafka commands with the global settings options."""
    import logging

    app = typer.Typer(
        name="cli.kafka",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )

    @app.callback()
    def _root(
        ctx: typer.Context,
        profile: Annotated[str | None, typer.Option(help="Settings profile.")] = None,
        set_: Annotated[
            list[str] | None, typer.Option("--set", help="Override a setting: a.b=c.")
        ] = None,
        config: Annotated[
            Path | None,
            typer.Option(help="Extra YAML settings file, in place of $HARMSCAN_CONFIG."),
        ] = None,
    ) -> None:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        ctx.obj = CliState(profile, list(set_ or []), config)

    for command in (fetch_cmd, up_cmd, down_cmd, status_cmd):
        app.command(command.__name__.removesuffix("_cmd"))(command)
    app()


if __name__ == "__main__":
    standalone()
