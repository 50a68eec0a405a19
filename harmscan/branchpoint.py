"""One operating point per branch of a domain-gated head, folded into the graph.

A `harmscan.heads.GatedPriorHead` blends a photo branch and a drawing branch. One threshold
chosen on a mix of validation drawings and safe photos fits neither: the photo branch scores the
safe photos low, so the false-alarm cap stops binding and the drawings' recall sets a low
threshold that flags many safe drawings (docs/training-measurements.md, "A domain gate"). Here each
branch gets its own threshold — the photo branch on the calibration photos (the cap on safe
photos binds), the drawing branch on the other images (target recall, then the cap) — and each
is folded into its branch as a shift of the harmful log-odds towards the one stored threshold::

    shift_b = logit(stored) - logit(threshold_b)

The gate blends the shifted branch log-odds, so an image routed fully to one branch is flagged
at the stored threshold exactly when its branch's calibrated score reaches that branch's
threshold, and the review band around the stored threshold keeps working. Only two bias entries
change (`harmscan.heads.shift_branches`): the exported graph, int8 and serving are unchanged.
What the folded model serves, and its Platt refit: `harmscan.branchfold`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from harmscan.branchfold import BranchPoint, band_of, recalibrate_folded, served_probability
from harmscan.calibration import (
    OperatingPoint,
    log_odds,
    mix_weights,
    sigmoid,
    threshold_for_recall_weighted,
    weighted_ece,
)
from harmscan.crossfit import HeldOut

# BranchPoint, served_probability and recalibrate_folded live in harmscan.branchfold and stay
# importable from here.
__all__ = [
    "BRANCH_RECALIBRATIONS",
    "DRAWING_RULES",
    "GATE_OPERATING_POINTS",
    "PHOTO_THRESHOLD_SETS",
    "BranchPoint",
    "branch_threshold",
    "choose_branch_point",
    "false_alarm_threshold",
    "recalibrate_folded",
    "served_probability",
    "with_branches",
]

GATE_OPERATING_POINTS = ("mix", "per-branch")
# Where the photo branch's threshold is chosen (`choose_branch_point`).
PHOTO_THRESHOLD_SETS = ("photos", "mix")
# How the drawing branch's threshold is chosen (`choose_branch_point`).
DRAWING_RULES = ("recall", "false-alarm")
# After folding the per-branch shifts (`recalibrate_folded`).
BRANCH_RECALIBRATIONS = ("none", "platt")


def branch_threshold(
    y_true: object,
    scores: object,
    *,
    target_recall: float,
    max_safe_flagged: float | None,
    weights: object | None = None,
) -> float:
    """One branch's threshold on ``scores`` (any increasing scale; log-odds here, which do not
    saturate): the highest keeping ``target_recall`` of its harmful images (if it has any),
    raised until at most ``max_safe_flagged`` of its safe images score at or above it; both
    shares weighted by ``weights`` (None: every image counts once).

    Raises:
        ValueError: Neither harmful images nor safe images with a cap to choose on.
    """
    y = np.asarray(y_true, dtype=np.int64).ravel()
    z = np.asarray(scores, dtype=np.float64).ravel()
    w = np.ones_like(z) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    found = []
    if (y == 1).any():
        found.append(threshold_for_recall_weighted(y, z, w, target_recall))
    if max_safe_flagged is not None and (y == 0).any():
        found.append(false_alarm_threshold(y, z, rate=max_safe_flagged, weights=w))
    if not found:
        raise ValueError(
            f"no threshold from {y.size} images: a branch needs harmful images, or safe images "
            "and train.max_safe_flagged"
        )
    return max(found)


def false_alarm_threshold(
    y_true: object, scores: object, *, rate: float, weights: object | None = None
) -> float:
    """The lowest threshold on ``scores`` at which at most ``rate`` of the safe images (label 0;
    weighted by ``weights``) score at or above it: a quantile of the safe scores alone, whatever
    the harmful images' recall then is (a Neyman-Pearson operating point). ``-inf`` when even
    flagging every safe image stays within ``rate``.

    Raises:
        ValueError: No safe images, or ``rate`` outside [0, 1].
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"a false-alarm rate must be in [0, 1], got {rate}")
    y = np.asarray(y_true, dtype=np.int64).ravel()
    z = np.asarray(scores, dtype=np.float64).ravel()
    w = np.ones_like(z) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    if not (y == 0).any():
        raise ValueError(f"no safe images among {y.size} to set a false-alarm rate on")
    order = np.argsort(-z[y == 0], kind="stable")
    safe, weight = z[y == 0][order], w[y == 0][order]
    share = np.cumsum(weight) / weight.sum()
    over = np.nonzero(share > rate + 1e-12)[0]
    return float(np.nextafter(safe[over[0]], np.inf)) if over.size else -np.inf


