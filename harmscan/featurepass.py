"""Pooled backbone features through ONNX Runtime: the probe's augmented views, cheaply.

`harmscan.recipes.extract_features` runs the backbone in torch. For the probe's augmented views
(``train.probe_views``: N times the training images) that pass is most of the cost, and on this
project's 2-core CPUs torch's MobileNetV2 takes about 4x the CPU time per image of the same graph
in ONNX Runtime (bench/probe_views_bench.py). `onnx_features` exports the model with its head
bypassed (one ONNX graph, dynamic batch, `harmscan.models.export_onnx`) and runs the batches
through it; its features equal torch's to float32 rounding (a few 1e-5), and the model is left
as it was.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from harmscan.engine import Batches
from harmscan.heads import final_layer, set_final_layer
from harmscan.models import export_onnx


def onnx_features(
    model: nn.Module, arch: str, batches: Batches, *, threads: int
) -> tuple[np.ndarray, np.ndarray]:
    """Pooled backbone features and labels of every batch, computed by ONNX Runtime.

    Args:
        model: The model; its final layer is bypassed for the export and restored after.
        arch: Its architecture (where the final layer is).
        batches: ``(images, targets)`` batches of one image size (the first one sets it).
        threads: ONNX Runtime's intra-op threads.

    Raises:
        ValueError: No batches.
    """
    import onnxruntime as ort

    iterator: Iterator[Any] = iter(batches)
    first = next(iterator, None)
    if first is None:
        raise ValueError("no batches to extract features from")
    device = next(model.parameters()).device
    head = final_layer(model, arch)
    set_final_layer(model, arch, nn.Identity())
    try:
        with tempfile.TemporaryDirectory(prefix="harmscan-features-") as tmp:
            graph = export_onnx(model, Path(tmp) / "features.onnx", int(first[0].shape[-1]))
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
    finally:
        set_final_layer(model, arch, head)
        model.to(device)
    xs, ys = [], []
    for images, targets in _chain(first, iterator):
        array = images.detach().cpu().numpy().astype(np.float32, copy=False)
        xs.append(np.asarray(session.run(None, {"input": array})[0], dtype=np.float32))
        ys.append(torch.as_tensor(targets).numpy())
    return np.concatenate(xs), np.concatenate(ys)


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest
