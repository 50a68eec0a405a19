"""``harmscan review``: the reviewers' web page on the review topic.

Only typer is imported here; FastAPI, Kafka and the store load inside the command.
"""

from __future__ import annotations

from typing import Annotated

import typer

from cli.context import settings_of
from cli.failures import USAGE, fail


def review(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to bind (default review.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default review.port).")] = None,
) -> None:
    """Serve the review page: uncertain images from the review topic, decisions to Kafka."""
    from conf.loader import update
    from review.auth import LoginNotConfigured
    from review.service import ReviewService

    changes = {f"review.{k}": v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = update(settings_of(ctx), changes)
    if settings.review.host not in ("127.0.0.1", "localhost", "::1"):
        typer.secho(
            f"note: the review page listens on {settings.review.host}, not loopback; "
            "put it behind TLS",
            fg="yellow",
            err=True,
        )
    try:
        service = ReviewService.build(settings)
    except LoginNotConfigured as exc:
        raise fail(exc, USAGE) from None
    service.run()


def register(app: typer.Typer) -> None:
    """Add ``harmscan review`` to the app."""
    app.command("review")(review)