def choose_branch_point(
    y_true: object,
    branches: object,
    domains: Sequence[str],
    point: OperatingPoint,
    *,
    target_recall: float,
    max_safe_flagged: float | None,
    photo_threshold_on: str = "photos",
    photo_share: float = 0.5,
    held_out: HeldOut | None = None,
    drawing_rule: str = "recall",
    drawing_false_alarm: float = 0.10,
) -> BranchPoint:
    """Per-branch thresholds of a gated head, as shifts towards ``point.threshold``.

    ``branches`` is ``(n, 3)``: gate, photo-branch and drawing-branch harmful log-odds before
    calibration (`harmscan.heads.GatedPriorHead.branch_log_odds`), calibrated here with the
    point's temperature and bias. The drawing branch's threshold is chosen on the images that
    are not photos, with `branch_threshold`. The photo branch's, with ``photo_threshold_on``:

    * ``photos``: on the ``photo`` images alone (safe photos only: the false-alarm cap sets it,
      so it is only as good as the calibration photos are like the photos users upload);
    * ``mix``: on every image of the mix scored by the photo branch, weighted as the mix
      (photos ``photo_share``; `harmscan.calibration.mix_weights`), i.e. the operating point a
      one-score model equal to the photo branch would get: the harmful drawings' recall and the
      cap on safe drawings and photos together.

    ``held_out``: training drawings scored out of fold (`harmscan.crossfit`); its drawings
    (not its photos) join the drawing branch's images, so that threshold is also chosen on
    styles the probe did not train on.

    The drawing branch's threshold, with ``drawing_rule``:

    * ``recall``: `branch_threshold` (``target_recall`` of the harmful drawings, then the cap);
    * ``false-alarm``: `false_alarm_threshold` at ``drawing_false_alarm`` of the safe drawings,
      the harmful drawings' recall whatever it then is: a quantile of the (many, with
      ``held_out``) safe drawings rather than of the few, in-style harmful validation ones.

    Raises:
        ValueError: A wrong shape, no photos or no other images to choose on, or an unknown
            ``photo_threshold_on`` or ``drawing_rule``.
    """
    if photo_threshold_on not in PHOTO_THRESHOLD_SETS:
        raise ValueError(
            f"unknown train.gate_photo_threshold_on {photo_threshold_on!r}; valid: "
            f"{', '.join(PHOTO_THRESHOLD_SETS)}"
        )
    if drawing_rule not in DRAWING_RULES:
        raise ValueError(
            f"unknown train.drawing_threshold {drawing_rule!r}; valid: {', '.join(DRAWING_RULES)}"
        )
    y = np.asarray(y_true, dtype=np.int64).ravel()
    b = np.asarray(branches, dtype=np.float64)
    if b.shape != (y.size, 3):
        raise ValueError(f"branches must be (n, 3) for {y.size} labels, got {b.shape}")
    is_photo = np.asarray([d == "photo" for d in domains], dtype=bool)
    if is_photo.size != y.size or not is_photo.any() or is_photo.all():
        raise ValueError(
            "a per-branch operating point needs photos and drawings in the calibration mix "
            f"(got {int(is_photo.sum())} photos of {y.size}); add photos with "
            "train.calibration_photos (e.g. photopool) or set train.gate_operating_point to "
            f"one of {', '.join(GATE_OPERATING_POINTS)}"
        )
    photo_rows = is_photo if photo_threshold_on == "photos" else np.ones_like(is_photo)
    weights = mix_weights(domains, photo_share)
    photo_z = b[photo_rows, 1] / point.temperature + point.bias
    photo = branch_threshold(
        y[photo_rows],
        photo_z,
        target_recall=target_recall,
        max_safe_flagged=max_safe_flagged,
        weights=weights[photo_rows] if photo_threshold_on == "mix" else None,
    )
    drawing_y, drawing_raw = y[~is_photo], b[~is_photo, 2]
    if held_out is not None:
        extra = np.asarray([d != "photo" for d in held_out.domains], dtype=bool)
        drawing_y = np.r_[drawing_y, held_out.y[extra]]
        drawing_raw = np.r_[drawing_raw, held_out.branches[extra, 2]]
    drawing_z = drawing_raw / point.temperature + point.bias
    if drawing_rule == "false-alarm":
        drawing = false_alarm_threshold(drawing_y, drawing_z, rate=drawing_false_alarm)
    else:
        drawing = branch_threshold(
            drawing_y, drawing_z, target_recall=target_recall, max_safe_flagged=max_safe_flagged
        )
    picked = [photo, drawing]  # in calibrated log-odds
    if not np.all(np.isfinite(picked)):
        raise ValueError(f"per-branch thresholds must be finite, got {picked} (log-odds)")
    stored = float(log_odds(point.threshold))
    return BranchPoint(
        photo_threshold=float(sigmoid(photo)),
        drawing_threshold=float(sigmoid(drawing)),
        photo_shift=stored - photo,
        drawing_shift=stored - drawing,
    )


