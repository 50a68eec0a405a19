"""The two runtimes a served model runs in: ONNX Runtime (default) and torch, as predictors.

A predictor takes a batch of the model's inputs and returns its per-class scores
(`serving.model.Predictor`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import numpy as np

from harmscan.onnx_export import INPUT_UINT8
from serving.model import Predictor

logger = logging.getLogger(__name__)

Runtime = Literal["onnx", "torch"]
RUNTIMES: tuple[str, ...] = ("onnx", "torch")


def onnx_predictor(path: Path, threads: int) -> tuple[Predictor, int]:
    """An ONNX Runtime CPU predictor for ``path`` and the largest batch it accepts.

    A graph with a uint8 input (`harmscan.onnx_export`) gets the pixels as they are; any other
    gets float32.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # ORT's pool threads spin between runs by default: on a small host that burns the core the
    # decode threads (and the Kafka clients) need. Sleep instead (measured: bench/serve_bench.py).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    model_input = session.get_inputs()[0]
    first_dim = model_input.shape[0] if model_input.shape else None
    max_batch = first_dim if isinstance(first_dim, int) and first_dim > 0 else 1024
    dtype = np.uint8 if model_input.type == INPUT_UINT8 else np.float32

    def predict(batch: np.ndarray) -> np.ndarray:
        outputs = session.run(None, {model_input.name: batch.astype(dtype, copy=False)})
        return np.asarray(outputs[0])

    return predict, max_batch


def torch_predictor(model_dir: Path, threads: int) -> Predictor:
    """A torch CPU predictor from an MLflow pytorch model folder."""
    import mlflow.pytorch
    import torch

    torch.set_num_threads(threads)
    module = mlflow.pytorch.load_model(str(model_dir), map_location="cpu")
    try:
        module.eval()
    except NotImplementedError:
        # A pt2 (torch.export) graph keeps the mode it was exported in; training exports in eval.
        logger.debug("exported torch graph: eval() not applicable")

    def predict(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(np.ascontiguousarray(batch))).float().numpy()

    return predict
