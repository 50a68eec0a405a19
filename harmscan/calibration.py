"""Temperature (or Platt) scaling of harmful log-odds, and sample weights that mix domains.

The temperature is fitted on validation log-odds (one parameter, so rankings and ROC AUC are
unchanged) and folded into the model's last layer (`harmscan.heads.scale_logits`), so the exported
graph and serving see calibrated probabilities with no change to serving.

Platt scaling (Platt, 1999; the two-parameter form of Guo et al., "On Calibration of Modern
Neural Networks", ICML 2017) fits a bias beside the temperature: ``sigmoid(z / T + b)``. The
bias absorbs a shift of the harmful base rate between training and the calibration mix (clip-art
versus photos), which a temperature alone cannot; it is still monotone, so rankings and AUC are
unchanged, and it folds into the last layer's harmful bias (`harmscan.heads.shift_log_odds`).

A domain-gated head can also get one threshold per branch: `harmscan.branchpoint`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy.optimize import minimize_scalar

if TYPE_CHECKING:
    from harmscan.branchfold import BranchPoint

EPS = 1e-7
CALIBRATION_METHODS = ("temperature", "platt", "none")


def log_odds(p_harmful: object) -> np.ndarray:
    """``log(p / (1 - p))``, clipped away from 0 and 1."""
    p = np.clip(np.asarray(p_harmful, dtype=np.float64), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def sigmoid(x: object) -> np.ndarray:
    """The logistic function."""
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def _nll(z: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    # -[y log s(z) + (1-y) log(1-s(z))] = softplus(z) - y z, computed stably
    return float(np.sum(w * (np.logaddexp(0.0, z) - y * z)) / np.sum(w))


def fit_temperature(
    y_true: object, p_harmful: object, weights: object | None = None, *, bounds: tuple = (0.05, 20)
) -> float:
    """The temperature ``T`` minimising the (weighted) log-loss of ``sigmoid(logit(p) / T)``.

    Raises:
        ValueError: Empty input or a single class (no information about calibration).
    """
    y = np.asarray(y_true, dtype=np.float64).ravel()
    z = log_odds(p_harmful).ravel()
    w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    if y.size == 0 or y.size != z.size or w.size != y.size:
        raise ValueError(f"need matching non-empty arrays, got {y.size}, {z.size}, {w.size}")
    if len(np.unique(y)) < 2:
        raise ValueError("temperature scaling needs both classes in the calibration data")
    lo, hi = (math.log(b) for b in bounds)
    result = minimize_scalar(
        lambda log_t: _nll(z / math.exp(log_t), y, w), bounds=(lo, hi), method="bounded"
    )
    return float(math.exp(result.x))


def fit_platt(
    y_true: object, p_harmful: object, weights: object | None = None, *, bounds: tuple = (0.05, 20)
) -> tuple[float, float]:
    """``(T, b)`` minimising the (weighted) log-loss of ``sigmoid(logit(p) / T + b)``.

    ``T`` stays within ``bounds`` (as in `fit_temperature`), so the map stays increasing.

    Raises:
        ValueError: Empty input or a single class (no information about calibration).
    """
    from scipy.optimize import minimize

    y = np.asarray(y_true, dtype=np.float64).ravel()
    z = log_odds(p_harmful).ravel()
    w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    t0 = fit_temperature(y, p_harmful, w, bounds=bounds)  # validates the input too
    lo, hi = (math.log(b) for b in bounds)

    def loss(params: np.ndarray) -> float:
        return _nll(z / math.exp(params[0]) + params[1], y, w)

    result = minimize(
        loss, np.array([math.log(t0), 0.0]), method="L-BFGS-B", bounds=[(lo, hi), (-20.0, 20.0)]
    )
    t, b = float(math.exp(result.x[0])), float(result.x[1])
    if loss(result.x) > _nll(z / t0, y, w):  # never worse than the temperature alone
        return t0, 0.0
    return t, b


def apply_temperature(p_harmful: object, temperature: float, bias: float = 0.0) -> np.ndarray:
    """Probabilities after dividing the log-odds by ``temperature`` and adding ``bias``."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    return sigmoid(log_odds(p_harmful) / temperature + bias)


def mix_weights(domains: Sequence[str], photo_share: float) -> np.ndarray:
    """Sample weights under which photos make up ``photo_share`` of the total weight.

    Every photo gets the same weight, every other image the same weight. With no photos (or no
    other images) all weights are 1.

    Raises:
        ValueError: A share outside [0, 1].
    """
    if not 0.0 <= photo_share <= 1.0:
        raise ValueError(f"photo share must be in [0, 1], got {photo_share}")
    is_photo = np.asarray([d == "photo" for d in domains], dtype=bool)
    n_photo, n_other = int(is_photo.sum()), int((~is_photo).sum())
    if n_photo == 0 or n_other == 0:
        return np.ones(len(is_photo))
    total = len(is_photo)
    return np.where(
        is_photo, photo_share * total / n_photo, (1 - photo_share) * total / n_other
    ).astype(np.float64)