def with_branches(
    point: OperatingPoint,
    y_true: object,
    p_harmful: object,
    branches: object,
    domains: Sequence[str],
    *,
    photo_share: float,
    target_recall: float,
    max_safe_flagged: float | None,
    photo_threshold_on: str = "photos",
    held_out: HeldOut | None = None,
    recalibration: str = "none",
    drawing_rule: str = "recall",
    drawing_false_alarm: float = 0.10,
) -> OperatingPoint:
    """``point`` (from `harmscan.calibration.choose_operating_point` on the same mix) with a
    threshold per branch (`choose_branch_point`; ``held_out`` and the drawing rule as there);
    its ``ece_after`` is then of what the folded model serves (`served_probability`, the mix
    weighted as before).
    ``recalibration`` ``platt`` then applies `recalibrate_folded`.

    Raises:
        ValueError: An unknown ``recalibration`` (the valid choices are named).
    """
    if recalibration not in BRANCH_RECALIBRATIONS:
        raise ValueError(
            f"unknown train.branch_recalibration {recalibration!r}; valid: "
            f"{', '.join(BRANCH_RECALIBRATIONS)}"
        )
    split = choose_branch_point(
        y_true,
        branches,
        domains,
        point,
        target_recall=target_recall,
        max_safe_flagged=max_safe_flagged,
        photo_threshold_on=photo_threshold_on,
        photo_share=photo_share,
        held_out=held_out,
        drawing_rule=drawing_rule,
        drawing_false_alarm=drawing_false_alarm,
    )
    out = replace(point, branches=split)
    y = np.asarray(y_true, dtype=np.int64).ravel()
    gate = np.asarray(branches, dtype=np.float64)[:, 0]
    weights = mix_weights(domains, photo_share)
    if recalibration == "platt":
        out = recalibrate_folded(out, y, p_harmful, gate, weights, band=band_of(out))
    served = served_probability(p_harmful, out, gate)
    return replace(out, ece_after=weighted_ece(y, served, weights))
