"""Behavioural checks of a trained model, in the style of Made-With-ML's ``tests/model``.

* invariance: a resize, a JPEG re-encode, a horizontal flip or a small crop of an image must not
  move its harmful probability by more than a tolerance;
* minimum functionality: on clear cases every clear harmful photo scores above every clear safe
  one (threshold-free, so it holds for any calibration).

The checks take a scorer (PIL images -> harmful probabilities), so the same ones run against a
model in memory or a registered champion.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import nn

from harmscan.bundle import ServingSpec
from harmscan.presets import EvalPreset

Scorer = Callable[[Sequence[Image.Image]], np.ndarray]


def torch_scorer(model: nn.Module, spec: ServingSpec) -> Scorer:
    """Score PIL images with a torch model through the spec's eval preset."""
    preset = EvalPreset.from_spec(spec)
    model = model.eval().cpu()

    def score(images: Sequence[Image.Image]) -> np.ndarray:
        batch = torch.stack([preset(image.convert("RGB")) for image in images])
        with torch.inference_mode():
            probs = torch.softmax(model(batch).float(), dim=1)
        return probs[:, spec.harmful_index].numpy().astype(np.float64)

    return score


def served_scorer(model: Any) -> Scorer:
    """Score PIL images as the consumer does: the loaded model's own preset, then its graph.

    ``model`` is a `serving.model.LoadedModel` (e.g. ``ModelSource(...).load()``: the registry
    download and the ONNX graph serving runs); the consumer's decode step is skipped.
    """

    def score(images: Sequence[Image.Image]) -> np.ndarray:
        batch = np.stack([model.preset.model_input(image.convert("RGB")) for image in images])
        return np.asarray(model.p_harmful(batch), dtype=np.float64)

    return score


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def _crop(image: Image.Image, keep: float, corner: bool) -> Image.Image:
    w, h = image.size
    cw, ch = int(w * keep), int(h * keep)
    left, top = (0, 0) if corner else ((w - cw) // 2, (h - ch) // 2)
    return image.crop((left, top, left + cw, top + ch))


PERTURBATIONS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "resize_half": lambda im: im.resize((max(1, im.width // 2), max(1, im.height // 2))),
    "resize_double": lambda im: im.resize((im.width * 2, im.height * 2)),
    "jpeg_q60": lambda im: _jpeg(im, 60),
    "hflip": ImageOps.mirror,
    "crop_90_centre": lambda im: _crop(im, 0.9, corner=False),
    "crop_90_corner": lambda im: _crop(im, 0.9, corner=True),
}


def invariance_gaps(score: Scorer, images: Sequence[Image.Image]) -> dict[str, float]:
    """The largest change of the harmful probability per perturbation, over ``images``."""
    base = score(images)
    return {
        name: float(np.max(np.abs(score([change(im) for im in images]) - base)))
        for name, change in PERTURBATIONS.items()
    }


def assert_invariant(score: Scorer, images: Sequence[Image.Image], tolerance: float) -> None:
    """Every perturbation moves every image's harmful probability by at most ``tolerance``."""
    gaps = invariance_gaps(score, images)
    broken = {name: round(gap, 4) for name, gap in gaps.items() if gap > tolerance}
    assert not broken, f"harmful probability moved more than {tolerance}: {broken}"


def assert_clear_cases_ranked(
    score: Scorer, harmful: Sequence[Image.Image], safe: Sequence[Image.Image]
) -> None:
    """Every clear harmful image scores above every clear safe image."""
    p_harmful, p_safe = score(harmful), score(safe)
    assert p_harmful.min() > p_safe.max(), (
        f"clear cases out of order: harmful scores {np.round(p_harmful, 4).tolist()}, "
        f"safe scores {np.round(p_safe, 4).tolist()}"
    )
