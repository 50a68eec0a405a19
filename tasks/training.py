"""Train one architecture on a dataset, evaluate it, and log and register it in MLflow.

`train_and_register` is a plain function (usable outside Prefect); `train_task` is its Prefect
task. Only small values leave it (`TrainResult`: run id, model URI, version, metrics).
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import torch
from prefect import get_run_logger, task
from pydantic import BaseModel
from torch.utils.data import DataLoader

from conf.loader import dump_settings
from conf.settings import Settings, TrainSettings
from harmscan.bundle import LABELS, LABELS_FILE, ServingSpec
from harmscan.calibration import apply_temperature
from harmscan.data import (
    ManifestDataset,
    class_weights,
    dataset_version,
    read_manifest,
    split_domains,
    summarize,
)
from harmscan.engine import evaluate, pick_device, seed_everything
from harmscan.metrics import binary_metrics
from harmscan.modelcard import model_card, plot_confusion, plot_pr, plot_roc
from harmscan.models import resolve_weights
from harmscan.presets import EvalPreset, TrainPreset
from harmscan.recipes import recipe_name
from harmscan.transfer import (
    RecipeData,
    RecipeOutcome,
    build_recipe_model,
    effective_settings,
    train_recipe,
)
from tasks.evaluation import predict_split
from tasks.recipes import (
    Scored,
    calibrate_on_mix,
    log_recipe,
    resolve_photo_set,
    score_photo_set,
    set_metrics,
)
from tasks.registry import log_bundle

logger = logging.getLogger(__name__)

MAX_PARAMS_PER_CALL = 100  # MLflow's batch limit


class TrainResult(BaseModel):
    """What one training run produced."""

    arch: str
    run_id: str
    experiment_id: str
    model_uri: str
    registered_model: str | None
    version: str | None
    dataset_version: str
    test_metrics: dict[str, float]
    threshold: float


def _loaders(dataset: Path, cfg: TrainSettings, frame: Any) -> RecipeData:
    train_preset = TrainPreset(image_size=cfg.image_size, augment=cfg.augment)
    generator = torch.Generator().manual_seed(cfg.seed)
    train = DataLoader(
        ManifestDataset(dataset, "train", train_preset, frame),
        batch_size=cfg.batch_size,
        shuffle=True,
        num_workers=cfg.num_workers,
        generator=generator,
        drop_last=False,
    )
    val, probe = (
        DataLoader(
            ManifestDataset(dataset, split, train_preset.eval_preset, frame),
            batch_size=cfg.batch_size,
            num_workers=cfg.num_workers,
        )
        for split in ("val", "train")
    )
    return RecipeData(train=train, probe=probe, val=val)


def _log_params(settings: Settings, extra: dict[str, Any]) -> None:
    import mlflow

    params = {**dump_settings(settings), **extra}
    items = [(k, str(v)[:6000]) for k, v in params.items()]
    for start in range(0, len(items), MAX_PARAMS_PER_CALL):
        mlflow.log_params(dict(items[start : start + MAX_PARAMS_PER_CALL]))


def _log_dataset(dataset: Path, frame: Any, version: str) -> None:
    import mlflow
    import mlflow.data

    data = mlflow.data.from_pandas(
        frame,
        source=str((dataset / "manifest.csv").resolve()),
        targets="label",
        name=f"harmscan-{version}",
        digest=version,
    )
    mlflow.log_input(data, context="training")
    mlflow.set_tag("dataset_version", version)


def _log_evaluation_artifacts(
    y_true: Any, p_harmful: Any, metrics: dict[str, float], spec: ServingSpec, card: str
) -> None:
    import mlflow

    with tempfile.TemporaryDirectory(prefix="harmscan-artifacts-") as tmp:
        folder = Path(tmp)
        plot_confusion(metrics, folder / "confusion_matrix.png", f"{spec.arch} test confusion")
        plot_roc(y_true, p_harmful, folder / "roc_curve.png", f"{spec.arch} test ROC")
        plot_pr(y_true, p_harmful, folder / "pr_curve.png", f"{spec.arch} test PR")
        (folder / LABELS_FILE).write_text(json.dumps(list(LABELS)))
        (folder / "preset.json").write_text(
            json.dumps(EvalPreset.from_spec(spec).spec_fields(), indent=2)
        )
        (folder / "model_card.md").write_text(card)
        mlflow.log_artifacts(str(folder), artifact_path="evaluation")


def train_and_register(
    settings: Settings,
    arch: str,
    dataset: Path,
    *,
    register: bool = True,
    resume: bool = False,
) -> TrainResult:
    """Fine-tune ``arch`` on ``dataset``, evaluate on test, log everything, register the model.

    Args:
        settings: Resolved settings; ``train``, ``mlflow`` and ``paths`` are used.
        arch: ``mobilenet_v2`` or ``resnet50``.
        dataset: Dataset folder (``manifest.csv`` + split folders).
        register: Register the model as a version of ``settings.mlflow.registered_model``.
        resume: Continue from this arch+dataset's checkpoint under ``paths.runs`` if present.

    Returns:
        Run id, model URI, registered version, test metrics and the chosen threshold.
    """
    import mlflow

    dataset = Path(dataset).resolve()
    source = resolve_weights(arch, settings.train.weights.get(arch, "none"))
    cfg = effective_settings(settings.train, source, arch)
    settings = settings.model_copy(update={"train": cfg})
    seed_everything(cfg.seed)
    torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device)
    model = build_recipe_model(arch, source, cfg)
    frame = read_manifest(dataset)
    version = dataset_version(dataset)
    data = _loaders(dataset, cfg, frame)
    weights = class_weights(frame) if cfg.class_weighting else None
    checkpoint = settings.paths.runs / f"{arch}-{version}" / "checkpoint.pt"

    mlflow.set_tracking_uri(settings.mlflow.tracking_uri)
    experiment = mlflow.set_experiment(settings.mlflow.experiment)
    with mlflow.start_run(run_name=f"{arch}-{version}") as run:
        recipe = recipe_name(cfg.recipe, cfg.head, _fixed_alpha(cfg))
        mlflow.set_tags({"arch": arch, "weights": source.describe(), "recipe": recipe})
        _log_params(settings, {"arch": arch, "weights_source": source.describe(), "device": device})
        _log_dataset(dataset, frame, version)

        def log_epoch(epoch: int, metrics: dict[str, float]) -> None:
            mlflow.log_metrics(metrics, step=epoch)

        def val_auc(candidate: torch.nn.Module) -> float:
            preds = evaluate(candidate, data.val, device, description="WiSE-FT val")
            return binary_metrics(preds.y_true, preds.p_harmful)["auc"]

        outcome = train_recipe(
            model,
            arch,
            data,
            cfg,
            device=device,
            class_weights=weights,
            checkpoint=checkpoint,
            resume=resume,
            on_epoch=log_epoch,
            wise_score=val_auc,
        )
        state = outcome.state
        spec, test, preds = _evaluate(
            model, arch, settings, dataset, frame, outcome, device, recipe
        )
        mlflow.log_metrics({f"test_{k}": v for k, v in test.items()})
        mlflow.log_metrics({"best_epoch": state.best_epoch, "epochs_run": state.epoch})
        card = model_card(
            spec=spec,
            counts=summarize(frame),
            test_metrics=test,
            weights=source.describe(),
            target_recall=cfg.target_recall,
            epochs_run=state.epoch,
            best_epoch=state.best_epoch,
        )
        _log_evaluation_artifacts(preds.y, preds.p, test, spec, card)
        name = settings.mlflow.registered_model if register else None
        bundle = log_bundle(model, spec, registered_model=name, version_tags={"recipe": recipe})
    return TrainResult(
        arch=arch,
        run_id=run.info.run_id,
        experiment_id=experiment.experiment_id,
        model_uri=bundle.model_uri,
        registered_model=name,
        version=bundle.version,
        dataset_version=version,
        test_metrics=test,
        threshold=spec.threshold,
    )


def _fixed_alpha(cfg: TrainSettings) -> float | None:
    return cfg.wise_alpha if isinstance(cfg.wise_alpha, float) else None


def _scored(
    model: torch.nn.Module, dataset: Path, split: str, frame: Any, domain: str, **kw: Any
) -> Scored:
    """A split's predictions with each image's domain (``domain`` where the manifest has none)."""
    preds = predict_split(model, dataset, split, **kw)
    return Scored(preds.y_true, preds.p_harmful, split_domains(frame, split, domain))


def _evaluate(
    model: torch.nn.Module,
    arch: str,
    settings: Settings,
    dataset: Path,
    frame: Any,
    outcome: RecipeOutcome,
    device: torch.device,
    recipe: str,
) -> tuple[ServingSpec, dict[str, float], Scored]:
    """Calibrate and threshold on val (+ photos), then test (and gate-set) metrics there."""
    import mlflow

    cfg = settings.train
    preset = EvalPreset(image_size=cfg.image_size)
    # Without a domain column: Open Images rows are photos, the offline mirror's are icons.
    domain = "photo" if settings.openimages.source == "openimages" else "illustration"
    kw = {"preset": preset, "batch_size": cfg.batch_size, "device": device}
    val = _scored(model, dataset, "val", frame, domain, **kw)
    photos_dir = resolve_photo_set(cfg.calibration_photos)
    photos = score_photo_set(model, photos_dir, preset) if photos_dir else None
    point = calibrate_on_mix(model, arch, val, photos, cfg)
    log_recipe(mlflow, outcome, point)
    calibrated = apply_temperature(val.p, point.temperature)
    val_metrics = binary_metrics(val.y, calibrated, point.threshold)
    mlflow.log_metrics({f"val_at_threshold_{k}": v for k, v in val_metrics.items()})
    spec = ServingSpec(
        arch=arch,
        threshold=point.threshold,
        review_low=point.review_low,
        review_high=point.review_high,
        dataset_version=dataset_version(dataset),
        extra={"recipe": recipe, "temperature": f"{point.temperature:.6f}"},
        **preset.spec_fields(),
    )
    test = _scored(model, dataset, "test", frame, domain, **kw)
    mlflow.log_metrics(set_metrics("test", test, spec.threshold))
    gate_dir = resolve_photo_set(settings.mlflow.gate_set)
    if gate_dir is not None:
        gate = score_photo_set(model, gate_dir, preset)
        mlflow.log_metrics(set_metrics("gate", gate, spec.threshold))
    return spec, binary_metrics(test.y, test.p, spec.threshold), test


PRIOR_ARCH = "mobilenet_v2"


def ensure_prior(settings: Settings, dataset: Path) -> str | None:
    """Register the untrained ImageNet prior once (version tag ``recipe=prior``); its version.

    The prior is `PRIOR_ARCH` with the prior head and no training, calibrated and thresholded
    on ``dataset``'s validation split like any candidate. Returns the existing version when one
    is registered, and None (with a warning) when the architecture has no pretrained weights.
    """
    import mlflow

    from tasks.recipes import prior_version

    name = settings.mlflow.registered_model
    found = prior_version(mlflow.MlflowClient(settings.mlflow.tracking_uri), name)
    if found is not None:
        return found
    source = resolve_weights(PRIOR_ARCH, settings.train.weights.get(PRIOR_ARCH, "none"))
    if source.kind == "none":
        logger.warning("no pretrained %s weights: no prior reference registered", PRIOR_ARCH)
        return None
    update = {"recipe": "prior", "head": "prior", "wise_alpha": None}
    prior = settings.model_copy(update={"train": settings.train.model_copy(update=update)})
    result = train_and_register(prior, PRIOR_ARCH, dataset, register=True)
    logger.info("registered the untrained prior as %s version %s", name, result.version)
    return result.version


@task(name="train-model", retries=0)
def train_task(
    settings: Settings, arch: str, dataset: Path, register: bool = True, resume: bool = False
) -> TrainResult:
    """Prefect task: `train_and_register` for one architecture."""
    log = get_run_logger()
    log.info("training %s on %s", arch, dataset)
    result = train_and_register(settings, arch, dataset, register=register, resume=resume)
    log.info(
        "%s: run %s, %s version %s, test auc %.4f, threshold %.4f",
        arch,
        result.run_id,
        result.registered_model,
        result.version,
        result.test_metrics["auc"],
        result.threshold,
    )
    return result


@task(name="ensure-prior", retries=0)
def ensure_prior_task(settings: Settings, dataset: Path) -> str | None:
    """Prefect task: `ensure_prior`."""
    version = ensure_prior(settings, dataset)
    get_run_logger().info("prior reference: version %s", version)
    return version
