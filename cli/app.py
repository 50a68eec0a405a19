"""The `harmscan` console script.

The top-level app only resolves settings; each area registers its own commands from a small
module that imports nothing heavy at start (see `_register_areas`). Those command functions
import Prefect, Kafka or MLflow lazily, so ``harmscan --help`` stays fast. This package sits
above every other: nothing imports it but the console script.
"""

from __future__ import annotations

import itertools
import logging
import shlex
import sys
import traceback
from pathlib import Path
from typing import Annotated

import typer

from cli.context import CliState, settings_of
from conf.loader import dump_settings
from conf.redact import mask_credentials

app = typer.Typer(
    name="harmscan",
    help="Real-time harmful-image moderation: ETL, training, registry, Kafka serving.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="markdown",  # a docstring's wrapped lines join into one paragraph
)


@app.callback()
def _root(
    ctx: typer.Context,
    profile: Annotated[
        str | None, typer.Option(help="Settings profile (conf/profiles), default local.")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a setting: --set train.epochs=3 (repeatable)."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="Extra YAML settings file, in place of $HARMSCAN_CONFIG.")
    ] = None,
    verbose: Annotated[
        bool, typer.Option("-v", "--verbose", help="Debug logging and tracebacks on failure.")
    ] = False,
) -> None:
    from cli.runtime import quiet_defaults

    quiet_defaults()  # before anything imports Prefect
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    ctx.obj = CliState(profile, list(set_ or []), config, verbose)
    _LAST.clear()
    _LAST.append(ctx.obj)


@app.command("settings")
def show_settings(ctx: typer.Context) -> None:
    """Print the resolved settings, one dotted key per line (secrets masked)."""
    for key, value in dump_settings(settings_of(ctx)).items():
        print(f"{key} = {value}")


def _flags_show_no_value_in_help() -> None:
    """Help shows an on/off flag (``--fast/--full``, ``--help``) without a value column.

    typer 0.29 gives every option a type column, so a flag read as if it took one
    (``--help <bool>``); the column stays for options that take a value.
    """
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich
    if getattr(shown, "flags_hidden", False):
        return

    def display_type_rich(self: TyperOption, ctx: typer.Context) -> str | None:
        return None if self.is_flag and not self.count else shown(self, ctx)

    display_type_rich.flags_hidden = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


def _register_areas() -> None:
    import importlib

    _flags_show_no_value_in_help()
    # One small registration module per area, each owning its commands.
    for module in (
        "cli.kafka",  # harmscan kafka fetch|up|down|status
        "cli.mirror",  # harmscan mirror up|down|status (offline Open Images)
        "cli.stack",  # harmscan up|down|status|deploy|demo
        "cli.etl",  # harmscan etl
        "cli.train",  # harmscan train|retrain|promote
        "cli.evaluate",  # harmscan evaluate|imageset (versions scored on your own images)
        "cli.serve",  # harmscan serve|produce
        "cli.review",  # harmscan review (the reviewers' web page)
        "cli.dlq",  # harmscan dlq list|replay
    ):
        try:
            area = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        area.register(app)


# The state of the running invocation, for `main` to explain a failure after typer returns.
_LAST: list[CliState] = []


# harmscan's own options (the `_root` callback's), which go before the command.
_GLOBAL_WITH_VALUE = frozenset({"--profile", "--set", "--config"})
_GLOBAL_FLAGS = frozenset({"-v", "--verbose"})


def misplaced_global_options(argv: list[str]) -> str | None:
    """The fix for harmscan's own options written after the command (``harmscan settings
    --profile ci``), which the command would refuse as unknown; None when there are none.

    The fix is the same command line with those options (and their values) moved before it.
    """
    front: list[str] = []
    index = 0
    while index < len(argv) and argv[index].startswith("-"):  # options before the command
        takes_value = argv[index] in _GLOBAL_WITH_VALUE
        front += argv[index : index + 1 + takes_value]
        index += 1 + takes_value
    if index >= len(argv):
        return None
    moved: list[str] = []
    rest: list[str] = []
    words = iter(argv[index:])
    for word in words:
        if word == "--":  # everything after it is an argument
            rest += [word, *words]
            break
        name = word.split("=", 1)[0]
        if name in _GLOBAL_FLAGS or (name in _GLOBAL_WITH_VALUE and "=" in word):
            moved.append(word)
        elif name in _GLOBAL_WITH_VALUE:
            moved += [word, *itertools.islice(words, 1)]
        else:
            rest.append(word)
    if not moved:
        return None
    names = list(dict.fromkeys(t.split("=", 1)[0] for t in moved if t.startswith("-")))
    fixed = shlex.join(["harmscan", *front, *moved, *rest])
    if len(names) == 1:
        return f"{names[0]} is an option of harmscan itself: put it before the command: {fixed}"
    listed = f"{', '.join(names[:-1])} and {names[-1]}"
    return f"{listed} are options of harmscan itself: put them before the command: {fixed}"


def main() -> None:
    """Console-script entry point: an expected failure ends in one ``error:`` line (see
    `cli.failures` for the exit codes); the traceback only with ``--verbose``."""
    _register_areas()
    hint = misplaced_global_options(sys.argv[1:])
    if hint is not None:
        typer.secho(f"error: {hint}", fg="red", err=True)
        sys.exit(2)
    try:
        app()  # usage errors, typer.Exit and Ctrl-C end here, as click handles them
    except Exception as exc:
        sys.exit(_report(exc))


def _report(exc: Exception) -> int:
    from cli.failures import explain

    state = _LAST[0] if _LAST else None
    if state is not None and state.verbose:
        traceback.print_exc()
    settings = state.settings_if_resolved() if state is not None else None
    failure = explain(exc, settings)
    _drain_prefect_senders()
    typer.secho(f"error: {mask_credentials(failure.message)}", fg="red", err=True)
    return failure.code


# How long a failing command waits for Prefect's background senders before its last line.
_DRAIN_SECONDS = 10.0


def _drain_prefect_senders() -> None:
    """Let Prefect's event and log senders finish now, so whatever they print (such as
    "Still processing items") comes before the ``error:`` line, which stays the last one.

    Without this they drain at interpreter exit, after the line was printed. Nothing to do
    when the command never imported Prefect.
    """
    if "prefect" not in sys.modules:
        return
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for service in (EventsWorker, APILogWorker):
        service.drain_all(timeout=_DRAIN_SECONDS, at_exit=False)
