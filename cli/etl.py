"""``harmscan etl``: run the ETL flow and print its summary (only typer is imported at start)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.context import source_of, state_of


def register(app: typer.Typer) -> None:
    """Add the ``etl`` command to the harmscan app."""

    @app.command("etl")
    def etl_command(
        ctx: typer.Context,
        max_per_side: Annotated[
            int | None, typer.Option(help="Cap of images per side (etl.max_per_side).")
        ] = None,
        max_per_label: Annotated[
            int | None, typer.Option(help="Cap per source label (etl.max_per_label).")
        ] = None,
        seed: Annotated[int | None, typer.Option(help="Sampling and split seed.")] = None,
        subset: Annotated[
            list[str] | None,
            typer.Option(help="Open Images subset to read: train, validation, test (repeatable)."),
        ] = None,
    ) -> None:
        """Build the verified, balanced harmful/safe dataset from Open Images V7."""
        source = source_of(ctx)
        valid = ("train", "validation", "test")
        bad = [s for s in subset or [] if s not in valid]
        if bad:
            typer.secho(
                f"error: unknown subset {bad}; valid: {', '.join(valid)}", fg="red", err=True
            )
            raise typer.Exit(2)
        from cli.preflight import checked_options, openimages_reachable, writable_root
        from cli.runtime import flow_runtime
        from flows.params import etl_changes

        state = state_of(ctx)
        changes = etl_changes(max_per_side, max_per_label, seed, subset or None)  # type: ignore[arg-type]
        chosen = checked_options(state.settings, changes)
        writable_root(chosen)
        openimages_reachable(chosen)
        from flows.etl import etl

        with flow_runtime(state.settings, state.verbose):
            result = etl(
                source=source,
                max_per_side=max_per_side,
                max_per_label=max_per_label,
                seed=seed,
                subsets=subset or None,  # type: ignore[arg-type]
            )
        print_summary(result.model_dump(mode="json"))


def print_summary(result: dict[str, Any]) -> None:
    """Print the dataset summary as rich tables: per split and label, per source label, failures."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    summary = result["summary"]
    splits = Table(title=f"dataset {result['version']}  ({result['dataset_dir']})")
    for column in ("split", "harmful", "safe", "total"):
        splits.add_column(column, justify="right" if column != "split" else "left")
    for split, counts in summary["splits"].items():
        harmful, safe = counts.get("harmful", 0), counts.get("safe", 0)
        splits.add_row(split, str(harmful), str(safe), str(harmful + safe))
    console.print(splits)
    sources = Table(title="images per source label")
    for column in ("label", "source label", "images"):
        sources.add_column(column)
    for label, names in summary["source_labels"].items():
        for name, count in sorted(names.items(), key=lambda kv: -kv[1]):
            sources.add_row(label, name, str(count))
    console.print(sources)
    failures = Table(title="download/verification failures (excluded)")
    failures.add_column("reason")
    failures.add_column("images", justify="right")
    for reason, count in sorted(result["failures"].items()):
        failures.add_row(reason, str(count))
    console.print(failures if result["failures"] else "no download/verification failures")
    console.print(f"manifest: {result['manifest']}")
