"""``harmscan train|retrain|promote`` (only typer is imported at start; the rest lazily)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

ARCHS = ("mobilenet_v2", "resnet50")


def _weights(items: list[str] | None) -> dict[str, str] | None:
    """``arch=value`` options into a dict, refusing unknown architectures."""
    if not items:
        return None
    out = {}
    for item in items:
        arch, sep, value = item.partition("=")
        if not sep or arch not in ARCHS:
            raise typer.BadParameter(
                f"{item!r}: expected ARCH=imagenet|none|PATH with ARCH one of {', '.join(ARCHS)}"
            )
        out[arch] = value
    return out


def _models(models: list[str] | None) -> Any:
    """Validated architecture names (the flows' ``list[Arch]``), or None for the default."""
    bad = [m for m in models or [] if m not in ARCHS]
    if bad:
        raise typer.BadParameter(f"unknown model {bad}; valid: {', '.join(ARCHS)}")
    return models or None


def _print_results(rows: list[dict[str, Any]], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in ("model", "version", "auc", "f1", "recall", "accuracy", "threshold", "run"):
        table.add_column(column)
    for r in rows:
        m = r["test_metrics"]
        table.add_row(
            r["arch"],
            str(r["version"]),
            f"{m['auc']:.4f}",
            f"{m['f1']:.4f}",
            f"{m['recall']:.4f}",
            f"{m['accuracy']:.4f}",
            f"{r['threshold']:.4f}",
            r["run_id"][:12],
        )
    Console(width=max(100, Console().width)).print(table)


ModelOpt = Annotated[
    list[str] | None, typer.Option("--model", help="mobilenet_v2 or resnet50 (repeatable).")
]
EpochsOpt = Annotated[int | None, typer.Option(help="Override train.epochs.")]
WeightsOpt = Annotated[
    list[str] | None,
    typer.Option("--weights", help="ARCH=imagenet|none|PATH (repeatable)."),
]
LimitOpt = Annotated[int | None, typer.Option(help="Train on at most N batches per epoch.")]


def register(app: typer.Typer) -> None:
    """Add ``train``, ``retrain`` and ``promote`` to the harmscan app."""

    @app.command("train")
    def train_command(
        ctx: typer.Context,
        model: ModelOpt = None,
        epochs: EpochsOpt = None,
        weights: WeightsOpt = None,
        limit_batches: LimitOpt = None,
        dataset: Annotated[
            Path | None, typer.Option(help="Dataset folder; default the ETL's latest.")
        ] = None,
        resume: Annotated[bool, typer.Option(help="Resume from the last checkpoint.")] = False,
        register_models: Annotated[
            bool, typer.Option("--register/--no-register", help="Register in MLflow.")
        ] = True,
    ) -> None:
        """Fine-tune, evaluate, log to MLflow and register the models."""
        from cli.app import source_of

        source = source_of(ctx)
        from cli.app import state_of
        from cli.runtime import flow_runtime
        from flows.train import train

        state = state_of(ctx)
        with flow_runtime(state.settings, state.verbose):
            results = train(
                source=source,
                dataset=dataset,
                models=_models(model),
                epochs=epochs,
                weights=_weights(weights),
                limit_batches=limit_batches,
                register_models=register_models,
                resume=resume,
            )
        _print_results([r.model_dump() for r in results], "trained")

    @app.command("retrain")
    def retrain_command(
        ctx: typer.Context,
        model: ModelOpt = None,
        epochs: EpochsOpt = None,
        weights: WeightsOpt = None,
        limit_batches: LimitOpt = None,
        max_per_side: Annotated[int | None, typer.Option(help="Override etl.max_per_side.")] = None,
        promote: Annotated[bool, typer.Option(help="Run the promotion gate.")] = True,
    ) -> None:
        """ETL -> train -> evaluate -> register -> promote, as one Prefect flow."""
        from cli.app import source_of

        source = source_of(ctx)
        from cli.app import state_of
        from cli.runtime import flow_runtime
        from flows.retrain import retrain

        state = state_of(ctx)
        with flow_runtime(state.settings, state.verbose):
            result = retrain(
                source=source,
                models=_models(model),
                epochs=epochs,
                weights=_weights(weights),
                limit_batches=limit_batches,
                max_per_side=max_per_side,
                promote=promote,
            )
        _print_results(
            [r.model_dump() for r in result.trained], f"dataset {result.dataset_version}"
        )
        for decision in result.decisions:
            verdict = "PROMOTED" if decision["promoted"] else "kept champion"
            typer.echo(f"v{decision['candidate_version']}: {verdict} — {decision['reason']}")
        typer.echo(f"champion: version {result.champion_version}")

    @app.command("promote")
    def promote_command(
        ctx: typer.Context,
        version: Annotated[
            str | None, typer.Argument(help="Model version to make champion.")
        ] = None,
        rollback: Annotated[
            bool, typer.Option(help="Move champion back to the version it replaced.")
        ] = False,
        gate: Annotated[
            bool, typer.Option(help="Run the promotion gate instead of forcing the alias.")
        ] = False,
        dataset: Annotated[
            Path | None, typer.Option(help="Dataset for --gate; default the ETL's latest.")
        ] = None,
        reason: Annotated[str, typer.Option(help="Why (recorded on the version).")] = "manual",
    ) -> None:
        """Move the champion alias by hand (VERSION or --rollback), or gate VERSION (--gate)."""
        from cli.app import settings_of

        settings = settings_of(ctx)
        if (version is None) == (not rollback):
            raise typer.BadParameter("give a VERSION or --rollback (not both)")
        _promote(settings, version, rollback=rollback, gate=gate, dataset=dataset, reason=reason)


def _promote(
    settings: Any,
    version: str | None,
    *,
    rollback: bool,
    gate: bool,
    dataset: Path | None,
    reason: str,
) -> None:
    import mlflow

    from tasks.registry import CHAMPION, alias_version, force_champion, promote_candidate

    ml = settings.mlflow
    mlflow.set_tracking_uri(ml.tracking_uri)
    name = ml.registered_model
    if rollback:
        client = mlflow.MlflowClient()
        current = alias_version(client, name, CHAMPION)
        if current is None:
            raise typer.BadParameter(f"{name} has no champion to roll back")
        previous = client.get_model_version(name, current).tags.get("promotion_champion_version")
        if not previous or previous == "none":
            raise typer.BadParameter(f"{name} v{current} records no earlier champion")
        version, reason = previous, f"rollback from v{current}: {reason}"
    assert version is not None
    if gate:
        from flows.train import resolve_dataset

        result = promote_candidate(
            name,
            version,
            resolve_dataset(settings, dataset),
            metric=ml.promotion_metric,
            floors=dict(ml.floors),
            min_improvement=ml.min_improvement,
        )
        verdict = "PROMOTED" if result["promoted"] else "not promoted (challenger)"
        typer.echo(f"{name} v{version}: {verdict} — {result['reason']}")
        return
    previous_champion = force_champion(name, version, reason)
    typer.echo(f"{name}@{CHAMPION}: v{previous_champion} -> v{version} ({reason})")
