"""A model whose pooled features come from an ONNX graph: to fit a head on an int8 backbone.

`OnnxFeatures` runs a graph with a float NCHW input (e.g. the int8 graph registration makes) up to
its pooled features (the output of its one ``Flatten``, with the taps' columns after it when the
model is tapped: `harmscan.taps`) and puts a torch head after them as ``classifier.1``, the
place `harmscan.heads.final_layer` finds MobileNetV2's head. The training
code (`harmscan.transfer.train_recipe`, the calibration) then fits that head on the features the
graph computes, exactly as it fits the float head on the float backbone's features.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    import onnx


def features_output(graph: onnx.GraphProto) -> str:
    """The name of the pooled features of an exported classifier: its one ``Flatten`` output,
    or, with taps (`harmscan.taps`), the ``Concat`` of it and the taps' pooled blocks.

    Raises:
        ValueError: The graph has no ``Flatten`` node or several.
    """
    flattens = [n.output[0] for n in graph.node if n.op_type == "Flatten"]
    if len(flattens) != 1:
        raise ValueError(f"expected one Flatten node (the pooled features), found {len(flattens)}")
    return _taps_concat(graph, flattens[0]) or flattens[0]


def _taps_concat(graph: onnx.GraphProto, flatten: str) -> str | None:
    """The output of the ``Concat`` that appends the taps to ``flatten`` (through the int8
    graph's quantize / dequantize pair on it), or None."""
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    current = flatten
    for _ in range(3):  # Flatten -> [QuantizeLinear -> DequantizeLinear] -> Concat
        nodes = consumers.get(current, [])
        concats = [n for n in nodes if n.op_type == "Concat"]
        if concats:
            return str(concats[0].output[0])
        qdq = [n for n in nodes if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
        if len(qdq) != 1:
            return None
        current = qdq[0].output[0]
    return None


class OnnxFeatures(nn.Module):
    """Pooled features from an ONNX graph (float NCHW input), then a torch head.

    Args:
        graph: The ONNX file (float32 NCHW input, as `harmscan.models.export_onnx` writes).
        head: The head on the features (shared, not copied: fitting it fits the caller's).
    """

    def __init__(self, graph: Path, head: nn.Module) -> None:
        super().__init__()
        import onnx
        import onnxruntime as ort

        model = onnx.load(str(graph))
        self.output = features_output(model.graph)
        model.graph.output.append(onnx.helper.make_empty_tensor_value_info(self.output))
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        self.input = self.session.get_inputs()[0].name
        self.classifier = nn.Sequential(nn.Identity(), head)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The graph's pooled features of a float NCHW batch (CPU)."""
        x = images.detach().cpu().numpy().astype(np.float32, copy=False)
        return torch.from_numpy(np.asarray(self.session.run([self.output], {self.input: x})[0]))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The head's logits on the graph's features."""
        return self.classifier(self.features(images))
