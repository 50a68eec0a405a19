"""A model ready to score: its identity, spec, preprocessing and predictor (`LoadedModel`).

How it is found and loaded is `serving.source`; the runtimes that make its predictor are
`serving.runtimes`.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harmscan.bundle import ServingSpec
from harmscan.presets import EvalPreset


class ModelUnavailable(RuntimeError):
    """The registry could not be reached, or has no usable model under the alias."""


Predictor = Callable[[np.ndarray], np.ndarray]


@dataclass
class LoadedModel:
    """A model ready to score: its identity, spec, preprocessing and predictor.

    Attributes:
        name: Registered model name.
        version: Registered model version.
        spec: What travelled with the model (labels, thresholds, preprocessing).
        runtime: ``onnx`` or ``torch``.
        predict: A batch of `preset` outputs -> per-class scores (logits unless the spec says
            otherwise): NHWC uint8 pixels when ``pixel_input``, else NCHW float32.
        max_batch: Most inputs per predictor call: what the graph accepts (1 for a fixed-batch
            ONNX export), capped at load by ``serving.batch_size``. The one bound on a model
            call: a batch with more crops (the frames of animated images) is scored in calls of
            at most this many, taken by the ``workers`` side by side.
        folder: Local folder the model was loaded from (removed by `discard`).
        workers: Threads that score parts of one batch at the same time (1: the caller alone).
            Each runs the runtime with its own ``threads``; on a small host two one-thread runs
            side by side keep both cores busy where one two-thread run waits on its slowest
            thread at every layer (measured: bench/serve_bench.py).
        precision: ``float`` or ``int8``: which graph scores (named on every result).
        pixel_input: The graph takes uint8 pixels and normalises itself.
        int8_speedup: Float time / int8 time measured on this host at load (``auto`` with an
            approved int8 graph), else None.
    """

    name: str
    version: str
    spec: ServingSpec
    runtime: str
    predict: Predictor
    max_batch: int = 1024
    folder: Path | None = None
    workers: int = 1
    precision: str = "float"
    pixel_input: bool = False
    int8_speedup: float | None = None
    preset: EvalPreset = field(init=False)
    _pool: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"inference workers must be >= 1, got {self.workers}")
        self.preset = EvalPreset.from_spec(self.spec, normalize_in_model=self.pixel_input)

    def p_harmful(self, batch: np.ndarray) -> np.ndarray:
        """Harmful probability of each image of a batch of `preset` outputs, in label order."""
        step = self.max_batch
        if self.workers > 1 and len(batch) > 1:
            step = min(step, -(-len(batch) // self.workers))
        chunks = [batch[i : i + step] for i in range(0, len(batch), step)]
        if self.workers > 1 and len(chunks) > 1:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="infer")
            scores = list(self._pool.map(self.predict, chunks))
        else:
            scores = [self.predict(chunk) for chunk in chunks]
        parts = [self._probabilities(score) for score in scores]
        probs = np.concatenate(parts) if parts else np.zeros((0, len(self.spec.labels)))
        return probs[:, self.spec.harmful_index].astype(np.float64)

    def warm_up(self, batch: int) -> float:
        """Run the model once on blank batches of 1 and ``batch`` images; the seconds it took.

        The first run of a session (and the first at a larger batch) allocates and plans memory:
        done at load time, so the first requests (and the first after a hot swap) do not pay it.

        Raises:
            ModelUnavailable: The model does not run or returns the wrong shape.
        """
        start = time.perf_counter()
        size = self.spec.image_size
        for n in sorted({1, max(1, min(batch, self.max_batch))}):
            if self.pixel_input:
                self.p_harmful(np.zeros((n, size, size, 3), dtype=np.uint8))
            else:
                self.p_harmful(np.zeros((n, 3, size, size), dtype=np.float32))
        return time.perf_counter() - start

    def _probabilities(self, scores: np.ndarray) -> np.ndarray:
        scores = np.asarray(scores, dtype=np.float64)
        if scores.ndim != 2 or scores.shape[1] != len(self.spec.labels):
            raise ModelUnavailable(
                f"model {self.name} v{self.version} returned shape {scores.shape}; expected "
                f"(batch, {len(self.spec.labels)}) for labels {self.spec.labels}"
            )
        if self.spec.extra.get("output", "logits") == "probabilities":
            return scores
        shifted = scores - scores.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        return exp / exp.sum(axis=1, keepdims=True)

    def discard(self) -> None:
        """Stop the scoring threads and remove the downloaded files of a model no longer served."""
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
