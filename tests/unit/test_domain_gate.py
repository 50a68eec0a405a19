"""The domain-gated prior head: fixed mixes at the gate's ends, exact calibration, one graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from pydantic import ValidationError
from torch.utils.data import DataLoader

from conf.settings import TrainSettings
from harmscan.data import ManifestDataset
from harmscan.engine import evaluate
from harmscan.heads import (
    GatedPriorHead,
    PriorHead,
    final_layer,
    recording_branches,
    scale_logits,
    set_log_odds,
    shift_log_odds,
)
from harmscan.modelcalibration import calibrate_model
from harmscan.models import export_onnx, resolve_weights
from harmscan.presets import EvalPreset
from harmscan.qdq import head_nodes
from harmscan.recipes import check_recipe, fit_gate, fit_gated_probe, fit_probe, recipe_name
from harmscan.trainjob import build_recipe_model
from harmscan.transfer import RecipeData, train_recipe
from tests.fixtures.train_data import make_synthetic_dataset

SHARED = "weights/mobilenet_v2_imagenet.pth"


def _odds(z: torch.Tensor) -> np.ndarray:
    return (z[:, 1] - z[:, 0]).detach().double().numpy()


def _problem() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(4)
    y = np.repeat([0, 1], 30)
    x = rng.normal(0, 1, (60, 8))
    x[:, 1] += y
    prior = rng.normal(0, 1, 60) + 1.5 * y
    return x, y, prior


def _gated(g_logit: float) -> GatedPriorHead:
    head = GatedPriorHead(PriorHead(torch.nn.Linear(8, 1000).double(), [1, 2]).double())
    with torch.no_grad():
        head.gate.bias.fill_(g_logit)
    return head.double()


@pytest.mark.parametrize(("g_logit", "mix_index"), [(60.0, 0), (-60.0, 1)])
def test_gate_at_one_or_zero_is_that_domains_fixed_mix(g_logit: float, mix_index: int) -> None:
    x, y, _ = _problem()
    head = _gated(g_logit)
    f = torch.from_numpy(x)
    prior = _odds(head.photo.prior_logits(f))
    mixes = (0.8, 0.25)
    fits = fit_gated_probe(
        x, y, c=1.0, prior=prior, photo_probability=np.full(60, 0.5), mixes=mixes
    )
    for branch, fit in zip((head.photo, head.drawing), fits, strict=True):
        set_log_odds(branch, torch.from_numpy(fit.weight), fit.bias, fit.prior)
    got = _odds(head(f))
    fixed = fit_probe(x, y, c=1.0, prior=prior, prior_mix=mixes[mix_index])
    want = fixed.prior * prior + x @ fixed.weight + fixed.bias
    # the same mix up to the common scale and bias fitted on the blend
    slope, intercept = np.polyfit(want, got, 1)
    np.testing.assert_allclose(got, slope * want + intercept, atol=1e-6)
    assert abs(slope) > 1e-3
    # and the other branch does not leak in
    other = fits[1 - mix_index]
    leak = other.prior * prior + x @ other.weight + other.bias
    assert not np.allclose(got, leak)


def test_calibration_folds_into_both_branches_exactly() -> None:
    head = _gated(0.0)
    with torch.no_grad():
        for p in head.parameters():
            p.normal_()
    f = torch.randn(6, 8, dtype=torch.float64)
    before = _odds(head(f))
    scale_logits(head, 0.5)
    shift_log_odds(head, -1.25)
    np.testing.assert_allclose(_odds(head(f)), before * 0.5 - 1.25, atol=1e-9)


def test_gate_separates_domains() -> None:
    rng = np.random.default_rng(5)
    drawings = rng.normal(0, 1, (100, 8))
    photos = rng.normal(0, 1, (10, 8))
    photos[:, 0] += 4
    gate = fit_gate(drawings, photos, c=1.0)
    assert np.mean(photos @ gate.weight + gate.bias > 0) == 1
    assert np.mean(drawings @ gate.weight + gate.bias > 0) < 0.05
    # the boundary moves towards the drawings until 10 % of them count as photos
    moved = fit_gate(drawings, photos, c=1.0, drawings_as_photos=0.1)
    assert np.mean(drawings @ moved.weight + moved.bias > 0) == pytest.approx(0.1, abs=0.011)
    np.testing.assert_array_equal(moved.weight, gate.weight)
    with pytest.raises(ValueError, match="both drawings and photos"):
        fit_gate(drawings, photos[:0], c=1.0)


def test_settings_refuse_the_gate_set_and_other_recipes() -> None:
    with pytest.raises(ValidationError, match="gate set"):
        TrainSettings(gate_photos=["gateset"])
    with pytest.raises(ValueError, match=r"needs train\.recipe=probe"):
        check_recipe("lp-ft", "prior-gated")
    assert recipe_name("probe", "prior-gated", None) == "probe+prior-gated"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic_dataset(
        tmp_path_factory.mktemp("gated"), {"train": 6, "val": 4, "test": 2}, size=40
    )


@pytest.mark.parametrize("probe_layers", [[], [13, 16]])
def test_gated_recipe_trains_calibrates_and_exports_one_graph(
    dataset: Path, tmp_path: Path, probe_layers: list[int]
) -> None:
    cfg = TrainSettings(
        recipe="probe",
        head="prior-gated",
        image_size=32,
        num_workers=0,
        weights={"mobilenet_v2": SHARED},
        probe_layers=probe_layers,
    )
    model = build_recipe_model("mobilenet_v2", resolve_weights("mobilenet_v2", SHARED), cfg)
    preset = EvalPreset(image_size=32)
    loader = lambda split: DataLoader(ManifestDataset(dataset, split, preset), batch_size=6)  # noqa: E731
    data = RecipeData(train=loader("train"), probe=loader("train"), val=loader("val"))
    with pytest.raises(ValueError, match="needs photos"):
        train_recipe(model, "mobilenet_v2", data, cfg, device=torch.device("cpu"))
    data.photos = loader("val")  # stands in for real photos
    data.gate_drawings = loader("test")  # more drawings for the gate only
    outcome = train_recipe(model, "mobilenet_v2", data, cfg, device=torch.device("cpu"))
    head = final_layer(model, "mobilenet_v2")
    assert isinstance(head, GatedPriorHead)
    assert outcome.probe is not None
    assert head.gate.weight.abs().sum() > 0
    assert head.photo.prior_scale.item() > head.drawing.prior_scale.item() > 0
    # the gate and the photo branch read the 1280-d, the drawing branch the taps too
    assert head.gate.in_features == head.photo.linear.in_features == 1280
    assert head.drawing.linear.in_features == 1280 + 2 * (96 + 160) * bool(probe_layers)
    assert head.drawing.linear.weight[:, 1280:].abs().sum() > 0 or not probe_layers
    # one operating point per branch, folded in before the export
    cpu = torch.device("cpu")
    with recording_branches(model) as seen:
        val, photos = evaluate(model, data.val, cpu), evaluate(model, data.photos, cpu)
    assert seen is not None
    y, p = np.r_[val.y_true, photos.y_true], np.r_[val.p_harmful, photos.p_harmful]
    domains = ["illustration"] * len(val.y_true) + ["photo"] * len(photos.y_true)
    per_branch = cfg.model_copy(update={"gate_operating_point": "per-branch"})
    with pytest.raises(ValueError, match="valid: mix, per-branch"):
        calibrate_model(model, "mobilenet_v2", y, p, domains, per_branch)
    branches = torch.cat(seen).numpy()
    point = calibrate_model(model, "mobilenet_v2", y, p, domains, per_branch, branches)
    assert point.branches is not None
    with recording_branches(model) as again:  # each branch calibrated, then shifted
        evaluate(model, data.val, cpu), evaluate(model, data.photos, cpu)
    assert again is not None
    after, b = torch.cat(again).numpy(), point.branches
    want = branches[:, 1:] / point.temperature + point.bias + [b.photo_shift, b.drawing_shift]
    np.testing.assert_allclose(after[:, 0], branches[:, 0], atol=1e-6)
    np.testing.assert_allclose(after[:, 1:], want, rtol=1e-4, atol=1e-3)
    scale_logits(head, 0.7)
    shift_log_odds(head, 0.3)
    path = export_onnx(model, tmp_path / "model.onnx", 32)
    graph = onnx.load(str(path))
    assert [o.name for o in graph.graph.output] == ["logits"]
    assert any(graph.graph.node[i].op_type == "Sigmoid" for i in range(len(graph.graph.node)))
    assert any(n.startswith("/classifier") for n in head_nodes(graph))  # the head stays float
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        want = model.eval()(x).numpy()
    got = ort.InferenceSession(str(path)).run(None, {"input": x.numpy()})[0]
    assert got.shape == (3, 2)
    # float32 rounding grows with the logits (registry.bundles.Parity allows 1e-4 of the scale)
    np.testing.assert_allclose(got, want, atol=1e-4 * max(1.0, float(np.abs(want).max())))
