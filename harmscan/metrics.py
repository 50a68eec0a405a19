"""Evaluation metrics, decision-threshold selection, calibration and the promotion decision.

Everything works on ``y_true`` (1 = harmful, 0 = safe) and ``p_harmful`` (the model's probability
of the harmful class), so no caller ever has to remember which output index is which.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn import metrics as skm

from harmscan.calibration import review_band

METRIC_NAMES = ("accuracy", "precision", "recall", "f1", "auc", "pr_auc", "ece")
DOMAINS: tuple[str, ...] = ("photo", "illustration", "emoji")
DOMAIN_METRICS = ("auc", "recall", "safe_flagged", "precision", "count")
HIGHER_IS_BETTER = {"accuracy", "precision", "recall", "f1", "auc", "pr_auc"}


def _arrays(y_true: object, p_harmful: object) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=np.int64).ravel()
    p = np.asarray(p_harmful, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"y_true has {y.size} values but p_harmful has {p.size}")
    if y.size == 0:
        raise ValueError("no predictions to score")
    if not set(np.unique(y)) <= {0, 1}:
        raise ValueError(
            f"y_true must hold 0 (safe) / 1 (harmful), got {sorted(int(v) for v in set(y))}"
        )
    return y, p


def expected_calibration_error(y_true: object, p_harmful: object, bins: int = 10) -> float:
    """ECE of the harmful probability: bin-weighted |observed harmful rate - mean probability|."""
    y, p = _arrays(y_true, p_harmful)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(p, edges[1:-1], right=True), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            error += mask.mean() * abs(y[mask].mean() - p[mask].mean())
    return float(error)


def binary_metrics(y_true: object, p_harmful: object, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, harmful precision/recall/F1, ROC AUC, PR AUC, ECE and the confusion counts.

    AUCs are NaN when only one class is present.
    """
    y, p = _arrays(y_true, p_harmful)
    pred = (p >= threshold).astype(np.int64)
    tn, fp, fn, tp = skm.confusion_matrix(y, pred, labels=[0, 1]).ravel()
    both = len(np.unique(y)) == 2
    return {
        "accuracy": float(skm.accuracy_score(y, pred)),
        "precision": float(skm.precision_score(y, pred, zero_division=0)),
        "recall": float(skm.recall_score(y, pred, zero_division=0)),
        "f1": float(skm.f1_score(y, pred, zero_division=0)),
        "auc": float(skm.roc_auc_score(y, p)) if both else float("nan"),
        "pr_auc": float(skm.average_precision_score(y, p)) if both else float("nan"),
        "ece": expected_calibration_error(y, p),
        "tn": float(tn),
        "fp": float(fp),
        "fn": float(fn),
        "tp": float(tp),
        "safe_flagged": float(fp / (fp + tn)) if fp + tn else float("nan"),
        "threshold": float(threshold),
    }


def domain_metrics(
    y_true: object, p_harmful: object, domains: object, threshold: float
) -> dict[str, float]:
    """``<domain>_<metric>`` for ``all`` and every domain of `DOMAINS`, always the same names.

    A domain with no image (or one class only) gets NaN, so runs stay comparable in MLflow.
    """
    y, p = _arrays(y_true, p_harmful)
    out: dict[str, float] = {}
    for name, mask in _domain_masks(y, domains):
        values = binary_metrics(y[mask], p[mask], threshold) if mask.any() else {}
        for metric in DOMAIN_METRICS:
            default = 0.0 if metric == "count" else float("nan")
            value = float(mask.sum()) if metric == "count" else values.get(metric, default)
            out[f"{name}_{metric}"] = value
    return out


def _domain_masks(y: np.ndarray, domains: object) -> list[tuple[str, np.ndarray]]:
    """(``all`` or a domain of `DOMAINS`, its images' mask), in that order.

    Raises:
        ValueError: Not one domain per prediction, or a domain not in `DOMAINS`.
    """
    d = np.asarray(domains, dtype=object).ravel()
    if d.shape != y.shape:
        raise ValueError(f"{d.size} domains for {y.size} predictions")
    unknown = sorted(set(d) - set(DOMAINS))
    if unknown:
        raise ValueError(f"unknown domains {unknown}; valid: {list(DOMAINS)}")
    return [("all", np.ones_like(y, dtype=bool)), *((name, d == name) for name in DOMAINS)]


@dataclass(frozen=True)
class DomainCounts:
    """One domain's figures at a threshold, as counts a reader can check by hand.

    Attributes:
        domain: ``all`` or one of `DOMAINS`.
        harmful: Harmful images.
        safe: Safe images.
        auc: ROC AUC (NaN without both labels).
        caught: Harmful images at or above the threshold.
        flagged: Safe images at or above the threshold.
        ece: Expected calibration error of the probabilities (10 bins).
    """

    domain: str
    harmful: int
    safe: int
    auc: float
    caught: int
    flagged: int
    ece: float


