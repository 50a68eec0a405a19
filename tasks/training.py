"""Train one architecture on a dataset, evaluate it, and log and register it in MLflow.

`train_and_register` is a plain function (usable outside Prefect); `train_task` is its Prefect
task. Only small values leave it (`TrainResult`: run id, model URI, version, metrics).
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from prefect import get_run_logger, task
from pydantic import BaseModel

from conf.loader import dump_settings
from conf.settings import Settings
from harmscan.branchfold import served_probability
from harmscan.bundle import LABELS, LABELS_FILE, ServingSpec
from harmscan.calibration import OperatingPoint
from harmscan.data import dataset_version, split_domains, summarize
from harmscan.engine import evaluate
from harmscan.gateset import resolve_photo_set
from harmscan.int8check import Int8Check
from harmscan.metrics import binary_metrics
from harmscan.modelcalibration import calibrated_spec
from harmscan.modelcard import model_card, plot_confusion, plot_pr, plot_roc, plot_roc_by_domain
from harmscan.models import resolve_weights
from harmscan.presets import EvalPreset
from harmscan.trainjob import TrainJob, default_domain, prepare_job
from harmscan.transfer import RecipeOutcome, train_recipe
from harmscan.weights import PRIOR_ARCH
from registry import Registry, Run, log_bundle, start_run
from tasks.evaluation import predict_split
from tasks.int8 import int8_hook, log_int8
from tasks.int8refit import head_refit
from tasks.recipes import (
    Scored,
    branch_scores,
    calibrate_on_mix,
    log_recipe,
    out_of_fold,
    score_photo_set,
    set_metrics,
)

logger = logging.getLogger(__name__)


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


def _log_inputs(run: Run, job: TrainJob) -> None:
    """Tags, every resolved setting as a parameter, and the dataset as the run's input."""
    import mlflow.data

    run.set_tags({"arch": job.arch, "weights": job.weights_source, "recipe": job.recipe})
    extra = {"arch": job.arch, "weights_source": job.weights_source, "device": job.device}
    run.log_params({**dump_settings(job.settings), **extra})
    data = mlflow.data.from_pandas(
        job.frame,
        source=str((job.dataset / "manifest.csv").resolve()),
        targets="label",
        name=f"harmscan-{job.version}",
        digest=job.version,
    )
    run.log_dataset(data, context="training")
    run.set_tags({"dataset_version": job.version})
    for pool in job.pools:  # extra training sets: which version of each
        run.set_tags({f"train_pool_{pool.root.name}": pool.version})
    run.log_params(
        {f"train_images_{d}": job.train_domains.count(d) for d in sorted(set(job.train_domains))}
    )


def _log_evaluation_artifacts(
    run: Run, y_true: Any, p_harmful: Any, metrics: dict[str, float], spec: ServingSpec, card: str
) -> None:
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
        run.log_artifacts(folder, "evaluation")


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
    job = prepare_job(settings, arch, dataset)
    refit = None
    if job.settings.int8.enabled and job.settings.int8.refit_head:
        cpu = torch.device("cpu")
        refit = head_refit(job, lambda model, outcome: _calibrate(job, model, outcome, cpu)[0])
    registry = Registry(settings.mlflow.tracking_uri)
    name = settings.mlflow.registered_model if register else None
    with start_run(registry, settings.mlflow.experiment, f"{arch}-{job.version}") as run:
        _log_inputs(run, job)
        spec, test = _train_and_evaluate(run, job, resume)
        verdicts: list[Int8Check] = []
        seconds: list[float] = []
        started = time.perf_counter()
        bundle = log_bundle(
            run, job.model, spec, registered_model=name, version_tags={"recipe": job.recipe},
            served_graphs=int8_hook(
                job.dataset, job.settings.int8, job.settings.mlflow.gate_set, verdicts, seconds,
                refit_head=refit,
            ),
        )  # fmt: skip
        log_int8(run, verdicts, seconds)
        run.log_metrics({"registration_seconds": time.perf_counter() - started})
    return TrainResult(
        arch=arch,
        run_id=run.run_id,
        experiment_id=run.experiment_id,
        model_uri=bundle.model_uri,
        registered_model=name,
        version=bundle.version,
        dataset_version=job.version,
        test_metrics=test,
        threshold=spec.threshold,
    )


def _train_and_evaluate(
    run: Run, job: TrainJob, resume: bool
) -> tuple[ServingSpec, dict[str, float]]:
    """Train the recipe (per-epoch metrics into the run), then calibrate, evaluate, log the card."""
    cfg = job.settings.train

    def val_auc(candidate: torch.nn.Module) -> float:
        preds = evaluate(candidate, job.data.val, job.device, description="WiSE-FT val")
        return binary_metrics(preds.y_true, preds.p_harmful)["auc"]

    outcome = train_recipe(
        job.model,
        job.arch,
        job.data,
        cfg,
        device=job.device,
        class_weights=job.class_weights,
        checkpoint=job.checkpoint,
        resume=resume,
        on_epoch=lambda epoch, metrics: run.log_metrics(metrics, step=epoch),
        wise_score=val_auc,
    )
    state = outcome.state
    spec, test, preds = _evaluate(run, job, outcome)
    run.log_metrics({f"test_{k}": v for k, v in test.items()})
    run.log_metrics({"best_epoch": state.best_epoch, "epochs_run": state.epoch})
    card = model_card(
        spec=spec,
        counts=summarize(job.frame),
        test_metrics=test,
        weights=job.weights_source,
        target_recall=cfg.target_recall,
        epochs_run=state.epoch,
        best_epoch=state.best_epoch,
    )
    _log_evaluation_artifacts(run, preds.y, preds.p, test, spec, card)
    return spec, test


