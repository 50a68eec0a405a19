"""``train.probe_layers``: pooled MobileNetV2 blocks beside the 1280-d for the drawing probe only.

The tapped model computes the taps in its one forward pass and exports to one ONNX graph; the
gate, the ImageNet prior and the photo branch read the first 1280 columns, the drawing branch's
linear term all of them; ``[]`` is today's model.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from pydantic import ValidationError
from torch import nn
from torchvision import models as tv

from conf.settings import TrainSettings
from harmscan.heads import GatedPriorHead, PriorHead, final_layer, set_final_layer
from harmscan.models import WeightsSource, build_model, export_onnx, resolve_weights
from harmscan.onnxfeatures import OnnxFeatures, features_output
from harmscan.qdq import head_nodes
from harmscan.quantize import QuantizeOptions, quantize_int8
from harmscan.recipes import LinearFit, fit_gated_probe
from harmscan.taps import TappedMobileNetV2
from harmscan.trainjob import build_recipe_model, effective_settings

SHARED = "weights/mobilenet_v2_imagenet.pth"
ARCH = "mobilenet_v2"
WIDTH = {(): 1280, (13,): 1280 + 2 * 96, (13, 16): 1280 + 2 * 96 + 2 * 160}


def _model(layers: list[int], head: str = "prior-gated") -> nn.Module:
    cfg = TrainSettings(recipe="probe", head=head, probe_layers=layers)
    return build_recipe_model(ARCH, resolve_weights(ARCH, SHARED), cfg).eval()


@torch.no_grad()
def _randomise(head: GatedPriorHead, seed: int = 0) -> None:
    generator = torch.Generator().manual_seed(seed)
    for p in (head.gate.weight, head.photo.linear.weight, head.drawing.linear.weight):
        p.copy_(0.05 * torch.randn(p.shape, generator=generator))
    head.drawing.prior_scale.fill_(0.25)


def _images(n: int = 3, size: int = 64) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize(
    ("value", "match"),
    [([19], r"valid: 0\.\.18"), ([-1, 13], r"valid: 0\.\.18"), ([13, 13], "more than once")],
)
def test_settings_refuse_blocks_outside_mobilenet_v2_or_repeated(
    value: list[int], match: str
) -> None:
    with pytest.raises(ValidationError, match=match):
        TrainSettings(probe_layers=value)


def test_settings_default_to_no_taps_and_sort_the_blocks() -> None:
    assert TrainSettings().probe_layers == []
    assert TrainSettings(probe_layers=[16, 13]).probe_layers == [13, 16]


def test_resnet50_has_no_taps(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ValueError, match="valid: \\[\\] for resnet50"):
        build_model("resnet50", WeightsSource("none"), probe_layers=[13])
    cfg = TrainSettings(recipe="probe", head="prior", probe_layers=[13])
    with caplog.at_level(logging.WARNING):
        kept = effective_settings(cfg, WeightsSource("imagenet"), "resnet50")
    assert kept.probe_layers == []
    assert kept.recipe == "probe"
    assert "resnet50 has no taps" in caplog.text
    assert effective_settings(cfg, WeightsSource("imagenet"), ARCH).probe_layers == [13]


@pytest.mark.parametrize("recipe", ["finetune", "lp-ft"])
def test_recipes_that_train_the_backbone_run_without_taps(
    recipe: str, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = TrainSettings(recipe=recipe, probe_layers=[13, 16])
    with caplog.at_level(logging.WARNING):
        kept = effective_settings(cfg, WeightsSource("imagenet"), ARCH)
    assert kept.probe_layers == []
    assert f"not recipe {recipe}" in caplog.text
    caplog.clear()  # without weights the fallback drops them with everything else, once
    fallback = effective_settings(
        TrainSettings(recipe="probe", head="prior-gated", probe_layers=[13]),
        WeightsSource("none"),
        "resnet50",
    )
    assert fallback.probe_layers == []
    assert "no taps" not in caplog.text


def test_no_taps_is_todays_model() -> None:
    model = _model([])
    assert type(model) is tv.MobileNetV2
    head = final_layer(model, ARCH)
    assert isinstance(head, GatedPriorHead)
    assert head.width == head.base == 1280
    assert head.drawing.linear.in_features == head.photo.linear.in_features == 1280
    names = {n.op_type for n in _graph(model).graph.node}
    assert not names & {"ReduceMax", "Slice"}  # the head reads its features unsliced


def _graph(model: nn.Module, size: int = 64) -> onnx.ModelProto:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return onnx.load(str(export_onnx(model, Path(tmp) / "m.onnx", size)))


@pytest.mark.parametrize("layers", [(13,), (13, 16)])
def test_taps_follow_the_pooled_features_in_one_pass(layers: tuple[int, ...]) -> None:
    plain, tapped = _model([], "linear"), _model(list(layers), "linear")
    assert isinstance(tapped, TappedMobileNetV2)
    assert final_layer(tapped, ARCH).in_features == WIDTH[layers]
    for model in (plain, tapped):
        set_final_layer(model, ARCH, nn.Identity())
    x = _images()
    with torch.no_grad():
        narrow, wide = plain(x), tapped(x)
        block = tapped.features[: layers[0] + 1](x)
    assert wide.shape == (3, WIDTH[layers])
    torch.testing.assert_close(wide[:, :1280], narrow)  # the same backbone, same pooled features
    torch.testing.assert_close(wide[:, 1280 : 1280 + 96], block.mean(dim=(2, 3)))
    torch.testing.assert_close(wide[:, 1280 + 96 : 1280 + 192], block.amax(dim=(2, 3)))


def test_tap_columns_move_only_the_drawing_branch() -> None:
    head = GatedPriorHead(PriorHead(nn.Linear(8, 1000), [1, 2, 3], width=12)).double()
    _randomise(head)
    assert head.gate.in_features == head.photo.linear.in_features == 8
    assert head.drawing.linear.in_features == 12
    x = torch.randn(5, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    y = x.clone()
    y[:, 8:] += 3.0  # only the tap columns change
    (photo_x, drawing_x), (photo_y, drawing_y) = head.branch_logits(x), head.branch_logits(y)
    torch.testing.assert_close(head.photo_probability(x), head.photo_probability(y))
    narrow_x, narrow_y = head.backbone_columns(x), head.backbone_columns(y)
    torch.testing.assert_close(head.photo.prior_logits(narrow_x), head.photo.prior_logits(narrow_y))
    torch.testing.assert_close(head.drawing.prior_logits(x), head.drawing.prior_logits(y))
    torch.testing.assert_close(photo_x, photo_y)
    assert not torch.allclose(drawing_x, drawing_y)
    torch.testing.assert_close(head.branch_log_odds(x)[:, :2], head.branch_log_odds(y)[:, :2])


def test_a_tapped_head_with_zero_tap_weights_scores_as_the_untapped_one() -> None:
    plain, tapped = _model([]), _model([13, 16])
    narrow, wide = final_layer(plain, ARCH), final_layer(tapped, ARCH)
    assert isinstance(narrow, GatedPriorHead)
    assert isinstance(wide, GatedPriorHead)
    _randomise(narrow)
    with torch.no_grad():
        wide.gate.load_state_dict(narrow.gate.state_dict())
        wide.photo.load_state_dict(narrow.photo.state_dict())
        wide.drawing.linear.weight.zero_()  # the tap columns' weights stay zero
        wide.drawing.linear.weight[:, :1280] = narrow.drawing.linear.weight
        wide.drawing.linear.bias.copy_(narrow.drawing.linear.bias)
        wide.drawing.prior_scale.copy_(narrow.drawing.prior_scale)
        x = _images()
        torch.testing.assert_close(tapped(x), plain(x), atol=1e-5, rtol=1e-5)


def test_the_photo_branch_fit_reads_the_leading_columns_only() -> None:
    rng = np.random.default_rng(3)
    y = np.repeat([0, 1], 40)
    x = rng.normal(0, 1, (80, 12))
    x[:, 1] += y
    x[:, 10] += 2 * y  # a tap column
    prior, g = rng.normal(0, 1, 80) + y, rng.uniform(0, 1, 80)
    same = fit_gated_probe(x, y, c=0.1, prior=prior, photo_probability=g, mixes=(0.8, 0.25))
    also = fit_gated_probe(
        x, y, c=0.1, prior=prior, photo_probability=g, mixes=(0.8, 0.25), photo_width=12
    )
    for a, b in zip(same, also, strict=True):  # the full width is today's fit, exactly
        assert np.array_equal(a.weight, b.weight)
        assert a.bias == b.bias
        assert a.prior == b.prior
    photo, drawing = fit_gated_probe(
        x, y, c=0.1, prior=prior, photo_probability=g, mixes=(0.8, 0.25), photo_width=8
    )
    assert photo.weight.shape == (8,)
    assert drawing.weight.shape == (12,)
    moved = x.copy()
    moved[:, 8:] = 0
    np.testing.assert_array_equal(photo.log_odds(moved, prior), photo.log_odds(x, prior))
    only_prior, _ = fit_gated_probe(
        x, y, c=0.1, prior=prior, photo_probability=g, mixes=(1.0, 0.25), photo_width=8
    )
    assert not only_prior.weight.any()
    assert only_prior.weight.shape == (8,)
    assert isinstance(only_prior, LinearFit)


def test_tapped_graph_matches_torch_and_keeps_the_taps_float_in_int8(tmp_path: Path) -> None:
    model = _model([13, 16])
    head = final_layer(model, ARCH)
    assert isinstance(head, GatedPriorHead)
    _randomise(head)
    x = _images(4, 64)
    with torch.no_grad():
        want = model(x).numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = export_onnx(model, tmp_path / "float.onnx", 64)
        int8 = quantize_int8(path, tmp_path / "int8.onnx", [x.numpy()], QuantizeOptions())
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"input": x.numpy()}
    )[0]
    np.testing.assert_allclose(got, want, atol=1e-4 * max(1.0, float(np.abs(want).max())))
    graph = onnx.load(str(path))
    assert (
        graph.graph.node[
            [n.output[0] for n in graph.graph.node].index(features_output(graph.graph))
        ].op_type
        == "Concat"
    )
    taps = [n.name for n in graph.graph.node if n.op_type in ("ReduceMean", "ReduceMax")]
    assert len(taps) == 4
    assert set(taps) <= set(head_nodes(graph))
    quantized = onnx.load(str(int8))
    produced = {o: n for n in quantized.graph.node for o in n.output}
    for node in quantized.graph.node:
        if node.op_type in ("ReduceMean", "ReduceMax"):  # float in, float out: not re-quantized
            assert produced[node.input[0]].op_type == "DequantizeLinear"
            consumers = [n for n in quantized.graph.node if node.output[0] in n.input]
            assert all(n.op_type != "QuantizeLinear" for n in consumers)
    on_int8 = OnnxFeatures(int8, nn.Identity())
    features = on_int8.features(x).numpy()
    assert features.shape == (4, WIDTH[(13, 16)])
    with torch.no_grad():
        set_final_layer(model, ARCH, nn.Identity())
        float_features = model(x).numpy()
    assert np.corrcoef(features.ravel(), float_features.ravel())[0, 1] > 0.95


def test_a_pickled_tapped_model_reloads_with_its_taps(tmp_path: Path) -> None:
    model = _model([13])
    _randomise(final_layer(model, ARCH))  # type: ignore[arg-type]
    torch.save(model, tmp_path / "model.pt")  # as mlflow.pytorch pickles the registered model
    back = torch.load(tmp_path / "model.pt", weights_only=False).eval()
    assert isinstance(back, TappedMobileNetV2)
    assert back.probe_layers == (13,)
    x = _images(2)
    with torch.no_grad():
        torch.testing.assert_close(back(x), model(x))


def test_a_head_pickled_before_taps_reads_its_features_unsliced() -> None:
    head = GatedPriorHead(PriorHead(nn.Linear(8, 1000), [1, 2]))
    _randomise(head)
    x = torch.randn(3, 8)
    want = head(x)
    for module in (head, head.photo, head.drawing):
        del module.__dict__["base"], module.__dict__["width"]  # as unpickled from before
    torch.testing.assert_close(head(x), want)
