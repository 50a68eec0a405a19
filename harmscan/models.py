"""Model factory: torchvision MobileNetV2 / ResNet50 with a 2-class head, from its weights source.

The weights setting is resolved by the torch-free `harmscan.weights` (re-exported here); this
module loads what it names. Nothing falls back silently: a missing file or unreachable ImageNet
weights raise `WeightsError` naming the alternatives.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from torchvision import models as tv

from harmscan.bundle import LABELS
from harmscan.heads import PriorHead, final_layer, set_final_layer
from harmscan.taps import backbone, feature_width

# Re-exported: callers build models from what these resolve.
from harmscan.weights import ARCHS as ARCHS
from harmscan.weights import REPO_ROOT as REPO_ROOT
from harmscan.weights import WeightsError as WeightsError
from harmscan.weights import WeightsSource as WeightsSource
from harmscan.weights import alternatives as _alternatives
from harmscan.weights import check_arch as _check_arch
from harmscan.weights import resolve_weights as resolve_weights

logger = logging.getLogger(__name__)

NUM_CLASSES = len(LABELS)
IMAGENET_CLASSES = 1000


def _torchvision_weights(arch: str) -> tv.WeightsEnum:
    return (
        tv.MobileNet_V2_Weights.IMAGENET1K_V1
        if arch == "mobilenet_v2"
        else (tv.ResNet50_Weights.IMAGENET1K_V2)
    )


def _imagenet_state_dict(arch: str) -> dict[str, torch.Tensor]:
    weights = _torchvision_weights(arch)
    try:
        return weights.get_state_dict(progress=False, check_hash=True)
    except (OSError, RuntimeError) as exc:  # URLError is an OSError
        cache = Path(torch.hub.get_dir()) / "checkpoints"
        raise WeightsError(
            f"torchvision ImageNet weights for {arch} are neither cached in {cache} nor "
            f"downloadable ({exc}); {_alternatives(arch)}"
        ) from None


def _file_state_dict(arch: str, path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # a harmscan checkpoint dict
    if not isinstance(state, dict):
        raise WeightsError(f"{path} does not hold a state dict (got {type(state).__name__})")
    return state


def _replace_head(model: nn.Module, arch: str, prior_rows: Sequence[int] | None = None) -> None:
    if prior_rows is not None:
        imagenet = final_layer(model, arch)
        if not isinstance(imagenet, nn.Linear) or imagenet.out_features != IMAGENET_CLASSES:
            raise WeightsError(
                f"the prior head needs the {IMAGENET_CLASSES}-class ImageNet classifier; "
                f"{arch}'s weights end in {imagenet}"
            )
        width = feature_width(model, imagenet.in_features)
        set_final_layer(model, arch, PriorHead(imagenet, prior_rows, width))
    elif isinstance(model, tv.MobileNetV2):
        last = model.classifier[1]
        assert isinstance(last, nn.Linear)
        model.classifier[1] = nn.Linear(feature_width(model, last.in_features), NUM_CLASSES)
    elif isinstance(model, tv.ResNet):
        model.fc = nn.Linear(model.fc.in_features, NUM_CLASSES)
    else:
        raise TypeError(f"unexpected {type(model).__name__} for {arch}")


def build_model(
    arch: str,
    source: WeightsSource,
    *,
    prior_rows: Sequence[int] | None = None,
    probe_layers: Sequence[int] = (),
) -> nn.Module:
    """A torchvision model with a 2-class head (index 1 = harmful), initialised from ``source``.

    With ``prior_rows`` (ImageNet output rows of harmful classes) the head is a
    `harmscan.heads.PriorHead` on the pretrained 1000-class classifier, so the untrained model
    scores the ImageNet mass of those classes; else a new linear layer. With ``probe_layers``
    (MobileNetV2 only) the model is a `harmscan.taps.TappedMobileNetV2` and the head reads the
    pooled features and the taps' columns.

    Raises:
        ValueError: Unknown architecture, or taps on ResNet50.
        WeightsError: The weights cannot be had or do not fit the architecture.
    """
    _check_arch(arch)
    model = backbone(arch, probe_layers)
    if source.kind == "none" and prior_rows is not None:
        raise WeightsError(f"the prior head needs pretrained weights; {_alternatives(arch)}")
    if source.kind == "none":
        logger.warning(
            "!!! %s: NO PRETRAINED WEIGHTS — training from random initialisation; expect far "
            "lower accuracy than fine-tuning. %s",
            arch,
            _alternatives(arch),
        )
        _replace_head(model, arch)
        return model
    if source.kind == "imagenet":
        state = _imagenet_state_dict(arch)
    else:
        assert source.path is not None
        state = _file_state_dict(arch, source.path)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError:
        # A 2-class harmscan state dict (e.g. from a checkpoint) loads after the head swap.
        _replace_head(model, arch)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise WeightsError(
                f"weights {source.describe()} do not fit {arch}: {str(exc)[:300]}"
            ) from None
        if prior_rows is not None:
            _replace_head(model, arch, prior_rows)  # raises: no 1000-class classifier here
    else:
        _replace_head(model, arch, prior_rows)
    logger.info("%s: initialised from %s", arch, source.describe())
    return model


def head_module(model: nn.Module, arch: str) -> nn.Module:
    """The classification head (the part trained during a frozen-backbone warm-up)."""
    _check_arch(arch)
    head = model.get_submodule("classifier" if arch == "mobilenet_v2" else "fc")
    return head


def split_parameters(model: nn.Module, arch: str) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """The (backbone, head) parameter lists."""
    head_ids = {id(p) for p in head_module(model, arch).parameters()}
    backbone = [p for p in model.parameters() if id(p) not in head_ids]
    head = [p for p in model.parameters() if id(p) in head_ids]
    return backbone, head


def set_backbone_trainable(model: nn.Module, arch: str, trainable: bool) -> None:
    """Freeze or unfreeze every parameter outside the head."""
    backbone, _ = split_parameters(model, arch)
    for parameter in backbone:
        parameter.requires_grad_(trainable)


def export_onnx(model: nn.Module, path: Path, image_size: int) -> Path:
    """Export to one ONNX file with a dynamic batch axis (input ``input``, output ``logits``)."""
    model = model.eval().cpu()
    example = torch.zeros(1, 3, image_size, image_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        model,
        (example,),
        str(path),
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    return path
