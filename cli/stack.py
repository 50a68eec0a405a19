"""``harmscan up|down|status|deploy|demo``: the local stack, the deployments and the demo.

Only typer is imported here; the stack, Prefect and the demo load inside each command.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from cli.context import settings_of
from cli.failures import UNREACHABLE, USAGE, fail

if TYPE_CHECKING:
    from conf.settings import Settings
    from stack.local import MemberStatus


def _settings(ctx: typer.Context) -> Settings:
    import logging

    # One line per HTTP call to the Prefect API drowns the demo's own lines.
    for noisy in ("httpx", "prefect.client"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return settings_of(ctx)


def _line(status: MemberStatus) -> str:
    state = "healthy" if status.healthy else ("UNHEALTHY" if status.running else "stopped")
    pids = ",".join(str(p) for p in status.pids) or "-"
    return f"{status.name:<15} {state:<9} pid {pids:<13} {status.address}"


def up(
    ctx: typer.Context,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each service.")] = 180.0,
) -> None:
    """Start Kafka, MLflow, the mirror (source mirror), the Prefect server, a worker and the
    review page."""
    from stack.local import LocalStack
    from stack.process import ServiceError

    stack = LocalStack(_settings(ctx))
    try:
        stack.up(timeout, on_ready=lambda status: typer.echo(_line(status)))
    except ServiceError as exc:
        raise fail(exc) from None
    typer.echo(
        f"Prefect UI: {stack.prefect_ui}   MLflow UI: {stack.mlflow_ui}   Review: {stack.review_ui}"
    )
    typer.echo(f"logs: {stack.services_dir}/*.log   stop with: harmscan down")


def down(
    ctx: typer.Context,
    timeout: Annotated[
        float, typer.Option(help="Seconds each service gets after SIGTERM before SIGKILL.")
    ] = 10.0,
) -> None:
    """Stop every service of the local stack (data stays for the next `up`)."""
    from stack.local import LocalStack

    stopped = LocalStack(_settings(ctx)).down(timeout)
    if not stopped:
        typer.echo("nothing was running")
        return
    typer.echo(f"stopped: {', '.join(s.name for s in stopped)}")
    for item in stopped:
        if item.killed:
            pids = ", ".join(map(str, item.killed))
            typer.echo(f"killed {item.name} (pids {pids}): it ignored SIGTERM for {timeout:g}s")


def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """Show each service's pid, health, address and log; exit 1 unless all are healthy."""
    from dataclasses import asdict

    from stack.local import LocalStack

    settings = _settings(ctx)
    stack = LocalStack(settings)
    statuses = stack.status()
    if as_json:
        typer.echo(json.dumps([asdict(s) for s in statuses], indent=2))
    else:
        for item in statuses:
            typer.echo(_line(item))
            for log in item.logs:
                typer.echo(f"{'':<15} log {log}")
    services = settings.paths.services
    if not any(s.running for s in statuses) and not services.is_dir():
        typer.secho(
            f"note: no stack was started with paths.root {settings.paths.root} ({services} does "
            "not exist; a relative paths.root is read from the current folder): run status "
            "from the folder that ran `harmscan up`, or --set paths.root=THAT/.harmscan",
            fg="yellow",
            err=True,
        )
    changed = stack.changed_settings()
    if changed:
        typer.secho(
            "note: the stack runs with other settings than these, and its health was checked "
            "at the asked addresses:\n  " + "\n  ".join(changed) + "\nrun status with the "
            "settings the stack was started with",
            fg="yellow",
            err=True,
        )
    if not all(s.healthy for s in statuses):
        raise typer.Exit(1)


def deploy(
    ctx: typer.Context,
    flow: Annotated[
        list[str] | None,
        typer.Option("--flow", help="Deploy only these (repeatable): etl, train, retrain, serve."),
    ] = None,
) -> None:
    """Register the etl, train, retrain (nightly) and serve deployments on the work pool.

    With the local stack running (`harmscan up`), the deployments use its service addresses.
    """
    from stack.deploy import FLOWS, DeployError, PrefectUnreachable, deploy, validate_schedule
    from stack.local import LocalStack

    unknown = sorted(set(flow or ()) - set(FLOWS))
    if unknown:
        raise fail(f"unknown flows {unknown}; valid: {', '.join(FLOWS)}", USAGE)
    settings = _settings(ctx)
    try:  # a bad cron string or time zone is a bad setting (exit 2), found before any server
        validate_schedule(settings.prefect.retrain_cron, settings.prefect.timezone)
    except DeployError as exc:
        raise fail(exc, USAGE) from None
    stack = LocalStack(settings)
    if stack.running():
        changed = stack.changed_settings()
        if changed:  # the flow runs' settings file would point them where nothing listens
            raise fail(
                f"the local stack in {stack.services_dir} runs with other settings:\n  "
                + "\n  ".join(changed)
                + "\ndeploy with the settings it was started with",
                USAGE,
            )
        settings = stack.settings
    try:
        deployed = deploy(settings, flow or FLOWS)
    except PrefectUnreachable as exc:
        raise fail(exc, UNREACHABLE) from None
    except DeployError as exc:
        raise fail(exc) from None
    for name, deployment_id in deployed.items():
        typer.echo(f"deployed {name} ({deployment_id})")
    typer.echo(
        f"retrain runs on '{settings.prefect.retrain_cron}' ({settings.prefect.timezone}); "
        f"work pool {settings.prefect.work_pool}"
    )


def demo(
    ctx: typer.Context,
    source: Annotated[
        Literal["mirror", "openimages"] | None,
        typer.Option(help="Open Images source: mirror (offline, default) or openimages."),
    ] = None,
    keep: Annotated[
        bool, typer.Option("--keep/--down", help="Leave the stack running afterwards.")
    ] = True,
    fast: Annotated[
        bool,
        typer.Option(
            "--fast/--full",
            help="fast: train on 160 px images for at most 3 epochs (about 5 min on 2 idle cores); "
            "full: the profile's training settings (the same 160 px by default, 4 epochs).",
        ),
    ] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the retrain run.")] = 1800.0,
) -> None:
    """The main job end to end: stack up, retrain, promote, serve, stream images, show results.

    Prints the champion version and whether it is the untrained prior (gate set: mlflow.gate_set).
    """
    from cli.preflight import checked_weights

    settings = _settings(ctx)
    checked_weights(settings, prior=True)  # before the stack starts: the retrain would fail later
    from stack.demo import DemoError, run_demo
    from stack.deploy import DeployError
    from stack.process import ServiceError

    try:
        run_demo(
            settings, source=source, keep=keep, fast=fast, retrain_timeout=timeout, emit=typer.echo
        )
    except (DemoError, DeployError, ServiceError) as exc:
        raise fail(exc) from None


def register(app: typer.Typer) -> None:
    """Add the stack commands to the ``harmscan`` app."""
    for command in (up, down, status, deploy, demo):
        app.command(command.__name__)(command)