def _scored(
    model: torch.nn.Module, dataset: Path, split: str, frame: Any, domain: str, **kw: Any
) -> Scored:
    """A split's predictions with each image's domain (``domain`` where the manifest has none)."""
    with branch_scores(model) as branches:
        preds = predict_split(model, dataset, split, **kw)
    return Scored(preds.y_true, preds.p_harmful, split_domains(frame, split, domain), branches())


def _calibrate(
    job: TrainJob, model: torch.nn.Module, outcome: RecipeOutcome, device: torch.device
) -> tuple[OperatingPoint, Scored]:
    """The operating point on val (+ the calibration photos), folded into ``model``'s head, and
    the validation scores it was chosen on."""
    cfg = job.settings.train
    preset = EvalPreset(image_size=cfg.image_size)
    kw = {"preset": preset, "batch_size": cfg.batch_size, "device": device}
    val = _scored(model, job.dataset, "val", job.frame, default_domain(job.settings), **kw)
    photos_dir = resolve_photo_set(cfg.calibration_photos, "train.calibration_photos")
    photos = score_photo_set(model, photos_dir, preset) if photos_dir else None
    held = out_of_fold(outcome, job.train_domains)
    return calibrate_on_mix(model, job.arch, val, photos, cfg, held), val


def _evaluate(
    run: Run, job: TrainJob, outcome: RecipeOutcome
) -> tuple[ServingSpec, dict[str, float], Scored]:
    """Calibrate and threshold on val (+ photos), then test (and gate-set) metrics there."""
    settings, model, dataset, frame = job.settings, job.model, job.dataset, job.frame
    cfg = settings.train
    preset = EvalPreset(image_size=cfg.image_size)
    domain = default_domain(settings)
    kw = {"preset": preset, "batch_size": cfg.batch_size, "device": job.device}
    point, val = _calibrate(job, model, outcome, job.device)
    log_recipe(run, outcome, point)
    calibrated = served_probability(val.p, point, val.gate)
    val_metrics = binary_metrics(val.y, calibrated, point.threshold)
    run.log_metrics({f"val_at_threshold_{k}": v for k, v in val_metrics.items()})
    spec = calibrated_spec(job.arch, point, preset, dataset_version(dataset), job.recipe)
    test = _scored(model, dataset, "test", frame, domain, **kw)
    run.log_metrics(set_metrics("test", test, spec.threshold))
    scored_sets = {"test": test}
    gate_dir = resolve_photo_set(settings.mlflow.gate_set, "mlflow.gate_set")
    if gate_dir is not None:
        gate = score_photo_set(model, gate_dir, preset)
        run.log_metrics(set_metrics("gate", gate, spec.threshold))
        scored_sets["gate"] = gate
    for check_dir in (
        resolve_photo_set(name, "mlflow.check_sets") for name in settings.mlflow.check_sets
    ):
        if check_dir is not None:  # held out: scored at the stored threshold, never used to fit
            check = score_photo_set(model, check_dir, preset)
            run.log_metrics(set_metrics(check_dir.name, check, spec.threshold))
            scored_sets[check_dir.name] = check
    _log_domain_rocs(run, job.arch, scored_sets, spec.threshold)
    return spec, binary_metrics(test.y, test.p, spec.threshold), test


def _log_domain_rocs(run: Run, arch: str, sets: dict[str, Scored], threshold: float) -> None:
    """``evaluation/<set>_roc_by_domain.png``: each scored set's ROC curve per domain, with a dot
    where the stored threshold operates (the pictures of the ``<set>_<domain>_*`` metrics)."""
    with tempfile.TemporaryDirectory(prefix="harmscan-rocs-") as tmp:
        for name, scored in sets.items():
            curves = {arch: (scored.y, scored.p, scored.domains, threshold)}
            plot_roc_by_domain(curves, Path(tmp) / f"{name}_roc_by_domain.png", f"{arch} on {name}")
        run.log_artifacts(Path(tmp), "evaluation")


def ensure_prior(settings: Settings, dataset: Path) -> str | None:
    """Register the untrained ImageNet prior once (version tag ``recipe=prior``); its version.

    The prior is `PRIOR_ARCH` with the prior head and no training, calibrated and thresholded
    on ``dataset``'s validation split like any candidate. Returns the existing version when one
    is registered, and None (with a warning) when the architecture has no pretrained weights.
    """
    from tasks.recipes import REFERENCE_TAG, prior_version

    name = settings.mlflow.registered_model
    found = prior_version(Registry(settings.mlflow.tracking_uri), name)
    if found is not None:
        return found
    source = resolve_weights(PRIOR_ARCH, settings.train.weights.get(PRIOR_ARCH, "none"))
    if source.kind == "none":
        logger.warning("no pretrained %s weights: no prior reference registered", PRIOR_ARCH)
        return None
    update = {"recipe": "prior", "head": "prior", "wise_alpha": None}
    prior = settings.model_copy(update={"train": settings.train.model_copy(update=update)})
    result = train_and_register(prior, PRIOR_ARCH, dataset, register=True)
    if result.version is not None:
        Registry(settings.mlflow.tracking_uri).set_version_tags(
            name, result.version, {REFERENCE_TAG: "true"}
        )
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
