"""The ``retrain`` flow: ETL -> train both architectures -> evaluate -> register -> promote.

Candidates are gated one after the other against the current champion on the new dataset's test
split, so the best model that beats the champion ends up as ``champion``. With a photo gate set,
when nothing is champion, no candidate was promoted and one was refused as worse than the
untrained prior there, the prior becomes champion (``promotion_decision=fallback``).
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger
from pydantic import BaseModel

from conf.loader import SettingsSource
from conf.settings import Arch, Settings
from flows.common import failure_note, resolve, time_limit
from flows.etl import etl
from flows.params import etl_changes, train_changes
from flows.train import preflight, train
from harmscan.gateset import resolve_photo_set
from harmscan.promotion import PromotionResult
from registry import CHAMPION, Registry
from tasks.artifacts import run_namer
from tasks.photogate import prior_fallback_task
from tasks.promotion import gate_policy, promote_task
from tasks.training import TrainResult, ensure_prior_task


class RetrainResult(BaseModel):
    """What one retrain did."""

    dataset_version: str
    dataset_dir: Path
    trained: list[TrainResult]
    decisions: list[PromotionResult]
    champion_version: str | None
    prior_version: str | None = None


@flow(
    name="retrain",
    flow_run_name=run_namer("retrain"),
    validate_parameters=True,
    on_failure=[failure_note],
)
def retrain(
    source: SettingsSource | None = None,
    models: list[Arch] | None = None,
    epochs: int | None = None,
    weights: dict[str, str] | None = None,
    limit_batches: int | None = None,
    max_per_side: int | None = None,
    seed: int | None = None,
    promote: bool = True,
) -> RetrainResult:
    """Rebuild the dataset, train and register every model, and run the promotion gate.

    Args:
        source: Profile, extra file and typed overrides; None: the profile and file this
            process names. The ETL and train subflows get it with this flow's parameters added.
        models: Override ``train.models``.
        epochs: Override ``train.epochs``.
        weights: Override ``train.weights`` per architecture.
        limit_batches: Override ``train.limit_batches`` (smoke runs).
        max_per_side: Override ``etl.max_per_side``.
        seed: Override ``etl.seed``.
        promote: Run the promotion gate (else only register).

    Returns:
        Dataset version, training results, promotion decisions, and the champion version.
    """
    changes = {
        **train_changes(models, epochs, weights, limit_batches),
        **etl_changes(max_per_side=max_per_side, seed=seed),
    }
    source = (source or SettingsSource()).with_overrides(changes)
    settings = resolve(source)
    with time_limit(settings, "retrain"):
        return _retrain(source, settings, promote=promote)


def _retrain(source: SettingsSource, settings: Settings, *, promote: bool) -> RetrainResult:
    logger = get_run_logger()
    preflight(settings)  # a bad weights setting fails now, not after the ETL
    data = etl(source=source)
    trained = train(source=source, dataset=data.dataset_dir, register_models=True)
    decisions: list[PromotionResult] = []
    name = settings.mlflow.registered_model
    prior = None
    if promote:
        ml = settings.mlflow
        policy = gate_policy(ml)
        gate_set = resolve_photo_set(ml.gate_set, "mlflow.gate_set")
        if gate_set is not None:
            prior = ensure_prior_task(settings, data.dataset_dir)  # the reference, once
        for result in trained:
            assert result.version is not None
            decisions.append(
                promote_task(
                    ml.tracking_uri,
                    name,
                    result.version,
                    data.dataset_dir,
                    policy,
                    gate_set=gate_set,
                    gate_tolerance=ml.gate_tolerance,
                )
            )
        if gate_set is not None:
            fallback = prior_fallback_task(ml.tracking_uri, name, decisions)
            if fallback is not None:
                decisions.append(fallback)
    champion = _champion(settings)
    logger.info("retrain done: dataset %s, champion %s v%s", data.version, name, champion)
    return RetrainResult(
        dataset_version=data.version,
        dataset_dir=data.dataset_dir,
        trained=trained,
        decisions=decisions,
        champion_version=champion,
        prior_version=prior,
    )


def _champion(settings: Settings) -> str | None:
    ml = settings.mlflow
    return Registry(ml.tracking_uri).alias_version(ml.registered_model, CHAMPION)
