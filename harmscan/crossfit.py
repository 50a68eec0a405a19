"""Out-of-fold scores of the training images, so an operating point is chosen on held-out styles.

The gated head's drawing branch is ``a prior + b probe`` with a probe trained on the training
drawings (the dataset's clip-art and the pools, e.g. ``drawpool/``). Its threshold used to be
chosen on the validation split, which is the same clip-art the probe trained on: the probe
ranks and scores it confidently, and drawings in styles it never saw (the users' emoji) score
lower, below that threshold. Cross-fitting (stacking: Wolpert, "Stacked Generalization",
Neural Networks 1992; Platt 1999 fits his sigmoid on held-out data for the same reason) scores
every training image with a probe fitted without it: images are split into folds, the gated
probe (`harmscan.recipes.fit_gated_probe`, the same fit as the model's) is refitted on all the
other folds, and the held-out fold gets its branch log-odds. With ``sources`` each pool image's
fold is its source package (``source`` in the pool's manifest, e.g. one vendor of emoji), so
every pool image is scored by a probe that never saw its style; images without a source (the
dataset's own split) are spread over ``folds`` stratified folds. ``folds`` ignores sources.

The gate (photo vs drawing) is kept as fitted on every image: it decides which branch serves,
not what the branch learnt about harm. Each refit costs one logistic regression on the cached
features (L-BFGS on about 650 x 1280 here): seconds, no image is decoded again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from harmscan.recipes import fit_gated_probe

CROSS_FITS = ("none", "sources", "folds")


@dataclass(frozen=True)
class HeldOut:
    """Training images scored out of fold: labels, ``(n, 3)`` branch log-odds (gate, photo,
    drawing; `out_of_fold_branches`) and domains. `held_out` builds it without unscored rows."""

    y: np.ndarray
    branches: np.ndarray
    domains: list[str]


def held_out(y: object, branches: np.ndarray, domains: Sequence[str]) -> HeldOut:
    """`HeldOut` of the rows `out_of_fold_branches` scored (a fold it could not fit is left out).

    Raises:
        ValueError: Sizes that do not match.
    """
    labels = np.asarray(y, dtype=np.int64).ravel()
    b = np.asarray(branches, dtype=np.float64)
    if b.shape != (labels.size, 3) or len(domains) != labels.size:
        raise ValueError(f"{labels.size} labels, branches {b.shape}, {len(domains)} domains")
    keep = np.flatnonzero(~np.isnan(b).any(axis=1))
    return HeldOut(labels[keep], b[keep], [domains[int(i)] for i in keep])


def fold_ids(
    y: object, groups: Sequence[str | None], *, how: str, folds: int, seed: int
) -> np.ndarray:
    """The fold of every training image (0, 1, ...).

    Args:
        y: Labels (1 = harmful), used to stratify the folds.
        groups: Each image's source (a pool's vendor package), or None for the dataset's own
            images, which have none.
        how: ``sources`` (one fold per source; the images without one in ``folds`` stratified
            folds) or ``folds`` (``folds`` stratified folds over every image).
        folds: How many folds for the images without a source (``sources``) or all (``folds``).
        seed: Seeds the stratified split.

    Raises:
        ValueError: An unknown ``how`` (the valid choices are named), fewer than 2 folds, or
            sizes that do not match.
    """
    if how not in CROSS_FITS[1:]:
        raise ValueError(f"unknown train.cross_fit {how!r}; valid: {', '.join(CROSS_FITS)}")
    if folds < 2:
        raise ValueError(f"train.cross_fit_folds must be >= 2, got {folds}")
    labels = np.asarray(y, dtype=np.int64).ravel()
    if labels.size != len(groups):
        raise ValueError(f"{labels.size} labels but {len(groups)} groups")
    out = np.full(labels.size, -1, dtype=np.int64)
    pooled = (
        np.ones(labels.size, dtype=bool)
        if how == "folds"
        else np.array([g is None for g in groups], dtype=bool)
    )
    rng = np.random.default_rng(seed)
    for label in (0, 1):  # stratified: each class dealt round-robin after a shuffle
        rows = np.flatnonzero(pooled & (labels == label))
        out[rng.permutation(rows)] = np.arange(rows.size) % folds
    named = sorted({g for g in groups if g is not None and how == "sources"})
    for i, name in enumerate(named):
        out[[g == name for g in groups]] = folds + i
    return out


def out_of_fold_branches(
    features: np.ndarray,
    y: object,
    *,
    prior: np.ndarray,
    photo_probability: np.ndarray,
    folds: np.ndarray,
    c: float,
    mixes: tuple[float, float],
    photo_width: int | None = None,
) -> np.ndarray:
    """``(n, 3)``: each image's gate and its photo and drawing branch's harmful log-odds from a
    gated probe fitted on the other folds (the layout of
    `harmscan.heads.GatedPriorHead.branch_log_odds`, so calibration reads both alike).

    A fold whose complement lacks a class cannot be fitted; its images are left out (NaN rows,
    dropped by `held_out`). ``photo_width``: as `harmscan.recipes.fit_gated_probe`'s.
    """
    labels = np.asarray(y, dtype=np.int64).ravel()
    out = np.full((labels.size, 3), np.nan)
    out[:, 0] = photo_probability
    for fold in np.unique(folds):
        held = folds == fold
        rest = ~held
        if len(np.unique(labels[rest])) < 2:
            continue
        fits = fit_gated_probe(
            features[rest],
            labels[rest],
            c=c,
            prior=prior[rest],
            photo_probability=photo_probability[rest],
            mixes=mixes,
            photo_width=photo_width,
        )
        for column, fit in zip((1, 2), fits, strict=True):
            out[held, column] = fit.log_odds(features[held], prior[held])
    return out
