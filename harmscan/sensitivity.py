"""Mixed precision by measured sensitivity: which blocks of a graph to keep in float.

int8 error is measured, not guessed: the graph is quantized once with every block in int8, then
once per block with only that block kept in float, and each graph's logits are compared with the
float graph's on training images that did not calibrate the ranges (the check sets are never
used: they judge the result). Blocks are then added to the float set greedily, most helpful
first, each one kept only if the graph with it (and the blocks already chosen) is measurably
closer to float, until ``max_nodes`` nodes are float.

A block is a group of compute nodes named by the module path of the export (``/features/
features.3`` in MobileNetV2, ``/layer2/layer2.1`` in ResNet50): an inverted residual or a
bottleneck, as a per-layer search would name them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

logger = logging.getLogger(__name__)

COMPUTE_OPS: Final = ("Conv", "ConvTranspose", "Gemm", "MatMul")
# A block must cut the logit error by at least this share of the current error to be kept float:
# below it the difference is within what another calibration sample moves (measured:
# docs/int8-measurements.md).
MIN_GAIN: Final = 0.05
_INDEXED = re.compile(r"\.\d+$")

# (nodes kept float) -> logits of the selection images under the int8 graph made so
Evaluate = Callable[[Sequence[str]], np.ndarray]


def block_of(node_name: str) -> str:
    """The module path that names a node's block: up to the first indexed path component.

    ``/features/features.3/conv/conv.0/conv.0.0/Conv`` -> ``/features/features.3``;
    ``/layer1/layer1.0/conv1/Conv`` -> ``/layer1/layer1.0``; a name without an indexed
    component (``/conv1/Conv``) is its own block.
    """
    parts = node_name.split("/")
    for i, part in enumerate(parts):
        if _INDEXED.search(part):
            return "/".join(parts[: i + 1])
    return node_name


def blocks(model: Any, skip: Sequence[str] = ()) -> dict[str, list[str]]:
    """Compute nodes (convolutions, matrix products) of a graph by block, in graph order.

    Args:
        model: An ``onnx.ModelProto``.
        skip: Nodes that stay float anyway (the head).
    """
    out: dict[str, list[str]] = {}
    skipped = set(skip)
    for node in model.graph.node:
        if node.op_type in COMPUTE_OPS and node.name and node.name not in skipped:
            out.setdefault(block_of(node.name), []).append(node.name)
    return out


def logit_error(reference: np.ndarray, other: np.ndarray) -> float:
    """Mean squared difference of the row-centred logits (softmax ignores a shared offset)."""
    ref = np.asarray(reference, dtype=np.float64)
    out = np.asarray(other, dtype=np.float64)
    if ref.shape != out.shape:
        raise ValueError(f"logit shapes differ: {ref.shape} vs {out.shape}")
    ref = ref - ref.mean(axis=1, keepdims=True)
    out = out - out.mean(axis=1, keepdims=True)
    return float(np.mean((ref - out) ** 2))


@dataclass(frozen=True)
class Selection:
    """The blocks kept in float and the measurements that chose them.

    Attributes:
        float_nodes: Nodes kept in float (the chosen blocks' nodes), in graph order.
        float_blocks: The chosen blocks, in the order they were added.
        baseline: Logit error of the graph with every block in int8.
        error: Logit error of the graph with ``float_nodes`` in float.
        single: Logit error with each block alone in float.
        evaluations: Graphs quantized and scored to choose.
    """

    float_nodes: tuple[str, ...]
    float_blocks: tuple[str, ...]
    baseline: float
    error: float
    single: Mapping[str, float] = field(default_factory=dict)
    evaluations: int = 0

    def describe(self) -> str:
        """One line: which blocks stayed float and how much closer to float the graph got."""
        if self.evaluations == 0:
            return "no block kept float (nothing measured: max_float_nodes is 0)"
        if not self.float_blocks:
            return f"no block kept float (logit error {self.baseline:.4g} with all in int8)"
        return (
            f"{len(self.float_nodes)} nodes kept float ({', '.join(self.float_blocks)}): "
            f"logit error {self.baseline:.4g} -> {self.error:.4g}"
        )


def choose_float_blocks(
    units: Mapping[str, Sequence[str]],
    evaluate: Evaluate,
    reference: np.ndarray,
    *,
    max_nodes: int,
    min_gain: float = MIN_GAIN,
) -> Selection:
    """Greedy mixed precision: keep in float the blocks whose float version helps most.

    Args:
        units: Compute nodes by block (`blocks`).
        evaluate: Logits of the selection images under the int8 graph with the given nodes
            kept float.
        reference: Logits of the same images under the float graph.
        max_nodes: Largest number of nodes kept float (0: none, nothing measured).
        min_gain: Least relative cut of the current logit error for a block to be kept.

    Returns:
        The chosen blocks and the errors measured.
    """
    if max_nodes < 0:
        raise ValueError(f"max_nodes must be >= 0, got {max_nodes}")
    if max_nodes == 0 or not units:
        return Selection((), (), float("nan"), float("nan"))
    baseline = logit_error(reference, evaluate(()))
    fitting = {b: list(n) for b, n in units.items() if len(n) <= max_nodes}
    single = {b: logit_error(reference, evaluate(nodes)) for b, nodes in fitting.items()}
    evaluations = 1 + len(single)
    chosen: list[str] = []
    nodes: list[str] = []
    error = baseline
    for block in sorted(single, key=lambda b: single[b]):
        if single[block] >= baseline * (1 - min_gain):
            break  # this block and every later one did not help alone
        if len(nodes) + len(fitting[block]) > max_nodes:
            continue
        trial = nodes + fitting[block]
        trial_error = single[block] if not nodes else logit_error(reference, evaluate(trial))
        evaluations += bool(nodes)
        if trial_error < error * (1 - min_gain):
            chosen.append(block)
            nodes, error = trial, trial_error
            logger.info("keeping %s float: logit error %.4g", block, error)
    order = {name: i for i, name in enumerate(n for ns in units.values() for n in ns)}
    return Selection(
        tuple(sorted(nodes, key=order.__getitem__)),
        tuple(chosen),
        baseline,
        error,
        single,
        evaluations,
    )


def onnx_logits(model_path: Any, batches: Sequence[np.ndarray], input_name: str) -> np.ndarray:
    """Logits of a graph (one thread, as the check scores) on NCHW float batches."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    return np.concatenate([np.asarray(session.run(None, {input_name: b})[0]) for b in batches])
