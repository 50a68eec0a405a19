"""Images as serving sees them: decoded like the consumer, scored by pixel-input graphs.

`pixel_batches` decodes with JPEG draft mode and centre-crops into uint8 NHWC batches (what the
pixel graphs of `harmscan.onnx_export` take); `normalized_batches` makes the float NCHW batches
that calibrate int8; `p_harmful_each` scores images under several graphs, decoding each once.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from harmscan.bundle import HARMFUL, ServingSpec
from harmscan.imageio import load_image
from harmscan.imagepolicy import ImageRejected
from harmscan.presets import EvalPreset, normalize

logger = logging.getLogger(__name__)


def pixel_batches(
    paths: Sequence[Path], preset: EvalPreset, batch_size: int = 16
) -> Iterator[tuple[list[int], np.ndarray]]:
    """(indices, NHWC uint8 batch) of the images that decode, decoded as the consumer does."""
    indices: list[int] = []
    arrays: list[np.ndarray] = []
    for index, path in enumerate(paths):
        try:
            image = load_image(path, draft=preset.draft_size)
        except ImageRejected as exc:
            logger.warning("skipping %s: %s", path, exc)
            continue
        indices.append(index)
        arrays.append(preset.pixels(image))
        if len(arrays) == batch_size:
            yield indices, np.stack(arrays)
            indices, arrays = [], []
    if arrays:
        yield indices, np.stack(arrays)


def p_harmful(onnx_path: Path, spec: ServingSpec, paths: Sequence[Path]) -> np.ndarray:
    """Harmful probability of each image under a pixel-input graph (NaN where it won't decode)."""
    return p_harmful_each((onnx_path,), spec, paths)[0]


def p_harmful_each(
    graphs: Sequence[Path], spec: ServingSpec, paths: Sequence[Path]
) -> list[np.ndarray]:
    """`p_harmful` under several pixel-input graphs, each image decoded once for all of them.

    One thread per session, as the consumer runs them: on a small shared host more threads that
    wait on each other were slower, not faster.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    sessions = [
        ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        for graph in graphs
    ]
    preset = EvalPreset.from_spec(spec, normalize_in_model=True)
    harmful = spec.labels.index(HARMFUL)
    outs = [np.full(len(paths), np.nan) for _ in graphs]
    for indices, batch in pixel_batches(paths, preset):
        for session, out in zip(sessions, outs, strict=True):
            feed = {session.get_inputs()[0].name: batch}
            logits = np.asarray(session.run(None, feed)[0], dtype=np.float64)
            shifted = logits - logits.max(axis=1, keepdims=True)
            probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
            out[indices] = probs[:, harmful]
    return outs


def sample_paths(paths: Sequence[Path], count: int, *, seed: int = 0) -> list[Path]:
    """``count`` of ``paths`` drawn reproducibly (all of them when there are fewer)."""
    return random.Random(seed).sample(  # noqa: S311 (a reproducible sample, not a secret)
        list(paths), min(count, len(paths))
    )


def normalized_batches(
    paths: Sequence[Path], spec: ServingSpec, *, batch_size: int = 8
) -> list[np.ndarray]:
    """NCHW float batches of the images of ``paths`` that decode, decoded as served."""
    preset = EvalPreset.from_spec(spec)
    batches: list[np.ndarray] = []
    for _, pixels in pixel_batches(paths, preset, batch_size):
        batches.append(np.stack([normalize(p, preset.mean, preset.std) for p in pixels]))
    return batches


def calibration_batches(
    paths: Sequence[Path], spec: ServingSpec, count: int, *, seed: int = 0, batch_size: int = 8
) -> list[np.ndarray]:
    """NCHW float batches of ``count`` images drawn (seeded) from ``paths``, decoded as served."""
    return normalized_batches(sample_paths(paths, count, seed=seed), spec, batch_size=batch_size)
