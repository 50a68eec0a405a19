"""Transfer recipes: linear probe on frozen features, LP-FT, the ImageNet prior, WiSE-FT.

* ``finetune``: today's — a new linear head, a frozen-backbone warm-up, then every layer.
* ``probe``: the backbone stays as pretrained; the head is a logistic regression fitted (L-BFGS,
  L2) on cached features of the un-augmented training images.
* ``lp-ft``: the probe first, then every layer fine-tuned from it with a small learning rate
  (Kumar et al., ICLR 2022: a random head distorts the features while it is being fitted).
* ``prior``: no training at all: the ImageNet classifier's mass on harmful classes
  (`harmscan.heads.PriorHead`); calibration only.

``train.head = prior`` puts the `PriorHead` under ``finetune``/``probe``/``lp-ft``: the probe's
log-odds then add to the prior's (jointly fitted, or mixed with a fixed weight ``prior_mix``).
``train.wise_alpha`` interpolates every parameter between the start of fine-tuning and its end
(WiSE-FT, Wortsman et al., CVPR 2022).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from torch import nn

from harmscan.engine import Batches
from harmscan.heads import PriorHead, final_layer, set_final_layer, set_log_odds

logger = logging.getLogger(__name__)

RECIPES: tuple[str, ...] = ("finetune", "probe", "lp-ft", "prior")
HEADS: tuple[str, ...] = ("linear", "prior", "prior-gated")
StateDict = dict[str, torch.Tensor]


def check_recipe(recipe: str, head: str) -> None:
    """Validate a recipe/head pair.

    Raises:
        ValueError: Unknown names, or ``prior`` with a linear head.
    """
    if recipe not in RECIPES:
        raise ValueError(f"unknown train.recipe {recipe!r}; valid: {', '.join(RECIPES)}")
    if head not in HEADS:
        raise ValueError(f"unknown train.head {head!r}; valid: {', '.join(HEADS)}")
    if recipe == "prior" and head != "prior":
        raise ValueError("train.recipe=prior needs train.head=prior")
    if head == "prior-gated" and recipe != "probe":
        raise ValueError(f"train.head=prior-gated needs train.recipe=probe, got {recipe!r}")


def recipe_name(recipe: str, head: str, wise_alpha: float | None) -> str:
    """A short name of the whole recipe, e.g. ``lp-ft+prior+wise0.5`` (an MLflow tag)."""
    prior = {"prior": "+prior", "prior-gated": "+prior-gated"}.get(head, "")
    name = recipe + (prior if recipe != "prior" else "")
    return name + (f"+wise{wise_alpha:g}" if wise_alpha is not None and trains(recipe) else "")


def trains(recipe: str) -> bool:
    """Whether the recipe runs gradient descent over the backbone."""
    return recipe in ("finetune", "lp-ft")


@torch.inference_mode()
def extract_features(
    model: nn.Module, arch: str, batches: Batches, device: torch.device
) -> tuple[np.ndarray, np.ndarray]:
    """Pooled backbone features and labels of every batch (model in eval mode, head bypassed)."""
    head = final_layer(model, arch)
    set_final_layer(model, arch, nn.Identity())
    try:
        model.eval().to(device)
        xs, ys = [], []
        for images, targets in batches:
            xs.append(model(images.to(device)).float().cpu().numpy())
            ys.append(targets.numpy())
    finally:
        set_final_layer(model, arch, head)
    if not xs:
        raise ValueError("no batches to extract features from")
    return np.concatenate(xs), np.concatenate(ys)


@torch.inference_mode()
def prior_log_odds(head: PriorHead, features: np.ndarray) -> np.ndarray:
    """``logit(m)`` of the ImageNet harmful-class mass for cached features (their first
    columns, the backbone's, when tap columns follow: `harmscan.taps`)."""
    x = torch.from_numpy(features[:, : head.imagenet.in_features]).to(head.linear.weight)
    pair = head.prior_logits(x).double().cpu().numpy()
    return pair[:, 1] - pair[:, 0]


@dataclass(frozen=True)
class LinearFit:
    """Harmful log-odds ``prior * logit(m) + weight . f + bias``; a fit on the leading columns
    of the features (the photo branch beside tap columns) reads those."""

    weight: np.ndarray
    bias: float
    prior: float = 0.0

    def log_odds(self, features: np.ndarray, prior: np.ndarray | None = None) -> np.ndarray:
        """Harmful log-odds of ``(n, d)`` features; ``prior``: ``logit(m)`` per row, for a fit
        beside the prior (None: the linear part alone)."""
        linear = features[:, : len(self.weight)] @ self.weight + self.bias
        return linear if prior is None else self.prior * prior + linear


def _logistic(x: np.ndarray, y: np.ndarray, c: float, w: np.ndarray | None) -> LinearFit:
    """L2 logistic regression on standardised columns, mapped back to raw columns."""
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    clf = LogisticRegression(C=c, max_iter=2000)
    clf.fit((x - mean) / std, y, sample_weight=w)
    coef = clf.coef_[0] / std
    return LinearFit(coef, float(clf.intercept_[0] - coef @ mean))


def fit_probe(
    features: np.ndarray,
    y: np.ndarray,
    *,
    c: float,
    prior: np.ndarray | None = None,
    prior_mix: float | None = None,
    sample_weight: np.ndarray | None = None,
) -> LinearFit:
    """Fit the linear head on frozen features, alone or beside the prior's log-odds.

    Args:
        features: ``(n, d)`` pooled features.
        y: 1 = harmful, 0 = safe.
        c: Inverse L2 strength on standardised features (scikit-learn's ``C``).
        prior: ``logit(m)`` per image, for a prior head; None for a linear head.
        prior_mix: With a prior: None fits the prior's weight jointly with the features; a
            number in [0, 1] fixes the mix of the two standardised log-odds (0.5 = equal), and
            only their common scale and the bias are fitted.
        sample_weight: Per-sample weights.
    """
    y = np.asarray(y).ravel()
    if prior is None:
        return _logistic(features, y, c, sample_weight)
    if prior_mix is None:
        joint = _logistic(np.column_stack([features, prior]), y, c, sample_weight)
        return LinearFit(joint.weight[:-1], joint.bias, float(joint.weight[-1]))
    if not 0.0 <= prior_mix <= 1.0:
        raise ValueError(f"train.prior_mix must be in [0, 1] or null, got {prior_mix}")
    return _fixed_mix_fits(features, y, c, prior, (prior_mix,), None, sample_weight)[0]


def _fixed_mix_fits(
    features: np.ndarray,
    y: np.ndarray,
    c: float,
    prior: np.ndarray,
    mixes: tuple[float, ...],
    photo_probability: np.ndarray | None,
    sample_weight: np.ndarray | None,
    widths: tuple[int, ...] | None = None,
) -> list[LinearFit]:
    """The probe beside the prior at fixed mixes of their standardised log-odds, one fit per mix.

    Each mix ``m`` gives ``a prior + b probe`` with ``a = m / std(prior)`` and ``b = (1 - m) /
    std(probe)``; one common scale and bias are then fitted on that mix (one mix), or on the
    two mixes blended per image by ``photo_probability`` (photo mix first). ``widths``: the
    leading columns each mix's probe reads (None: all); a narrower probe is fitted on its own,
    unless its mix is 1 (the prior alone: zero weights).
    """
    full = features.shape[1]
    widths = widths or (full,) * len(mixes)
    probes: dict[int, LinearFit] = {}
    for m, width in zip(mixes, widths, strict=True):
        if width not in probes and (m < 1.0 or width == full):
            probes[width] = _logistic(features[:, :width], y, c, sample_weight)
    chosen = [probes.get(w, LinearFit(np.zeros(w), 0.0)) for w in widths]
    scores = [p.log_odds(features) for p in chosen]
    pairs = [
        (m / (prior.std() + 1e-6), (1 - m) / (score.std() + 1e-6))
        for m, score in zip(mixes, scores, strict=True)
    ]
    mixed = [a * prior + b * score for (a, b), score in zip(pairs, scores, strict=True)]
    if photo_probability is None:
        blended = mixed[0]
    else:
        g = photo_probability
        blended = g * mixed[0] + (1 - g) * mixed[1]
    scale = _logistic(blended[:, None], y, 1e6, sample_weight)
    s = float(scale.weight[0])  # raw units: _logistic undoes its standardisation
    return [
        LinearFit(s * b * p.weight, s * b * p.bias + scale.bias, s * a)
        for (a, b), p in zip(pairs, chosen, strict=True)
    ]


def fit_gate(
    drawings: np.ndarray, photos: np.ndarray, *, c: float, drawings_as_photos: float | None = None
) -> LinearFit:
    """Photo-vs-drawing logistic regression on pooled features (photos = 1), both classes
    weighted equally however many images each has.

    ``drawings_as_photos``: if fewer than that share of ``drawings`` fall on the photo side, the
    boundary (the bias) moves towards the drawings until that share does; never the other way.
    """
    if len(drawings) == 0 or len(photos) == 0:
        raise ValueError("the domain gate needs both drawings and photos to train on")
    x = np.concatenate([drawings, photos])
    y = np.r_[np.zeros(len(drawings)), np.ones(len(photos))]
    w = np.r_[np.full(len(drawings), 0.5 / len(drawings)), np.full(len(photos), 0.5 / len(photos))]
    gate = _logistic(x, y, c, w * len(y))
    if drawings_as_photos is None:
        return gate
    logits = gate.log_odds(drawings)
    edge = float(np.quantile(logits, 1 - drawings_as_photos))
    return LinearFit(gate.weight, gate.bias - min(edge, 0.0))


def fit_gated_probe(
    features: np.ndarray,
    y: np.ndarray,
    *,
    c: float,
    prior: np.ndarray,
    photo_probability: np.ndarray,
    mixes: tuple[float, float],
    sample_weight: np.ndarray | None = None,
    photo_width: int | None = None,
) -> tuple[LinearFit, LinearFit]:
    """The probe beside the prior with one fixed mix per domain, blended by the gate.

    The harmful log-odds are ``g * (a_p prior + b_p probe) + (1 - g) * (a_d prior + b_d
    probe)`` on the standardised log-odds (as `fit_probe` with ``prior_mix``), then one common
    scale and bias are fitted. Returns the photo and the drawing branch; each equals
    `fit_probe` at its mix up to that common scale and bias. ``photo_width``: the leading
    columns the photo branch reads (the backbone's, when tap columns follow); None: all.
    """
    for mix in mixes:
        if not 0.0 <= mix <= 1.0:
            raise ValueError(f"gate mixes must be in [0, 1], got {mixes}")
    g = np.asarray(photo_probability).ravel()
    y = np.asarray(y).ravel()
    widths = (photo_width or features.shape[1], features.shape[1])
    photo, drawing = _fixed_mix_fits(features, y, c, prior, mixes, g, sample_weight, widths)
    return photo, drawing


def apply_fit(layer: nn.Module, fit: LinearFit) -> None:
    """Write a `LinearFit` into a final layer (`harmscan.heads.set_log_odds`)."""
    set_log_odds(layer, torch.from_numpy(np.asarray(fit.weight)), fit.bias, fit.prior)


def snapshot(model: nn.Module) -> StateDict:
    """A detached CPU copy of the model's state dict."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def interpolate(start: StateDict, end: StateDict, alpha: float) -> StateDict:
    """WiSE-FT: ``(1 - alpha) * start + alpha * end`` for every floating tensor.

    Integer buffers (BatchNorm's batch counters) come from ``end`` when ``alpha >= 0.5``, else
    from ``start``. alpha 0 gives ``start`` and alpha 1 gives ``end``, exactly.

    Raises:
        ValueError: alpha outside [0, 1], or state dicts with different keys.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"WiSE-FT alpha must be in [0, 1], got {alpha}")
    if start.keys() != end.keys():
        raise ValueError(f"state dicts differ in keys: {sorted(start.keys() ^ end.keys())[:5]}")
    out = {}
    for key, a in start.items():
        b = end[key]
        if a.is_floating_point():
            out[key] = a if alpha == 0 else b if alpha == 1 else (1 - alpha) * a + alpha * b
        else:
            out[key] = b if alpha >= 0.5 else a
    return out


@dataclass
class WiseCurve:
    """Validation score per interpolation weight, and the chosen one."""

    alphas: list[float] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)

    @property
    def best(self) -> float:
        """The alpha of the highest score (the larger alpha on ties)."""
        pairs = zip(self.scores, self.alphas, strict=True)
        return max((-np.inf if np.isnan(s) else s, a) for s, a in pairs)[1]


def wise_curve(
    model: nn.Module,
    start: StateDict,
    end: StateDict,
    alphas: Sequence[float],
    score: Callable[[nn.Module], float],
) -> WiseCurve:
    """Score the interpolated model at each alpha (the model is left at the last alpha)."""
    curve = WiseCurve()
    for alpha in alphas:
        model.load_state_dict(interpolate(start, end, alpha))
        curve.alphas.append(float(alpha))
        curve.scores.append(float(score(model)))
        logger.info("WiSE-FT alpha %.2f: validation score %.4f", alpha, curve.scores[-1])
    return curve
