"""MobileNetV2 whose head also receives pooled intermediate blocks (``train.probe_layers``).

`TappedMobileNetV2` is torchvision's MobileNetV2 (same submodules, same state dict, so the
ImageNet weights load unchanged and `harmscan.heads.final_layer`, `harmscan.models.head_module`
and `harmscan.models.split_parameters` find what they always found) whose forward pass also
pools the outputs of the tapped ``features`` blocks, global average then global maximum per
block in ascending block order, and hands the head one tensor ``[pooled 1280 | taps]``. The head
decides which columns each part reads (`harmscan.heads.GatedPriorHead`: the gate, the ImageNet
prior and the photo branch the first 1280, the drawing branch's linear term all of them).
Exported to ONNX the taps are a ``ReduceMean`` and a ``ReduceMax`` per block and one ``Concat``
after the ``Flatten``; the int8 graph keeps them float with the head (`harmscan.qdq.head_nodes`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torchvision import models as tv

TAPPABLE: tuple[str, ...] = ("mobilenet_v2",)


class TappedMobileNetV2(tv.MobileNetV2):
    """torchvision's MobileNetV2 with pooled ``features`` blocks appended to its pooled features.

    Args:
        probe_layers: ``features`` block indices to tap (ascending, distinct, not empty).
    """

    def __init__(self, probe_layers: Sequence[int]) -> None:
        super().__init__()
        layers = tuple(int(b) for b in probe_layers)
        last = len(self.features) - 1
        if (
            not layers
            or list(layers) != sorted(set(layers))
            or not 0 <= layers[0] <= layers[-1] <= last
        ):
            raise ValueError(
                f"probe layers must be distinct ascending features blocks in 0..{last}, "
                f"got {list(probe_layers)}"
            )
        self.probe_layers = layers

    def tap_width(self) -> int:
        """How many columns the taps add (average and maximum of each tapped block)."""
        return sum(2 * block_channels(self, b) for b in self.probe_layers)

    def _forward_impl(self, x: torch.Tensor) -> torch.Tensor:
        taps: list[torch.Tensor] = []
        for index, block in enumerate(self.features):
            x = block(x)
            if index in self.probe_layers:
                taps += [x.mean(dim=(2, 3)), x.amax(dim=(2, 3))]
        x = nn.functional.adaptive_avg_pool2d(x, (1, 1))
        x = torch.flatten(x, 1)
        return self.classifier(torch.cat([x, *taps], dim=1))


def block_channels(model: tv.MobileNetV2, block: int) -> int:
    """Output channels of ``model.features[block]``."""
    module = model.features[block]
    channels = getattr(module, "out_channels", None)
    if channels is None:  # Conv2dNormActivation: its convolution's
        channels = module[0].out_channels
    return int(channels)


def check_tappable(arch: str, probe_layers: Sequence[int]) -> None:
    """Refuse taps on an architecture that has none.

    Raises:
        ValueError: ``probe_layers`` is not empty and ``arch`` is not in `TAPPABLE`.
    """
    if probe_layers and arch not in TAPPABLE:
        raise ValueError(
            f"train.probe_layers {list(probe_layers)} taps MobileNetV2's features blocks; {arch} "
            f"has no taps; valid: [] for {arch}, or an architecture in {', '.join(TAPPABLE)}"
        )


def backbone(arch: str, probe_layers: Sequence[int] = ()) -> nn.Module:
    """The untrained torchvision model of ``arch``, tapped when ``probe_layers`` is not empty."""
    check_tappable(arch, probe_layers)
    if probe_layers:
        return TappedMobileNetV2(probe_layers)
    return tv.mobilenet_v2() if arch == "mobilenet_v2" else tv.resnet50()


def feature_width(model: nn.Module, base: int) -> int:
    """The head's input width: ``base`` plus the taps' columns of a `TappedMobileNetV2`."""
    return base + (model.tap_width() if isinstance(model, TappedMobileNetV2) else 0)
