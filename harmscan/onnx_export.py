"""ONNX graphs that take the decoder's pixels as they are: uint8, NHWC, not yet normalised.

`with_pixel_input` puts the preset's last step (`harmscan.presets.normalize`: scale to [0, 1],
standardise per channel, HWC -> CHW) in front of a graph whose input is the float NCHW tensor the
model was trained on. The serving consumer then hands the runtime the centre crop as decoded
(``uint8 [batch, size, size, 3]``) and its float pass over every pixel disappears. The same prefix
goes in front of the float and of the int8 graph, so both see the same numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np

if TYPE_CHECKING:
    import onnx

    from harmscan.presets import EvalPreset

PIXEL_INPUT: Final = "pixels"
PREFIX: Final = "harmscan_pixels/"
# ONNX tensor element types of the two input kinds a harmscan graph can have.
INPUT_FLOAT: Final = "tensor(float)"
INPUT_UINT8: Final = "tensor(uint8)"


def pixel_constants(
    mean: tuple[float, float, float], std: tuple[float, float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """(scale, bias), (1, 3, 1, 1) each: ``pixel * scale + bias == (pixel / 255 - mean) / std``."""
    mean_a = np.asarray(mean, dtype=np.float64)
    std_a = np.asarray(std, dtype=np.float64)
    scale = (1.0 / (255.0 * std_a)).astype(np.float32).reshape(1, 3, 1, 1)
    bias = (-mean_a / std_a).astype(np.float32).reshape(1, 3, 1, 1)
    return scale, bias


def with_pixel_input(
    model: onnx.ModelProto,
    *,
    image_size: int,
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
) -> onnx.ModelProto:
    """A copy of ``model`` whose input is ``pixels``: uint8 ``[batch, size, size, 3]`` RGB.

    Args:
        model: A graph with one float32 NCHW input (the trained model, float or quantized).
        image_size: Side of the square input.
        mean: The preset's normalisation mean (RGB, on the [0, 1] scale).
        std: The preset's normalisation std.

    Raises:
        ValueError: The graph does not have exactly one float input.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    initializers = {init.name for init in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1 or inputs[0].type.tensor_type.elem_type != TensorProto.FLOAT:
        raise ValueError(f"expected one float32 NCHW input, got {[i.name for i in inputs]}")
    old = inputs[0]
    scale, bias = pixel_constants(mean, std)
    graph.initializer.extend(
        [
            numpy_helper.from_array(scale, PREFIX + "scale"),
            numpy_helper.from_array(bias, PREFIX + "bias"),
        ]
    )
    nodes = [
        helper.make_node(
            "Cast", [PIXEL_INPUT], [PREFIX + "float"], to=TensorProto.FLOAT, name=PREFIX + "cast"
        ),
        helper.make_node(
            "Transpose", [PREFIX + "float"], [PREFIX + "nchw"], perm=[0, 3, 1, 2], name=PREFIX + "t"
        ),
        helper.make_node(
            "Mul", [PREFIX + "nchw", PREFIX + "scale"], [PREFIX + "scaled"], name=PREFIX + "mul"
        ),
        helper.make_node(
            "Add", [PREFIX + "scaled", PREFIX + "bias"], [old.name], name=PREFIX + "add"
        ),
    ]
    for node in reversed(nodes):
        graph.node.insert(0, node)
    pixel_input = helper.make_tensor_value_info(
        PIXEL_INPUT, TensorProto.UINT8, ["batch", image_size, image_size, 3]
    )
    position = list(graph.input).index(old)
    graph.input.remove(old)
    graph.input.insert(position, pixel_input)
    onnx.checker.check_model(model)
    return model


def write_pixel_model(source: Path, dest: Path, *, preset: EvalPreset) -> Path:
    """`with_pixel_input` from file to file, with ``preset``'s size and normalisation."""
    import onnx

    model = with_pixel_input(
        onnx.load(str(source)), image_size=preset.image_size, mean=preset.mean, std=preset.std
    )
    dest.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(dest))
    return dest
