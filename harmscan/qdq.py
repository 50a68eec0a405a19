"""The int8 graph itself: ONNX Runtime static QDQ quantization of one pre-processed graph.

`Quantizer` writes a QDQ graph from ranges calibrated once (a cache file), however many graphs
are written; the head after the global pooling and the ``float_nodes`` stay float
(`choose_float_nodes`: as set, or chosen block by block with `harmscan.sensitivity`).
`harmscan.quantize.quantize_int8` drives it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from harmscan.sensitivity import COMPUTE_OPS, Selection, blocks, choose_float_blocks, onnx_logits

if TYPE_CHECKING:
    from harmscan.quantize import QuantizeOptions

logger = logging.getLogger(__name__)

POOLING_OPS: Final = ("GlobalAveragePool", "ReduceMean")
# The pooling of tapped blocks (harmscan.taps): an average and a maximum per block.
TAP_OPS: Final = ("ReduceMean", "ReduceMax")


def head_nodes(model: Any) -> list[str]:
    """Names of the nodes after the last global pooling of a (topologically sorted) graph, and
    of the taps' pooling before it (`harmscan.taps`: ``ReduceMean`` / ``ReduceMax`` of a block).

    Those run once per image on a 1280- or 2048-wide vector: negligible time in float, while
    in int8 the prior head's log-sum-exp over 1000 quantized logits loses the small harmful mass
    that the ranking depends on (and the taps' columns feed the same head).
    """
    nodes = list(model.graph.node)
    last = max((i for i, n in enumerate(nodes) if n.op_type in POOLING_OPS), default=None)
    if last is None:
        return []
    taps = [n.name for n in nodes[:last] if n.op_type in TAP_OPS and n.name]
    return taps + [n.name for n in nodes[last + 1 :] if n.name]


def calibration_reader(batches: Iterable[np.ndarray], input_name: str) -> Any:
    from onnxruntime.quantization import CalibrationDataReader

    class _Batches(CalibrationDataReader):
        def __init__(self) -> None:
            self._iter: Iterator[np.ndarray] = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self._iter, None)
            if batch is None:
                return None
            return {input_name: np.ascontiguousarray(batch, dtype=np.float32)}

    return _Batches()


@dataclass(frozen=True)
class Quantizer:
    """Static QDQ quantization of one pre-processed graph, its ranges calibrated once."""

    prepared: Path
    ranges: Path
    batches: list[np.ndarray]
    input_name: str
    options: QuantizeOptions
    head: list[str]

    def write(self, float_nodes: Sequence[str], out: Path) -> Path:
        """Write the int8 graph with the head and ``float_nodes`` kept in float to ``out``."""
        from onnxruntime.quantization import CalibrationMethod as OrtMethod
        from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

        methods = {
            "minmax": OrtMethod.MinMax,
            "entropy": OrtMethod.Entropy,
            "percentile": OrtMethod.Percentile,
        }
        activations = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}
        quantize_static(
            str(self.prepared),
            str(out),
            calibration_reader(self.batches, self.input_name),
            quant_format=QuantFormat.QDQ,
            per_channel=self.options.per_channel,
            activation_type=activations[self.options.activations],
            weight_type=QuantType.QInt8,
            reduce_range=False,
            calibrate_method=methods[self.options.method],
            nodes_to_exclude=[*self.head, *float_nodes],
            extra_options={"CalibPercentile": self.options.percentile},
            calibration_cache_path=str(self.ranges),  # calibrate once, however many graphs
        )
        return out


def choose_float_nodes(
    graph: Any,
    quantizer: Quantizer,
    selection: Sequence[np.ndarray],
    trial: Path,
    chosen: list[Selection] | None,
) -> Sequence[str]:
    """The nodes kept in float besides the head: as set, or chosen by quantizing trial graphs."""
    options = quantizer.options
    if options.float_nodes != "auto":
        float_nodes = () if options.float_nodes == "none" else options.float_nodes
        check_known_nodes(graph, float_nodes)
        return float_nodes
    scored = list(selection) or quantizer.batches
    name = quantizer.input_name
    selected = choose_float_blocks(
        blocks(graph, skip=quantizer.head),
        lambda nodes: onnx_logits(quantizer.write(nodes, trial), scored, name),
        onnx_logits(quantizer.prepared, scored, name),
        max_nodes=options.max_float_nodes,
    )
    if chosen is not None:
        chosen.append(selected)
    logger.info("int8 mixed precision: %s", selected.describe())
    return selected.float_nodes


def check_known_nodes(model: Any, names: Sequence[str]) -> None:
    known = {node.name for node in model.graph.node}
    unknown = [name for name in names if name not in known]
    if unknown:
        convs = [n.name for n in model.graph.node if n.op_type in COMPUTE_OPS][:5]
        raise ValueError(f"int8.float_nodes names unknown nodes {unknown}; e.g. {convs}")
