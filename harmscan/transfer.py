"""Run one training recipe (`harmscan.recipes`) end to end on a model, without any I/O.

`train_recipe` builds on `harmscan.trainer.fit` for the gradient-descent stages; the caller
(`harmscan.trainjob` for the data loading, ``tasks.training`` for the logging) does the rest.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from conf.settings import TrainSettings
from harmscan.crossfit import fold_ids, out_of_fold_branches
from harmscan.engine import Batches, EpochCallback, TrainState
from harmscan.featurepass import onnx_features
from harmscan.heads import (
    GatedPriorHead,
    PriorHead,
    final_layer,
    set_log_odds,
)
from harmscan.recipes import (
    LinearFit,
    WiseCurve,
    apply_fit,
    extract_features,
    fit_gate,
    fit_gated_probe,
    fit_probe,
    interpolate,
    prior_log_odds,
    snapshot,
    trains,
    wise_curve,
)
from harmscan.trainer import fit

logger = logging.getLogger(__name__)

Scorer = Callable[[nn.Module], float]


@dataclass
class RecipeData:
    """The batches a recipe reads.

    Attributes:
        train: Training images with the augmenting preset (gradient descent).
        probe: Training images with the eval preset (features for the probe).
        val: Validation images with the eval preset.
        photos: Real photos with the eval preset, the domain gate's photo side
            (``head = prior-gated``; the probe batches are its drawing side).
        gate_drawings: More drawings for the gate's drawing side only (not the probe).
        gate_side: The training images un-augmented, the gate's drawing side when the probe
            batches are augmented views (``train.probe_views``); None: the probe batches.
        groups: Each probe image's source for cross-fitting (``train.cross_fit``; a pool's
            vendor package, None for the dataset's own images), in the probe batches' order.
    """

    train: Batches
    probe: Batches
    val: Batches
    photos: Batches | None = None
    gate_drawings: Batches | None = None
    groups: list[str | None] | None = None
    gate_side: Batches | None = None


@dataclass
class RecipeOutcome:
    """What a recipe did besides changing the model in place."""

    state: TrainState = field(default_factory=TrainState)
    probe: LinearFit | None = None
    wise: WiseCurve | None = None
    wise_alpha: float | None = None
    # With train.cross_fit: the probe images' labels and out-of-fold branch log-odds
    # (`harmscan.crossfit.out_of_fold_branches`, NaN rows for images left out), probe order.
    out_of_fold: tuple[np.ndarray, np.ndarray] | None = None


def probe_features(
    model: nn.Module, arch: str, batches: Batches, settings: TrainSettings, device: torch.device
) -> tuple[np.ndarray, np.ndarray]:
    """Features of the probe batches: with ``train.probe_views`` (augmented views, N times the
    images) by ``train.probe_view_engine`` (onnx: `harmscan.featurepass.onnx_features` with
    torch's thread count, on CPU), else `harmscan.recipes.extract_features` as before."""
    if settings.probe_views and settings.probe_view_engine == "onnx" and device.type == "cpu":
        return onnx_features(model, arch, batches, threads=torch.get_num_threads())
    return extract_features(model, arch, batches, device)


def fit_head(
    model: nn.Module,
    arch: str,
    batches: Batches,
    settings: TrainSettings,
    device: torch.device,
    sample_weight: np.ndarray | None = None,
) -> LinearFit:
    """The probe: fit the final layer on frozen features of ``batches`` (in place)."""
    features, y = probe_features(model, arch, batches, settings, device)
    layer = final_layer(model, arch)
    if isinstance(layer, GatedPriorHead):
        raise TypeError("a gated head is fitted by fit_gated_head")
    prior = prior_log_odds(layer, features) if isinstance(layer, PriorHead) else None
    result = fit_probe(
        features,
        y,
        c=settings.probe_c,
        prior=prior,
        prior_mix=settings.prior_mix,
        sample_weight=sample_weight,
    )
    apply_fit(layer, result)
    logger.info("%s: probe fitted on %d images (prior weight %.3f)", arch, len(y), result.prior)
    return result


def fit_gated_head(
    model: nn.Module,
    arch: str,
    batches: Batches,
    photos: Batches,
    settings: TrainSettings,
    device: torch.device,
    drawings: Batches | None = None,
    groups: list[str | None] | None = None,
    gate_batches: Batches | None = None,
) -> tuple[tuple[LinearFit, LinearFit], tuple[np.ndarray, np.ndarray] | None]:
    """The domain gate (``photos`` against the training drawings and ``drawings``), then the
    gated probe (on the training images only). ``gate_batches``: the training drawings the gate
    learns from when ``batches`` are augmented views (a grayscale crop of a drawing is no
    drawing the gate should route to the photo branch); None: ``batches``.

    Returns the photo and drawing branch's fits and, with ``settings.cross_fit`` other than
    ``none``, the training images' labels and out-of-fold branch log-odds
    (`harmscan.crossfit`; ``groups`` are their sources, None: no sources).
    """
    layer = final_layer(model, arch)
    if not isinstance(layer, GatedPriorHead):
        raise TypeError(f"head prior-gated expected, got {type(layer).__name__}")
    features, y = probe_features(model, arch, batches, settings, device)
    photo_features, _ = extract_features(model, arch, photos, device)
    gate_side = features
    if gate_batches is not None:
        gate_side = extract_features(model, arch, gate_batches, device)[0]
    if drawings is not None:
        gate_side = np.concatenate([gate_side, extract_features(model, arch, drawings, device)[0]])
    base = layer.photo.imagenet.in_features  # the gate reads the backbone's columns alone
    gate = fit_gate(
        gate_side[:, :base],
        photo_features[:, :base],
        c=settings.gate_c,
        drawings_as_photos=settings.gate_drawings_as_photos,
    )
    k = settings.gate_sharpness
    with torch.no_grad():
        layer.gate.weight.copy_(torch.from_numpy(k * gate.weight).to(layer.gate.weight)[None])
        layer.gate.bias.fill_(k * gate.bias)
        g = layer.photo_probability(torch.from_numpy(features).to(layer.gate.weight))
    prior = prior_log_odds(layer.photo, features)
    photo_probability = g.double().cpu().numpy().ravel()
    mixes = (settings.gate_photo_mix, settings.gate_drawing_mix)
    fits = fit_gated_probe(
        features,
        y,
        c=settings.probe_c,
        prior=prior,
        photo_probability=photo_probability,
        mixes=mixes,
        photo_width=base,
    )
    for branch, result in zip((layer.photo, layer.drawing), fits, strict=True):
        set_log_odds(branch, torch.from_numpy(np.asarray(result.weight)), result.bias, result.prior)
    logger.info(
        "%s: domain gate on %d drawings and %d photos (photo-like: %.0f%% of the drawings, "
        "%.0f%% of the photos); gated probe fitted",
        arch,
        len(gate_side),
        len(photo_features),
        100 * float((g > 0.5).float().mean()),
        100 * float(np.mean(gate.log_odds(photo_features) > 0)),
    )
    if settings.cross_fit == "none":
        return fits, None
    folds = fold_ids(
        y,
        groups if groups is not None else [None] * len(y),
        how=settings.cross_fit,
        folds=settings.cross_fit_folds,
        seed=settings.seed,
    )
    held_out = out_of_fold_branches(
        features, y, prior=prior, photo_probability=photo_probability, folds=folds,
        c=settings.probe_c, mixes=mixes, photo_width=base,
    )  # fmt: skip
    logger.info(
        "%s: out-of-fold branch scores of %d training images in %d folds (%s)",
        arch, int((~np.isnan(held_out).any(axis=1)).sum()), len(np.unique(folds)),
        settings.cross_fit,
    )  # fmt: skip
    return fits, (np.asarray(y), held_out)


def _ft_settings(settings: TrainSettings) -> TrainSettings:
    """LP-FT's fine-tuning stage: no warm-up, every layer at ``lr * lpft_lr_scale``."""
    return settings.model_copy(
        update={"warmup_epochs": 0, "lr": settings.lr * settings.lpft_lr_scale}
        | {"backbone_lr_scale": 1.0}
    )


def train_recipe(
    model: nn.Module,
    arch: str,
    data: RecipeData,
    settings: TrainSettings,
    *,
    device: torch.device,
    class_weights: torch.Tensor | None = None,
    checkpoint: Path | None = None,
    resume: bool = False,
    on_epoch: EpochCallback | None = None,
    wise_score: Scorer | None = None,
) -> RecipeOutcome:
    """Train ``model`` in place with ``settings.recipe`` (and WiSE-FT if ``wise_alpha`` is set).

    Args:
        model: From `harmscan.models.build_model` (with a `PriorHead` for ``head = prior``).
        arch: Its architecture.
        data: Training, probe and validation batches.
        settings: The ``train`` section (recipe, head, probe, lp-ft and WiSE-FT settings).
        device: Where to compute.
        class_weights: Loss weights of the gradient-descent stages.
        checkpoint: Checkpoint file of the gradient-descent stage.
        resume: Resume that stage from ``checkpoint``.
        on_epoch: Per-epoch callback of that stage.
        wise_score: Scores a model on validation (higher is better) for ``wise_alpha = auto``.

    Raises:
        ValueError: ``wise_alpha = auto`` without ``wise_score``.
    """
    outcome = RecipeOutcome()
    recipe = settings.recipe
    if settings.head == "prior-gated":
        if data.photos is None:
            raise ValueError("train.head=prior-gated needs photos (train.gate_photos)")
        fits, outcome.out_of_fold = fit_gated_head(
            model, arch, data.probe, data.photos, settings, device, data.gate_drawings,
            data.groups, data.gate_side,
        )  # fmt: skip
        outcome.probe = fits[0]
    elif recipe in ("probe", "lp-ft"):
        outcome.probe = fit_head(model, arch, data.probe, settings, device)
    if not trains(recipe):
        return outcome
    start = snapshot(model)
    stage = _ft_settings(settings) if recipe == "lp-ft" else settings
    outcome.state = fit(
        model,
        arch,
        data.train,
        data.val,
        stage,
        device=device,
        class_weights=class_weights,
        checkpoint=checkpoint,
        resume=resume,
        on_epoch=on_epoch,
    )
    _wise(model, start, settings, outcome, wise_score)
    return outcome


def _wise(
    model: nn.Module,
    start: dict[str, torch.Tensor],
    settings: TrainSettings,
    outcome: RecipeOutcome,
    score: Scorer | None,
) -> None:
    alpha = settings.wise_alpha
    if alpha is None:
        return
    end = snapshot(model)
    if score is not None:  # the curve is kept (logged) for a fixed alpha too
        outcome.wise = wise_curve(model, start, end, settings.wise_alphas, score)
    elif alpha == "auto":
        raise ValueError("train.wise_alpha=auto needs a validation scorer")
    outcome.wise_alpha = outcome.wise.best if alpha == "auto" and outcome.wise else float(alpha)
    model.load_state_dict(interpolate(start, end, outcome.wise_alpha))
    logger.info("WiSE-FT: alpha %.2f", outcome.wise_alpha)
