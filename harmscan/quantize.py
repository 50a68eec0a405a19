"""int8 models: ONNX Runtime static quantization, and the check that decides whether one is served.

`quantize_int8` turns the float ONNX graph into a QDQ graph with per-channel int8 weights and
8-bit activations (uint8 by default) whose ranges are calibrated on training images (how many
and by which method are settings: ``minmax``, ``entropy`` or ``percentile``). `check_int8`
compares the int8 model's ROC AUC with the float model's on the same images, overall and in
every group (split, domain): int8 is approved only if it loses at most ``tolerance`` everywhere
(a group too small for one swapped pair to stay within ``tolerance`` is judged on its verdicts at
the stored threshold instead), and the verdict says why.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, get_args

import numpy as np

from harmscan.metrics import binary_metrics
from harmscan.qdq import Quantizer, choose_float_nodes, head_nodes
from harmscan.sensitivity import Selection

logger = logging.getLogger(__name__)

CalibrationMethod = Literal["minmax", "entropy", "percentile"]
CALIBRATION_METHODS: Final = get_args(CalibrationMethod)
ActivationType = Literal["uint8", "int8"]
FloatNodes = Literal["auto", "none"] | tuple[str, ...]
ACTIVATION_TYPES: Final = get_args(ActivationType)
DEFAULT_TOLERANCE: Final = 0.005
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


@dataclass(frozen=True)
class Int8Check:
    """Whether the int8 model may be served instead of the float one, and why.

    Attributes:
        approved: int8 lost at most ``tolerance`` of AUC overall and in every group.
        reason: One line: what passed, or the groups that failed and by how much.
        tolerance: The largest AUC loss allowed.
        float_auc: Float model's AUC per group (``all`` and the named groups).
        int8_auc: int8 model's AUC per group.
        skipped: Groups without both classes (AUC undefined), not judged.
        float_nodes: Nodes of the int8 graph kept in float besides the head (mixed precision).
    """

    approved: bool
    reason: str
    tolerance: float
    float_auc: dict[str, float] = field(default_factory=dict)
    int8_auc: dict[str, float] = field(default_factory=dict)
    skipped: tuple[str, ...] = ()
    float_nodes: tuple[str, ...] = ()

    def summary(self) -> dict[str, float]:
        """Flat metrics for a tracking server: ``int8_auc_<group>`` and ``float_auc_<group>``."""
        out: dict[str, float] = {}
        for group, value in self.float_auc.items():
            out[f"float_auc_{_metric_name(group)}"] = value
            out[f"int8_auc_{_metric_name(group)}"] = self.int8_auc[group]
        return out


def _metric_name(group: str) -> str:
    return "".join(c if c.isalnum() or c in "_-." else "_" for c in group)


def _auc(y_true: np.ndarray, p: np.ndarray) -> float:
    return float(binary_metrics(y_true, p)["auc"])


def _group_aucs(
    y: np.ndarray, pf: np.ndarray, pq: np.ndarray, masks: Mapping[str, np.ndarray]
) -> tuple[dict[str, float], dict[str, float], list[str]]:
    """Float and int8 AUC of every group with both classes, and the groups without."""
    float_auc: dict[str, float] = {}
    int8_auc: dict[str, float] = {}
    skipped: list[str] = []
    for name, mask in masks.items():
        if len(set(y[mask].tolist())) < 2:
            skipped.append(name)
            continue
        float_auc[name] = _auc(y[mask], pf[mask])
        int8_auc[name] = _auc(y[mask], pq[mask])
    return float_auc, int8_auc, skipped


def pair_step(y: np.ndarray) -> float:
    """How much one (harmful, safe) pair changing order moves the AUC of these labels."""
    pairs = int(np.sum(y == 1)) * int(np.sum(y == 0))
    return 1.0 / pairs if pairs else float("inf")


def _verdict_failure(
    name: str, y: np.ndarray, pf: np.ndarray, pq: np.ndarray, threshold: float, tolerance: float
) -> str | None:
    """A group too small for its AUC to resolve ``tolerance``, judged on the verdicts at the
    stored threshold instead: int8 must catch every harmful image float catches in number and
    flag no more safe ones. None when it holds, else why not."""
    caught = (int(np.sum((pf >= threshold) & (y == 1))), int(np.sum((pq >= threshold) & (y == 1))))
    flagged = (int(np.sum((pf >= threshold) & (y == 0))), int(np.sum((pq >= threshold) & (y == 0))))
    if caught[1] >= caught[0] and flagged[1] <= flagged[0]:
        return None
    return (
        f"{name}: {int(np.sum(y == 1))} harmful x {int(np.sum(y == 0))} safe, one pair moves "
        f"its AUC {pair_step(y):.4f} > {tolerance}, so judged at threshold {threshold:.4g}: "
        f"harmful caught {caught[0]} -> {caught[1]}, safe flagged {flagged[0]} -> {flagged[1]}"
    )


def check_int8(
    y_true: object,
    p_float: object,
    p_int8: object,
    groups: Mapping[str, object] | None = None,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    threshold: float | None = None,
) -> Int8Check:
    """Approve int8 only if its AUC is within ``tolerance`` of float overall and in every group.

    A group's AUC moves in steps of one (harmful, safe) pair changing order: ``1 / (harmful x
    safe)``. Where that step is larger than ``tolerance`` (fewer than 200 pairs at 0.005, e.g.
    14 harmful and 13 safe images) a single pair would fail the group, so the AUC cannot show
    what the tolerance asks; given the stored ``threshold``, such a group is judged on its
    verdicts instead (int8 catches no fewer of its harmful images and flags no more of its safe
    ones than float). Its images still count in every larger group that holds them.

    Args:
        y_true: 0/1 labels (1 = harmful) of the checked images.
        p_float: Harmful probability from the float model.
        p_int8: Harmful probability from the int8 model, same images and order.
        groups: Boolean masks over the images, by group name (e.g. ``val``, ``val/photo``,
            ``gate/photo``). ``all`` (every image) is always checked.
        tolerance: Largest AUC loss allowed.
        threshold: The stored threshold on the harmful probability (None: every group with
            both classes is judged on AUC, however small).

    Returns:
        The verdict; groups with a single class are listed in ``skipped``.
    """
    y = np.asarray(y_true, dtype=np.int64)
    pf = np.asarray(p_float, dtype=np.float64)
    pq = np.asarray(p_int8, dtype=np.float64)
    if not (len(y) == len(pf) == len(pq)):
        raise ValueError(f"lengths differ: {len(y)} labels, {len(pf)} float, {len(pq)} int8")
    masks = {"all": np.ones(len(y), dtype=bool)}
    masks.update({name: np.asarray(mask, dtype=bool) for name, mask in (groups or {}).items()})
    float_auc, int8_auc, skipped = _group_aucs(y, pf, pq, masks)
    coarse = [] if threshold is None else [
        g for g in float_auc if pair_step(y[masks[g]]) > tolerance
    ]  # fmt: skip
    failures = [
        f"{name}: {int8_auc[name]:.4f} vs float {float_auc[name]:.4f} "
        f"(-{float_auc[name] - int8_auc[name]:.4f} > {tolerance})"
        for name in float_auc
        if name not in coarse
        and not float_auc[name] - int8_auc[name] <= tolerance  # a NaN AUC fails too
    ]
    for name in coarse:
        m = masks[name]
        failure = _verdict_failure(name, y[m], pf[m], pq[m], float(threshold), tolerance)  # type: ignore[arg-type]
        failures += [failure] if failure else []
    if not float_auc:
        return Int8Check(False, "no group has both classes: AUC cannot be checked", tolerance,
                         skipped=tuple(skipped))  # fmt: skip
    judged = [g for g in float_auc if g not in coarse]
    if failures:
        reason = "int8 below float beyond tolerance in " + "; ".join(failures)
    elif judged:
        worst = max(judged, key=lambda g: float_auc[g] - int8_auc[g])
        reason = (
            f"int8 AUC within {tolerance} of float in {len(judged)} groups "
            f"(largest loss {float_auc[worst] - int8_auc[worst]:+.4f} in {worst})"
        )
    else:
        reason = f"no group large enough for AUC to resolve {tolerance}"
    if coarse and not failures:
        reason += (
            f"; {', '.join(coarse)} too small for AUC at {tolerance} (one pair moves it more): "
            "int8 catches and flags as float does there at the threshold"
        )
    return Int8Check(not failures, reason, tolerance, float_auc, int8_auc, tuple(skipped))
