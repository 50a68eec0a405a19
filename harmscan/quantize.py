"""int8 models: ONNX Runtime static quantization (the check that decides whether one is served is
`harmscan.int8check`).

`quantize_int8` turns the float ONNX graph into a QDQ graph with per-channel int8 weights and
8-bit activations (uint8 by default) whose ranges are calibrated on training images (how many
and by which method are settings: ``minmax``, ``entropy`` or ``percentile``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, get_args

import numpy as np

from harmscan.qdq import Quantizer, choose_float_nodes, head_nodes
from harmscan.sensitivity import Selection

logger = logging.getLogger(__name__)

CalibrationMethod = Literal["minmax", "entropy", "percentile"]
CALIBRATION_METHODS: Final = get_args(CalibrationMethod)
ActivationType = Literal["uint8", "int8"]
FloatNodes = Literal["auto", "none"] | tuple[str, ...]
ACTIVATION_TYPES: Final = get_args(ActivationType)
# Why pre-processed QDQ, uint8 activations, int8 per-channel weights, full range: measured side
# by side in one run (bench/int8_configs.py: MobileNetV2 224 with ImageNet weights, pixel-input
# graphs, batch 16, 1 thread, best run, Xeon with AVX-512 VNNI and AMX in a VM, shared host;
# img/s relative to float, top-1 agreement with float on held-out mirror images):
#   S8S8 per-channel (what was here)   1.03-1.12x, 0.85: 15 of 52 convs stay float between Q/DQ
#       pairs and NHWC/NCHW transposes, pre-processed or not; with random weights the export's
#       shared zero biases (Identity nodes) keep 24 float without pre-processing: 0.5x
#   U8S8 per-channel, pre-processed    2.05x, 0.85: all 52 convs QLinearConv (pointwise on AMX)
#   QOperator U8S8 per-channel         2.28x, 0.85: the same kernels (difference within noise)
#   U8S8 reduce_range (7-bit weights)  1.95x, 0.51; U8S8 per-tensor 2.06x, 0.04


@dataclass(frozen=True, kw_only=True)
class QuantizeOptions:
    """How an int8 model is made.

    Attributes:
        method: Calibration of the activation ranges.
        calibration_images: Training images run through the float model to calibrate.
        per_channel: One weight scale per output channel (else one per tensor).
        percentile: The percentile kept by the ``percentile`` method.
        activations: ``uint8`` (U8S8: fast on x86) or ``int8`` (S8S8).
        float_head: Keep every node after the backbone's global pooling (the classifier, and
            the prior head's log-sum-exp over the 1000 ImageNet logits) in float.
        float_nodes: More nodes kept in float: ``auto`` (the blocks whose float version brings
            the logits measurably closer to float, `harmscan.sensitivity`), ``none``, or names.
        max_float_nodes: Most nodes ``auto`` keeps in float (speed is what they cost).
        selection_images: Training images (not calibrating) that score the blocks for ``auto``.
    """

    method: CalibrationMethod = "minmax"
    calibration_images: int = 64
    per_channel: bool = True
    percentile: float = 99.999
    activations: ActivationType = "uint8"
    float_head: bool = True
    float_nodes: FloatNodes = "none"
    max_float_nodes: int = 9
    selection_images: int = 128

    def __post_init__(self) -> None:
        if self.method not in CALIBRATION_METHODS:
            valid = ", ".join(CALIBRATION_METHODS)
            raise ValueError(f"unknown calibration method {self.method!r}; valid: {valid}")
        if self.calibration_images < 1:
            raise ValueError(f"calibration_images must be >= 1, got {self.calibration_images}")
        if self.activations not in ACTIVATION_TYPES:
            valid = ", ".join(ACTIVATION_TYPES)
            raise ValueError(f"unknown activation type {self.activations!r}; valid: {valid}")
        if isinstance(self.float_nodes, str) and self.float_nodes not in ("auto", "none"):
            raise ValueError(
                f"float_nodes must be auto, none or a list of node names, got {self.float_nodes!r}"
            )
        if self.max_float_nodes < 0:
            raise ValueError(f"max_float_nodes must be >= 0, got {self.max_float_nodes}")


def quantize_int8(
    float_model: Path,
    dest: Path,
    calibration: Iterable[np.ndarray],
    options: QuantizeOptions | None = None,
    *,
    selection: Sequence[np.ndarray] = (),
    chosen: list[Selection] | None = None,
) -> Path:
    """Statically quantize a float ONNX model (QDQ, int8 weights, 8-bit activations).

    The graph is first cleaned by ONNX Runtime's ``quant_pre_process`` (constant folding, shape
    inference): without it the export's ``Identity`` and ``Constant`` nodes keep about half of
    MobileNetV2's convolutions out of the int8 kernels (measurements above `QuantizeOptions`).
    With ``float_nodes: auto`` the ranges are calibrated once and the graph quantized once per
    block to measure which blocks to keep in float (`harmscan.sensitivity`).

    Args:
        float_model: The float graph with one float32 NCHW input.
        dest: Where to write the int8 graph.
        calibration: NCHW float32 batches, preprocessed exactly as in training evaluation.
        options: Calibration method and size, per-channel weights, activation type, float nodes.
        selection: NCHW batches that score the blocks for ``float_nodes: auto`` (training images
            that did not calibrate; the calibration batches when empty).
        chosen: Receives the `Selection` of ``float_nodes: auto``.

    Returns:
        ``dest``.
    """
    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    options = options or QuantizeOptions()
    input_name = onnx.load(str(float_model)).graph.input[0].name
    dest.parent.mkdir(parents=True, exist_ok=True)
    prepared = dest.with_name(dest.stem + ".pre.onnx")
    ranges = dest.with_name(dest.stem + ".ranges.json")
    trial = dest.with_name(dest.stem + ".trial.onnx")
    batches = list(calibration)
    quant_pre_process(str(float_model), str(prepared))
    graph = onnx.load(str(prepared))
    head = head_nodes(graph) if options.float_head else []
    quantizer = Quantizer(prepared, ranges, batches, input_name, options, head)
    ranges.unlink(missing_ok=True)
    try:
        kept = choose_float_nodes(graph, quantizer, selection, trial, chosen)
        quantizer.write(kept, dest)
    finally:
        for temporary in (prepared, ranges, trial):
            temporary.unlink(missing_ok=True)
    logger.info("int8 model (%s calibration) written to %s", options.method, dest)
    return dest
