"""``harmscan mirror up|down|status``: the offline Open Images mirror from the command line.

``up`` starts the metadata HTTP server and the S3 server on ``stack.metadata_port`` and
``stack.s3_port`` and seeds ``openimages.bucket`` from ``mirror/images``; the ``local`` profile
points ``openimages.metadata_base_url`` and ``openimages.s3_endpoint_url`` at them. Only typer is
imported at module level; `stack.mirror` (and boto3) are loaded per command.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.context import settings_of
from cli.failures import FAILED, fail

if TYPE_CHECKING:
    from conf.settings import Settings
    from stack.mirror import MirrorServers

mirror_app = typer.Typer(
    name="mirror",
    help="The offline Open Images mirror: OIDv7 metadata over HTTP and images over S3 (moto).",
    no_args_is_help=True,
)


def _servers(settings: Settings) -> MirrorServers:
    from stack.mirror import servers_from_settings

    return servers_from_settings(settings)


@mirror_app.command("up")
def up_cmd(
    ctx: typer.Context,
    images: Annotated[
        Path | None, typer.Option(help="Folder of images to seed (default mirror/images).")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for health.")] = 60.0,
) -> None:
    """Start both servers, seed the bucket, and print the settings that point at them."""
    from stack.mirror import MIRROR_DIR, mirror_overrides
    from stack.mirror_s3 import seed_bucket
    from stack.process import ServiceError

    settings = settings_of(ctx)
    servers = _servers(settings)
    try:
        servers.start(timeout)
        count = seed_bucket(
            servers.s3_endpoint,
            settings.openimages.bucket,
            images or MIRROR_DIR / "images",
            settings.openimages.region,
        )
    except (ServiceError, OSError) as exc:
        raise fail(exc, FAILED) from None
    typer.echo(f"metadata: {servers.metadata_url}")
    typer.echo(
        f"s3:       {servers.s3_endpoint} (bucket {settings.openimages.bucket}, {count} objects)"
    )
    overrides = mirror_overrides(
        servers.metadata_url, servers.s3_endpoint, settings.openimages.bucket
    )
    typer.echo("settings: " + " ".join(f"--set {item}" for item in overrides))


@mirror_app.command("down")
def down_cmd(ctx: typer.Context) -> None:
    """Stop both servers (the S3 server keeps its objects in memory: they go with it)."""
    stopped = _servers(settings_of(ctx)).stop()
    typer.echo(f"stopped {', '.join(stopped)}" if stopped else "mirror was not running")


@mirror_app.command("status")
def status_cmd(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """Show pid, health, URL and log of both servers; exits 1 unless both are healthy."""
    status = _servers(settings_of(ctx)).status()
    if as_json:
        typer.echo(json.dumps(status))
    else:
        for name, info in status.items():
            state = "healthy" if info["healthy"] else "down"
            typer.echo(f"{name}: {state} {info['url']} pid={info['pid']} log={info['log']}")
    if not all(info["healthy"] for info in status.values()):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the ``mirror`` command group to the harmscan CLI."""
    app.add_typer(mirror_app, name="mirror")
