"""Everything one training run works on, prepared before the run opens (no I/O but reading).

`effective_settings` is the recipe an architecture can run with its weights and
`build_recipe_model` its model with the head the settings ask for; `prepare_job` resolves those,
reads and checks the manifest, seeds, and builds the model and the data loaders.
`tasks.training` trains, evaluates and logs from the job.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from conf.settings import Settings, TrainSettings
from harmscan.data import SPLITS, ManifestDataset, ManifestError, dataset_version, read_manifest
from harmscan.engine import pick_device, seed_everything
from harmscan.gateset import PhotoSet, resolve_photo_set
from harmscan.heads import GatedPriorHead, PriorHead, final_layer, imagenet_rows, set_final_layer
from harmscan.manifest import split_problem
from harmscan.models import WeightsSource, build_model, resolve_weights
from harmscan.presets import EvalPreset, TrainPreset
from harmscan.probeviews import probe_dataset, repeat_rows
from harmscan.recipes import recipe_name
from harmscan.taps import TAPPABLE
from harmscan.trainsets import class_weights_of, gate_pool, resolve_training_sets, training_split
from harmscan.transfer import RecipeData

logger = logging.getLogger(__name__)


def effective_settings(settings: TrainSettings, source: WeightsSource, arch: str) -> TrainSettings:
    """The recipe an architecture can run: without pretrained weights only ``finetune``.

    Probing random features or a prior without an ImageNet classifier means nothing, so an
    architecture whose weights are ``none`` (ResNet50 on offline machines) is fine-tuned from
    scratch instead, with a loud warning; the run's ``recipe`` tag records what ran. The
    fallback trains on the dataset alone: ``extra_train_sets`` are there for the probe
    (drawpool doubled ResNet50's epochs in the main job and taught a scratch model nothing it
    serves with), so they are dropped too, and the warning says so. ``probe_layers`` apply to
    MobileNetV2's ``probe`` recipe only (`_without_taps`).
    """
    if source.kind != "none" or (settings.recipe == "finetune" and settings.head == "linear"):
        return _without_taps(settings, arch)
    pools = f" without {', '.join(settings.extra_train_sets)}" if settings.extra_train_sets else ""
    logger.warning(
        "!!! %s has no pretrained weights: recipe %s with head %s needs them; fine-tuning a "
        "linear head from scratch instead%s",
        arch,
        settings.recipe,
        settings.head,
        pools,
    )
    fallback: dict[str, object] = {
        "recipe": "finetune",
        "head": "linear",
        "wise_alpha": None,
        "extra_train_sets": [],
        "probe_layers": [],
    }
    return settings.model_copy(update=fallback)


def _without_taps(settings: TrainSettings, arch: str) -> TrainSettings:
    """``train.probe_layers`` feed the probe fitted on MobileNetV2's frozen features (measured
    there); other architectures and the recipes that train the backbone run without taps."""
    if not settings.probe_layers:
        return settings
    if arch not in TAPPABLE:
        why = f"{arch} has no taps ({', '.join(TAPPABLE)} only)"
    elif settings.recipe != "probe":
        why = f"they feed the probe recipe's frozen features, not recipe {settings.recipe}"
    else:
        return settings
    logger.warning(
        "!!! train.probe_layers %s: %s; %s trains on the pooled features alone (probe_layers [])",
        settings.probe_layers,
        why,
        arch,
    )
    return settings.model_copy(update={"probe_layers": []})


def build_recipe_model(arch: str, source: WeightsSource, settings: TrainSettings) -> nn.Module:
    """`harmscan.models.build_model` with the head ``settings.head`` asks for.

    Raises:
        ValueError: An unknown name in ``train.prior_classes`` (with suggestions), or
            ``train.probe_layers`` on an architecture without taps (see `effective_settings`).
    """
    prior = settings.head in ("prior", "prior-gated")
    rows = imagenet_rows(settings.prior_classes) if prior else None
    model = build_model(arch, source, prior_rows=rows, probe_layers=settings.probe_layers)
    if settings.head == "prior-gated":
        head = final_layer(model, arch)
        assert isinstance(head, PriorHead)
        set_final_layer(model, arch, GatedPriorHead(head))
    return model


def training_loaders(
    dataset: Path, cfg: TrainSettings, frame: Any, pools: list[PhotoSet], domain: str
) -> RecipeData:
    """Training (augmented), probe and validation batches; ``pools`` join the training split."""
    train_preset = TrainPreset(image_size=cfg.image_size, augment=cfg.augment)
    generator = torch.Generator().manual_seed(cfg.seed)
    train = DataLoader(
        training_split(dataset, frame, train_preset, pools, default_domain=domain).dataset,
        batch_size=cfg.batch_size,
        shuffle=True,
        num_workers=cfg.num_workers,
        generator=generator,
        drop_last=False,
    )
    eval_preset = train_preset.eval_preset
    views = cfg.probe_views
    probe_preset = train_preset.probe_view_preset if views else eval_preset
    probe_split = training_split(dataset, frame, probe_preset, pools, default_domain=domain)
    probe_data = probe_dataset(probe_split.dataset, views, cfg.seed)
    val, probe = (
        DataLoader(data, batch_size=cfg.batch_size, num_workers=cfg.num_workers)
        for data in (ManifestDataset(dataset, "val", eval_preset, frame), probe_data)
    )
    data = RecipeData(
        train=train, probe=probe, val=val, groups=repeat_rows(probe_split.groups, views)
    )
    if views:
        logger.info("probe features of %d augmented views per training image", views)
        clean = training_split(dataset, frame, eval_preset, pools, default_domain=domain)
        data.gate_side = DataLoader(
            clean.dataset, batch_size=cfg.batch_size, num_workers=cfg.num_workers
        )
    return data


@dataclass
class TrainJob:
    """Everything one training run works on, prepared before the run opens."""

    arch: str
    settings: Settings  # with the recipe's effective ``train`` settings
    dataset: Path
    version: str
    frame: Any
    weights_source: str
    recipe: str
    device: torch.device
    model: torch.nn.Module
    data: RecipeData
    class_weights: torch.Tensor | None
    checkpoint: Path
    pools: list[PhotoSet]
    train_domains: list[str]  # per training image (the dataset's, then the pools')


def prepare_job(settings: Settings, arch: str, dataset: Path) -> TrainJob:
    """Check the dataset, seed, and build the model and the loaders of one training run.

    Raises:
        ManifestError: A split the run needs lacks one of the labels (before any work).
        harmscan.trainsets.TrainingSetError: An extra training set or the calibration photos
            are (or share an image with) the gate set or a held-out check set.
    """
    dataset = Path(dataset).resolve()
    source = resolve_weights(arch, settings.train.weights.get(arch, "none"))
    cfg = effective_settings(settings.train, source, arch)
    settings = settings.model_copy(update={"train": cfg})
    frame = read_manifest(dataset)
    version = dataset_version(dataset)
    gate_set = resolve_photo_set(settings.mlflow.gate_set, "mlflow.gate_set")
    pools = resolve_training_sets(cfg.extra_train_sets, gate_set)
    if cfg.calibration_photos:  # chooses the thresholds: never the gate set or a held-out set
        resolve_training_sets([cfg.calibration_photos], gate_set, role="calibration set")
    # Before any work: a split without both labels once failed after training, in calibration.
    problem = split_problem(frame, ("val", "test") if pools else SPLITS)
    if problem:
        raise ManifestError(f"{dataset}: {problem}")
    seed_everything(cfg.seed)
    torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device)
    model = build_recipe_model(arch, source, cfg)  # first draw after the seed
    domain = default_domain(settings)
    split = training_split(dataset, frame, lambda image: image, pools, default_domain=domain)
    data = training_loaders(dataset, cfg, frame, pools, domain)
    if cfg.head == "prior-gated":
        preset = EvalPreset(image_size=cfg.image_size)
        photos = gate_pool(cfg.gate_photos, preset, gate_set)
        data.photos = DataLoader(photos, batch_size=cfg.batch_size, num_workers=cfg.num_workers)
        if cfg.gate_drawings:
            drawings = gate_pool(cfg.gate_drawings, preset, gate_set)
            data.gate_drawings = DataLoader(drawings, batch_size=cfg.batch_size)
    return TrainJob(
        arch=arch,
        settings=settings,
        dataset=dataset,
        version=version,
        frame=frame,
        weights_source=source.describe(),
        recipe=recipe_name(cfg.recipe, cfg.head, fixed_alpha(cfg)),
        device=device,
        model=model,
        data=data,
        class_weights=class_weights_of(split.targets) if cfg.class_weighting else None,
        checkpoint=settings.paths.runs / f"{arch}-{version}" / "checkpoint.pt",
        pools=pools,
        train_domains=split.domains,
    )


def default_domain(settings: Settings) -> str:
    """The domain of a manifest row without one: Open Images is photos, the mirror icons."""
    return "photo" if settings.openimages.source == "openimages" else "illustration"


def fixed_alpha(cfg: TrainSettings) -> float | None:
    """The WiSE-FT mixing weight when the settings fix one (None when it is searched)."""
    return cfg.wise_alpha if isinstance(cfg.wise_alpha, float) else None