def threshold_for_recall_weighted(
    y_true: object, p_harmful: object, weights: object, target_recall: float
) -> float:
    """The highest threshold whose weighted harmful recall is at least ``target_recall``.

    Raises:
        ValueError: No harmful example with positive weight, or a target outside (0, 1].
    """
    if not 0 < target_recall <= 1:
        raise ValueError(f"target_recall must be in (0, 1], got {target_recall}")
    y = np.asarray(y_true).ravel() == 1
    p = np.asarray(p_harmful, dtype=np.float64).ravel()
    w = np.asarray(weights, dtype=np.float64).ravel()
    keep = y & (w > 0)
    if not keep.any():
        raise ValueError("no harmful examples to choose a threshold on")
    order = np.argsort(-p[keep], kind="stable")
    scores, cumulative = p[keep][order], np.cumsum(w[keep][order])
    needed = target_recall * cumulative[-1] - 1e-9
    return float(scores[int(np.searchsorted(cumulative, needed))])


def threshold_for_safe_flagged(
    y_true: object, p_harmful: object, weights: object, max_share: float
) -> float:
    """The lowest threshold that flags at most ``max_share`` of the weighted safe images.

    Scores are flagged at ``p >= threshold``; ties above the cap push the threshold just past
    them.
    """
    if not 0 <= max_share < 1:
        raise ValueError(f"max_share must be in [0, 1), got {max_share}")
    y = np.asarray(y_true).ravel() == 1
    p = np.asarray(p_harmful, dtype=np.float64).ravel()
    w = np.asarray(weights, dtype=np.float64).ravel()
    scores, weight = p[~y], w[~y]
    order = np.argsort(-scores, kind="stable")
    scores, flagged = scores[order], np.cumsum(weight[order]) / weight.sum()
    over = np.nonzero(flagged > max_share + 1e-12)[0]
    if over.size == 0:
        return 0.0
    first = scores[over[0]]  # flagging this score already breaks the cap
    return float(np.nextafter(first, np.inf))


def review_band(threshold: float, band: float) -> tuple[float, float]:
    """The review band ``threshold ± band``, clipped to [0, 1]: its low and high edge."""
    return max(0.0, threshold - band), min(1.0, threshold + band)


@dataclass(frozen=True)
class OperatingPoint:
    """Calibration and decision threshold chosen on validation.

    Attributes:
        temperature: Divides the harmful log-odds (1.0 = unchanged).
        threshold: Calibrated harmful probability at or above which an image is harmful.
        review_low: Lower edge of the review band (calibrated scale).
        review_high: Upper edge of the review band (calibrated scale).
        ece_before: Weighted-mix ECE of the uncalibrated probabilities.
        ece_after: The same after scaling.
        bias: Added to the harmful log-odds after the temperature (Platt; 0 otherwise).
        branches: Per-branch thresholds and shifts of a gated head (`harmscan.branchpoint`;
            None: one threshold for every image).
    """

    temperature: float
    threshold: float
    review_low: float
    review_high: float
    ece_before: float
    ece_after: float
    bias: float = 0.0
    branches: BranchPoint | None = None


def weighted_ece(y: np.ndarray, p: np.ndarray, w: np.ndarray, bins: int = 10) -> float:
    """`harmscan.metrics.expected_calibration_error` with sample weights."""
    edges = np.linspace(0.0, 1.0, bins + 1)[1:-1]
    index = np.clip(np.digitize(p, edges, right=True), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        m = index == b
        if m.any():
            gap = np.average(y[m], weights=w[m]) - np.average(p[m], weights=w[m])
            error += w[m].sum() / w.sum() * abs(gap)
    return float(error)


def choose_operating_point(
    y_true: object,
    p_harmful: object,
    domains: Sequence[str],
    *,
    photo_share: float,
    target_recall: float,
    band: float,
    method: str = "temperature",
    max_safe_flagged: float | None = None,
) -> OperatingPoint:
    """Fit the calibration, then the threshold for ``target_recall``, on the weighted mix.

    ``method`` is ``temperature`` (one parameter), ``platt`` (temperature and bias) or ``none``.

    Photos weigh ``photo_share`` of the mix (`mix_weights`). The threshold is the highest one
    that keeps ``target_recall``, raised further if it would flag more than ``max_safe_flagged``
    of the (weighted) safe images: the cap on false alarms wins over the recall target. The
    review band is ``threshold ± band`` on the calibrated scale.

    Raises:
        ValueError: An unknown method, or data without both classes.
    """
    if method not in CALIBRATION_METHODS:
        raise ValueError(f"unknown calibration {method!r}; valid: {', '.join(CALIBRATION_METHODS)}")
    y = np.asarray(y_true, dtype=np.int64).ravel()
    p = np.asarray(p_harmful, dtype=np.float64).ravel()
    w = mix_weights(domains, photo_share)
    t, b = 1.0, 0.0
    if method == "temperature":
        t = fit_temperature(y, p, w)
    elif method == "platt":
        t, b = fit_platt(y, p, w)
    calibrated = apply_temperature(p, t, b)
    threshold = threshold_for_recall_weighted(y, calibrated, w, target_recall)
    if max_safe_flagged is not None and (y == 0).any():
        threshold = max(threshold, threshold_for_safe_flagged(y, calibrated, w, max_safe_flagged))
    low, high = review_band(threshold, band)
    return OperatingPoint(
        temperature=t,
        threshold=threshold,
        review_low=low,
        review_high=high,
        ece_before=weighted_ece(y, p, w),
        ece_after=weighted_ece(y, calibrated, w),
        bias=b,
    )
