"""The ``train`` flow: fine-tune the chosen architectures on a dataset, log and register each.

It only orchestrates: settings in, one `tasks.training.train_task` per architecture, results out.
"""

from __future__ import annotations

import logging
from pathlib import Path

from prefect import flow, get_run_logger

from conf.loader import SettingsSource
from conf.settings import Arch, Settings
from flows.common import failure_note, resolve, time_limit
from flows.params import train_changes
from harmscan.datasetdir import dataset_folder
from tasks.artifacts import (
    publish_domain_metrics,
    publish_metrics,
    publish_mlflow_links,
    run_namer,
)
from tasks.training import TrainResult, train_task


def resolve_dataset(settings: Settings, dataset: Path | None) -> Path:
    """The given dataset folder, or the latest one the ETL made."""
    return dataset_folder(settings.paths.data / "datasets", dataset)


def preflight(settings: Settings) -> None:
    """Fail before any work on a bad weights setting or an unknown ImageNet prior class."""
    from harmscan.weights import resolve_weights

    for arch in settings.train.models:
        resolve_weights(arch, settings.train.weights.get(arch, "none"))
    if settings.train.head in ("prior", "prior-gated"):
        from harmscan.heads import imagenet_rows

        imagenet_rows(settings.train.prior_classes)  # an unknown name fails with suggestions


@flow(
    name="train",
    flow_run_name=run_namer("train"),
    validate_parameters=True,
    on_failure=[failure_note],
)
def train(
    source: SettingsSource | None = None,
    dataset: Path | None = None,
    models: list[Arch] | None = None,
    epochs: int | None = None,
    weights: dict[str, str] | None = None,
    limit_batches: int | None = None,
    register_models: bool = True,
    resume: bool = False,
) -> list[TrainResult]:
    """Train, evaluate, log and register each architecture in ``train.models``.

    Args:
        source: Profile, extra file and typed overrides (the CLI and ``retrain`` pass theirs);
            None: the profile and file this process names.
        dataset: Dataset folder (manifest + images); default: the ETL's latest.
        models: Override ``train.models``.
        epochs: Override ``train.epochs``.
        weights: Override ``train.weights`` per architecture (``imagenet``, a path, ``none``).
        limit_batches: Override ``train.limit_batches`` (smoke runs).
        register_models: Register each model in ``mlflow.registered_model``.
        resume: Resume from the checkpoint of the same architecture and dataset.

    Returns:
        One `TrainResult` per architecture (run id, version, test metrics).
    """
    settings = resolve(source, train_changes(models, epochs, weights, limit_batches))
    with time_limit(settings, "train"):
        return _train(settings, dataset, register_models=register_models, resume=resume)


def _train(
    settings: Settings, dataset: Path | None, *, register_models: bool, resume: bool
) -> list[TrainResult]:
    logger = get_run_logger()
    # Per-epoch lines come from harmscan.trainer at INFO; a worker's root logger stops at WARNING,
    # so without this a long training run shows no progress in the Prefect UI.
    logging.getLogger("harmscan").setLevel(logging.INFO)
    preflight(settings)
    folder = resolve_dataset(settings, dataset)
    logger.info("training %s on %s", settings.train.models, folder)
    results = [
        train_task(settings, arch, folder, register=register_models, resume=resume)
        for arch in settings.train.models
    ]
    publish_metrics({r.arch: r.test_metrics for r in results}, key="train-test-metrics")
    publish_domain_metrics(
        settings.mlflow.tracking_uri,
        {r.arch: r.run_id for r in results},
        key="train-domain-metrics",
    )
    publish_mlflow_links(
        settings.mlflow.tracking_uri,
        runs={r.arch: (r.experiment_id, r.run_id) for r in results},
        model_name=settings.mlflow.registered_model if register_models else None,
        versions={r.arch: r.version for r in results if r.version} if register_models else None,
    )
    return results
