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


DatasetOpt = Annotated[Path | None, typer.Option(help="Dataset folder; default the ETL's latest.")]


def register(app: typer.Typer) -> None:
    """Add ``train``, ``retrain`` and ``promote`` to the harmscan app."""
    app.command("train")(train_command)
    app.command("retrain")(retrain_command)
    app.command("promote")(promote_command)


def train_command(
    ctx: typer.Context,
    model: ModelOpt = None,
    epochs: EpochsOpt = None,
    weights: WeightsOpt = None,
    limit_batches: LimitOpt = None,
    dataset: DatasetOpt = None,
    resume: Annotated[bool, typer.Option(help="Resume from the last checkpoint.")] = False,
    register_models: Annotated[
        bool, typer.Option("--register/--no-register", help="Register in MLflow.")
    ] = True,
) -> None:
    """Fine-tune, evaluate, log to MLflow and register the models."""
    from cli.app import source_of, state_of
    from cli.runtime import flow_runtime
    from flows.train import train

    source = source_of(ctx)
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
    from cli.app import source_of, state_of
    from cli.runtime import flow_runtime
    from flows.retrain import retrain

    source = source_of(ctx)
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
    _print_results([r.model_dump() for r in result.trained], f"dataset {result.dataset_version}")
    for decision in result.decisions:
        verdict = "PROMOTED" if decision.promoted else "kept champion"
        typer.echo(f"v{decision.candidate_version}: {verdict} — {decision.reason}")
    typer.echo(f"champion: version {result.champion_version}")


def promote_command(
    ctx: typer.Context,
    version: Annotated[str | None, typer.Argument(help="Model version to make champion.")] = None,
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
    from registry import CHAMPION, Registry, RegistryError
    from tasks.promotion import force_champion, rollback_target

    if (version is None) == (not rollback):
        raise typer.BadParameter("give a VERSION or --rollback (not both)")
    settings = settings_of(ctx)
    registry = Registry(settings.mlflow.tracking_uri)
    name = settings.mlflow.registered_model
    try:
        if rollback:
            current, version = rollback_target(registry, name)
            reason = f"rollback from v{current}: {reason}"
        assert version is not None
        if gate:
            _gate(settings, registry, version, dataset)
            return
        previous = force_champion(registry, name, version, reason)
    except RegistryError as exc:
        raise typer.BadParameter(str(exc)) from None
    typer.echo(f"{name}@{CHAMPION}: v{previous} -> v{version} ({reason})")


def _gate(settings: Any, registry: Any, version: str, dataset: Path | None) -> None:
    """``promote --gate``: run the promotion gate on ``version`` and print the verdict."""
    from flows.train import resolve_dataset
    from tasks.promotion import gate_policy, promote_candidate

    name = settings.mlflow.registered_model
    folder = resolve_dataset(settings, dataset)
    result = promote_candidate(registry, name, version, folder, gate_policy(settings.mlflow))
    verdict = "PROMOTED" if result.promoted else "not promoted (challenger)"
    typer.echo(f"{name} v{version}: {verdict} — {result.reason}")
