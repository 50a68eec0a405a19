"""Temperature scaling of harmful log-odds, and sample weights that mix domains.

The temperature is fitted on validation log-odds (one parameter, so rankings and ROC AUC are
unchanged) and folded into the model's last layer (`harmscan.heads.scale_logits`), so the exported
graph and serving see calibrated probabilities with no change to serving.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.optimize import minimize_scalar

EPS = 1e-7
DOMAINS: tuple[str, ...] = ("photo", "illustration", "emoji")


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


def apply_temperature(p_harmful: object, temperature: float) -> np.ndarray:
    """Probabilities after dividing the log-odds by ``temperature``."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    return sigmoid(log_odds(p_harmful) / temperature)


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
