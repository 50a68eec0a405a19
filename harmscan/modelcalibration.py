"""Calibrate a trained model: choose its operating point on validation, fold it into the head.

`calibrate_model` picks temperature (or Platt bias) and threshold with
`harmscan.calibration.choose_operating_point` (and, for a gated head with
``gate_operating_point = per-branch``, one threshold per branch: `harmscan.branchpoint`), then
folds them into the model's last layer, so the exported graph serves calibrated probabilities;
`calibrated_spec` is the serving spec that records them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from torch import nn

from conf.settings import TrainSettings
from harmscan.branchpoint import with_branches
from harmscan.bundle import ServingSpec
from harmscan.calibration import OperatingPoint, choose_operating_point
from harmscan.crossfit import HeldOut
from harmscan.heads import GatedPriorHead, final_layer, scale_logits, shift_branches, shift_log_odds
from harmscan.presets import EvalPreset

logger = logging.getLogger(__name__)


def calibrate_model(
    model: nn.Module,
    arch: str,
    y_true: np.ndarray,
    p_harmful: np.ndarray,
    domains: Sequence[str],
    settings: TrainSettings,
    branches: np.ndarray | None = None,
    held_out: HeldOut | None = None,
) -> OperatingPoint:
    """Choose calibration and threshold on validation; fold the calibration into the model.

    A gated head with ``gate_operating_point = per-branch`` also gets a threshold per branch,
    folded into the branches (`harmscan.branchpoint`); it needs ``branches``, each image's
    `harmscan.heads.GatedPriorHead.branch_log_odds` (`harmscan.heads.recording_branches`).
    ``held_out`` (training drawings scored out of fold, ``train.cross_fit``) joins the drawing
    branch's threshold; ``train.branch_recalibration`` is applied after the shifts.

    Raises:
        ValueError: A per-branch operating point without ``branches``.
    """
    point = choose_operating_point(
        y_true,
        p_harmful,
        domains,
        photo_share=settings.calibration_photo_share,
        target_recall=settings.target_recall,
        band=settings.review_band,
        method=settings.calibration,
        max_safe_flagged=settings.max_safe_flagged,
    )
    layer = final_layer(model, arch)
    per_branch = isinstance(layer, GatedPriorHead) and settings.gate_operating_point != "mix"
    if per_branch:
        if branches is None:
            raise ValueError(
                "train.gate_operating_point=per-branch needs each calibration image's branch "
                "scores (score them inside harmscan.heads.recording_branches); valid: mix, "
                "per-branch"
            )
        point = with_branches(
            point, y_true, p_harmful, branches, domains,
            photo_share=settings.calibration_photo_share,
            target_recall=settings.target_recall, max_safe_flagged=settings.max_safe_flagged,
            photo_threshold_on=settings.gate_photo_threshold_on,
            held_out=held_out, recalibration=settings.branch_recalibration,
            drawing_rule=settings.drawing_threshold,
            drawing_false_alarm=settings.drawing_false_alarm,
        )  # fmt: skip
    scale_logits(layer, 1.0 / point.temperature)
    shift_log_odds(layer, point.bias)
    if point.branches is not None:
        shift_branches(layer, point.branches.photo_shift, point.branches.drawing_shift)
        logger.info(
            "%s: per-branch thresholds photo %.4f, drawing %.4f (shifts %+.3f, %+.3f)",
            arch,
            point.branches.photo_threshold,
            point.branches.drawing_threshold,
            point.branches.photo_shift,
            point.branches.drawing_shift,
        )
    logger.info(
        "%s: temperature %.3f, bias %+.3f (ECE %.4f -> %.4f), threshold %.4f",
        arch,
        point.temperature,
        point.bias,
        point.ece_before,
        point.ece_after,
        point.threshold,
    )
    return point


def calibrated_spec(
    arch: str, point: OperatingPoint, preset: EvalPreset, dataset_version: str, recipe: str
) -> ServingSpec:
    """The serving spec of a model calibrated at ``point``: threshold, review band, preset, and
    a record of the calibration folded into it (temperature, bias, per-branch thresholds)."""
    return ServingSpec(
        arch=arch,
        threshold=point.threshold,
        review_low=point.review_low,
        review_high=point.review_high,
        dataset_version=dataset_version,
        extra={
            "recipe": recipe,
            "temperature": f"{point.temperature:.6f}",
            "calibration_bias": f"{point.bias:.6f}",
            **_branch_extra(point),
        },
        **preset.spec_fields(),
    )


def _branch_extra(point: OperatingPoint) -> dict[str, str]:
    """The spec's record of a gated head's per-branch thresholds (already folded in)."""
    b = point.branches
    if b is None:
        return {}
    return {
        "threshold_photo_branch": f"{b.photo_threshold:.6f}",
        "threshold_drawing_branch": f"{b.drawing_threshold:.6f}",
    }
