"""What a gated head serves once per-branch thresholds are folded into it, and its Platt refit.

`harmscan.branchpoint` chooses a threshold per branch of a domain-gated head and folds each in
as a shift of that branch's harmful log-odds towards the one stored threshold. Here: the
shifts themselves (`BranchPoint`), the probability the folded model then outputs
(`served_probability`), and `recalibrate_folded`, which calibrates those served probabilities
again without changing any decision.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from harmscan.calibration import OperatingPoint, fit_platt, log_odds, review_band, sigmoid


@dataclass(frozen=True)
class BranchPoint:
    """Per-branch thresholds of a gated head and the log-odds shifts that fold them in.

    Attributes:
        photo_threshold: Calibrated photo-branch score at or above which a photo is harmful.
        drawing_threshold: The same for the drawing branch.
        photo_shift: Added to the photo branch's log-odds: ``logit(stored) - logit(photo)``.
        drawing_shift: Added to the drawing branch's log-odds.
    """

    photo_threshold: float
    drawing_threshold: float
    photo_shift: float
    drawing_shift: float


def served_probability(
    p_harmful: object, point: OperatingPoint, gate: object | None = None
) -> np.ndarray:
    """The harmful probability the folded model outputs for uncalibrated ``p_harmful``.

    With per-branch shifts the gate's photo probability ``g`` of each image is needed: the
    blended log-odds move by ``g * photo_shift + (1 - g) * drawing_shift``.

    Raises:
        ValueError: Per-branch shifts without ``gate``.
    """
    z = log_odds(p_harmful) / point.temperature + point.bias
    if point.branches is None:
        return sigmoid(z)
    if gate is None:
        raise ValueError("an operating point with per-branch shifts needs each image's gate")
    g = np.asarray(gate, dtype=np.float64).ravel()
    b = point.branches
    return sigmoid(z + g * b.photo_shift + (1 - g) * b.drawing_shift)


def band_of(point: OperatingPoint) -> float:
    """The review band's half-width of ``point`` (as chosen; clipped at 0 and 1)."""
    return max(point.review_high - point.threshold, point.threshold - point.review_low)


def recalibrate_folded(
    point: OperatingPoint,
    y_true: object,
    p_harmful: object,
    gate: object,
    weights: object,
    *,
    band: float,
) -> OperatingPoint:
    """Platt scaling of what the folded model serves, with every decision kept.

    The per-branch shifts move each branch's threshold onto the stored one, which also moves
    the served probabilities away from calibrated ones (a photo-branch threshold of 0.006 is
    served as the stored 0.3). Here the served log-odds' margin to the stored threshold,
    ``m = s - logit(stored)``, gets a temperature and a bias, ``m / T2 + b2``, fitted by
    weighted log-loss (`harmscan.calibration.fit_platt`), and ``sigmoid(b2)`` becomes the
    stored threshold: an image is flagged iff ``m >= 0``, before and after, gated or not. It
    folds exactly: temperature ``T * T2``, bias ``(b - logit(stored)) / T2 + b2``, branch
    shifts divided by ``T2``; each branch threshold is restated on the new scale.
    """
    if point.branches is None:
        raise ValueError("recalibrate_folded needs a per-branch operating point")
    y = np.asarray(y_true, dtype=np.int64).ravel()
    stored = float(log_odds(point.threshold))
    margin = log_odds(served_probability(p_harmful, point, gate)) - stored
    # T2 >= 1: only ever soften. A sharper map pushes log-odds past float32's resolution near
    # 1 (about 17), where the served scores tie and the ranking (AUC) would suffer.
    t2, b2 = fit_platt(y, sigmoid(margin), weights, bounds=(1.0, 20.0))
    br = point.branches
    photo_shift, drawing_shift = br.photo_shift / t2, br.drawing_shift / t2
    threshold = float(sigmoid(b2))
    low, high = review_band(threshold, band)
    return replace(
        point,
        temperature=point.temperature * t2,
        bias=(point.bias - stored) / t2 + b2,
        threshold=threshold,
        review_low=low,
        review_high=high,
        branches=BranchPoint(
            photo_threshold=float(sigmoid(b2 - photo_shift)),
            drawing_threshold=float(sigmoid(b2 - drawing_shift)),
            photo_shift=photo_shift,
            drawing_shift=drawing_shift,
        ),
    )
