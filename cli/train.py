"""``harmscan train|retrain|promote`` (only typer is imported at start; the rest lazily)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cli.context import settings_of, source_of, state_of
from cli.preflight import (
    checked_dataset,
    checked_options,
    checked_weights,
    mlflow_reachable,
    openimages_reachable,
    writable_root,
)
from harmscan.weights import ARCHS


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
    from cli.runtime import flow_runtime
    from flows.params import train_changes

    source = source_of(ctx)
    state = state_of(ctx)
    models, weights_of = _models(model), _weights(weights)
    # Before the training stack is imported (tens of seconds on a busy machine):
    chosen = checked_options(
        state.settings, train_changes(models, epochs, weights_of, limit_batches)
    )
    checked_weights(chosen)
    writable_root(chosen)
    checked_dataset(chosen, dataset)
    from flows.train import preflight, train

    preflight(chosen)  # weights and prior classes: settings errors, before the services
    mlflow_reachable(chosen)

    with flow_runtime(state.settings, state.verbose):
        results = train(
            source=source,
            dataset=dataset,
            models=models,
            epochs=epochs,
            weights=weights_of,
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
    from cli.runtime import flow_runtime
    from flows.params import etl_changes, train_changes

    source = source_of(ctx)
    state = state_of(ctx)
    models, weights_of = _models(model), _weights(weights)
    changes = train_changes(models, epochs, weights_of, limit_batches)
    chosen = checked_options(state.settings, {**changes, **etl_changes(max_per_side)})
    checked_weights(chosen, prior=True)
    writable_root(chosen)
    openimages_reachable(chosen)
    from flows.retrain import retrain
    from flows.train import preflight

    preflight(chosen)
    mlflow_reachable(chosen)

    with flow_runtime(state.settings, state.verbose):
        result = retrain(
            source=source,
            models=models,
            epochs=epochs,
            weights=weights_of,
            limit_batches=limit_batches,
            max_per_side=max_per_side,
            promote=promote,
        )
    _print_results([r.model_dump() for r in result.trained], f"dataset {result.dataset_version}")
    for decision in result.decisions:
        verdict = "PROMOTED" if decision.promoted else "kept champion"
        if decision.candidate_version == result.prior_version:
            verdict = "the untrained prior is CHAMPION"
        typer.echo(f"v{decision.candidate_version}: {verdict} — {decision.reason}")
    is_prior = result.prior_version is not None and result.champion_version == result.prior_version
    prior = " (the untrained prior)" if is_prior else ""
    typer.echo(f"champion: version {result.champion_version}{prior}")


def promote_command(
    ctx: typer.Context,
    version: Annotated[str | None, typer.Argument(help="Model version to make champion.")] = None,
    rollback: Annotated[
        bool, typer.Option(help="Move champion back to the version it replaced.")
    ] = False,
    gate: Annotated[
        bool,
        typer.Option(
            help="Run the whole promotion gate on VERSION (test split and gate set): it becomes "
            "champion if it passes, challenger if not."
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option(help="Move the alias without the photo gate (mlflow.gate_set).")
    ] = False,
    dataset: Annotated[
        Path | None, typer.Option(help="Dataset for --gate; default the ETL's latest.")
    ] = None,
    reason: Annotated[str, typer.Option(help="Why (recorded on the version).")] = "manual",
) -> None:
    """Move the champion alias by hand (VERSION or --rollback), or through the gate (--gate).

    With ``mlflow.gate_set`` configured, VERSION must not be worse than the champion or the
    untrained prior on the gate set (overall and per domain) unless --force; a rollback returns
    to the champion it replaced and does not re-run that gate. When nothing is champion and
    VERSION loses to the prior there, the prior becomes champion.
    """
    if version is not None and rollback:
        raise typer.BadParameter("give a VERSION or --rollback, not both")
    if version is None and not rollback:
        raise typer.BadParameter("give the VERSION to promote (or --rollback)")
    if gate and force:
        raise typer.BadParameter("--gate runs the gate and --force skips it: give one")
    settings = settings_of(ctx)
    if gate:
        dataset = checked_dataset(settings, dataset)
    from harmscan.gateset import resolve_photo_set

    gate_set = resolve_photo_set(settings.mlflow.gate_set, "mlflow.gate_set")  # before MLflow
    mlflow_reachable(settings)
    from registry import CHAMPION, Registry, RegistryError
    from tasks.promotion import force_champion, roll_back

    registry = Registry(settings.mlflow.tracking_uri)
    name = settings.mlflow.registered_model
    try:
        if rollback:
            if gate_set is not None:
                typer.echo(f"bypassing the photo gate ({settings.mlflow.gate_set}): a rollback")
            current, target = roll_back(registry, name, reason)
            typer.echo(f"{name}@{CHAMPION}: v{current} -> v{target} (rollback: {reason})")
            return
        assert version is not None
        if gate:
            _gate(settings, registry, version, dataset, gate_set, reason)
            return
        if gate_set is not None and not force:
            _photo_gated(settings, registry, version, reason, gate_set)
            return
        if gate_set is not None:
            typer.echo(f"bypassing the photo gate ({settings.mlflow.gate_set}): --force")
        previous = force_champion(registry, name, version, reason)
    except RegistryError as exc:
        raise typer.BadParameter(str(exc)) from None
    if previous == version:
        typer.echo(f"{name}@{CHAMPION}: v{version} is champion already; nothing changed")
        return
    typer.echo(f"{name}@{CHAMPION}: v{previous} -> v{version} ({reason})")


def _photo_gated(settings: Any, registry: Any, version: str, reason: str, gate_set: Path) -> None:
    """``promote VERSION`` with a gate set: the photo gate, then the alias (or the prior)."""
    from tasks.promotion import promote_by_hand

    ml = settings.mlflow
    name = ml.registered_model
    # Downloading and scoring three models on the gate set takes minutes on 2 cores: say so
    # before the wait (step by step with harmscan --verbose).
    typer.echo(f"photo gate: scoring v{version}, the champion and the untrained prior on "
               f"{gate_set} (minutes; --verbose shows each step)")  # fmt: skip
    result = promote_by_hand(
        registry, name, version, reason,
        gate_set=gate_set, metric=ml.promotion_metric, tolerance=ml.gate_tolerance,
    )  # fmt: skip
    if result.promoted:
        typer.echo(f"{name}@champion: v{result.champion_version} -> v{version} ({result.reason})")
        return
    typer.echo(f"{name} v{version}: NOT promoted — {result.reason}")
    _prior_fallback(registry, name, [result])
    typer.echo("use --force to move the alias without the photo gate")
    raise typer.Exit(1)


def _prior_fallback(registry: Any, name: str, results: list[Any]) -> None:
    from tasks.photogate import promote_prior_if_needed

    fallback = promote_prior_if_needed(registry, name, results)
    if fallback is not None:
        typer.echo(
            f"{name}@champion: the untrained prior v{fallback.candidate_version} "
            f"({fallback.reason})"
        )


def _gate(
    settings: Any,
    registry: Any,
    version: str,
    dataset: Path | None,
    gate_set: Path | None,
    reason: str,
) -> None:
    """``promote --gate``: run the promotion gate on ``version`` and print the verdict; the
    operator's ``--reason`` goes beside the gate's own (``promotion_note``)."""
    from flows.train import resolve_dataset
    from tasks.promotion import gate_policy, promote_candidate

    ml = settings.mlflow
    name = ml.registered_model
    folder = resolve_dataset(settings, dataset)
    result = promote_candidate(
        registry, name, version, folder, gate_policy(ml),
        gate_set=gate_set, gate_tolerance=ml.gate_tolerance,
    )  # fmt: skip
    registry.set_version_tags(name, version, {"promotion_note": reason})
    verdict = "PROMOTED" if result.promoted else "not promoted (challenger)"
    typer.echo(f"{name} v{version}: {verdict} — {result.reason}")
    if not result.promoted:
        if gate_set is not None:
            _prior_fallback(registry, name, [result])
        raise typer.Exit(1)  # a failed gate is an expected failure, as for the photo gate