def domain_counts(
    y_true: object, p_harmful: object, domains: object, threshold: float
) -> list[DomainCounts]:
    """`DomainCounts` for ``all`` and each domain present, in `DOMAINS` order (the counts of
    `binary_metrics` on each domain's images).

    Raises:
        ValueError: Not one domain per prediction, or a domain not in `DOMAINS`.
    """
    y, p = _arrays(y_true, p_harmful)
    rows = []
    for name, mask in _domain_masks(y, domains):
        if not mask.any():
            continue
        m = binary_metrics(y[mask], p[mask], threshold)
        rows.append(
            DomainCounts(name, int(m["tp"] + m["fn"]), int(m["tn"] + m["fp"]), m["auc"],
                         int(m["tp"]), int(m["fp"]), m["ece"])
        )  # fmt: skip
    return rows


def threshold_for_recall(y_true: object, p_harmful: object, target_recall: float) -> float:
    """The highest threshold whose harmful recall on these scores is at least ``target_recall``.

    Raises:
        ValueError: No harmful example, or a target outside (0, 1].
    """
    if not 0 < target_recall <= 1:
        raise ValueError(f"target_recall must be in (0, 1], got {target_recall}")
    y, p = _arrays(y_true, p_harmful)
    positives = np.sort(p[y == 1])[::-1]
    if positives.size == 0:
        raise ValueError("no harmful examples to choose a threshold on")
    needed = int(np.ceil(target_recall * positives.size - 1e-9))
    return float(positives[max(needed, 1) - 1])


@dataclass(frozen=True)
class Thresholds:
    """A decision threshold and its review band."""

    threshold: float
    review_low: float
    review_high: float


def choose_thresholds(
    y_true: object, p_harmful: object, target_recall: float, band: float
) -> Thresholds:
    """Threshold for the target recall (on validation scores) with a ±band review band."""
    threshold = threshold_for_recall(y_true, p_harmful, target_recall)
    return Thresholds(threshold, *review_band(threshold, band))


@dataclass(frozen=True)
class PromotionDecision:
    """Whether a candidate takes the champion alias, and why."""

    promote: bool
    reason: str
    metric: str
    candidate: float
    champion: float | None
    failed_floors: dict[str, float] = field(default_factory=dict)


def _meets(name: str, value: float, floor: float) -> bool:
    """Whether ``value`` passes the floor of metric ``name``: at least it where higher is
    better, at most it for a lower-is-better metric (``ece``: the floor is a ceiling). NaN
    fails either way."""
    return value >= floor if name in HIGHER_IS_BETTER else value <= floor


def decide_promotion(
    candidate: dict[str, float],
    champion: dict[str, float] | None,
    *,
    metric: str,
    floors: dict[str, float],
    min_improvement: float = 0.0,
    against: str = "champion",
) -> PromotionDecision:
    """The promotion gate on one evaluation set: pass every floor (a ceiling for ``ece``), then
    beat the champion.

    Both metric dicts must come from the same split. With no champion, passing the floors is
    enough. ``against`` names the baseline in the reason (``champion``, or e.g. ``prior``).
    `harmscan.promotion.decide_gate` combines this over several named evaluation sets.
    """
    if metric not in HIGHER_IS_BETTER:
        raise ValueError(f"unknown promotion metric {metric!r}; valid: {sorted(HIGHER_IS_BETTER)}")
    unknown = sorted(set(floors) - set(METRIC_NAMES))
    if unknown:
        raise ValueError(f"unknown metrics in floors {unknown}; valid: {list(METRIC_NAMES)}")
    value = float(candidate[metric])
    failed = {
        name: float(candidate[name])
        for name, floor in floors.items()
        if not _meets(name, float(candidate[name]), floor)
    }
    if failed:
        below = ", ".join(
            f"{k}={v:.4f} {'<' if k in HIGHER_IS_BETTER else '>'} {floors[k]}"
            for k, v in failed.items()
        )
        return PromotionDecision(False, f"below floors: {below}", metric, value, None, failed)
    if champion is None:
        return PromotionDecision(True, f"no current {against}; floors passed", metric, value, None)
    current = float(champion[metric])
    needed = f"(+{min_improvement} needed)"
    if value > current + min_improvement:
        reason = f"{metric} {value:.4f} beats {against} {current:.4f} {needed}"
        return PromotionDecision(True, reason, metric, value, current)
    reason = f"{metric} {value:.4f} does not beat {against} {current:.4f} {needed}"
    return PromotionDecision(False, reason, metric, value, current)


def decide_not_worse(
    candidate: dict[str, float],
    baseline: dict[str, float] | None,
    *,
    metric: str,
    tolerance: float,
    against: str,
) -> PromotionDecision:
    """Pass unless the candidate scores more than ``tolerance`` below ``baseline`` on ``metric``.

    Used on the fixed photo gate set, against the champion and against the untrained prior.
    A NaN candidate value fails; no baseline passes.
    """
    value = float(candidate[metric])
    if baseline is None:
        return PromotionDecision(True, f"no {against} to compare", metric, value, None)
    current = float(baseline[metric])
    if value >= current - tolerance:
        reason = f"{metric} {value:.4f} not worse than {against} {current:.4f} (-{tolerance})"
        return PromotionDecision(True, reason, metric, value, current)
    reason = f"{metric} {value:.4f} worse than {against} {current:.4f} beyond -{tolerance}"
    return PromotionDecision(False, reason, metric, value, current)
