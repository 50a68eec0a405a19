"""harmscan.featurepass: the probe views' backbone features through ONNX Runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from conf.settings import TrainSettings
from harmscan import transfer
from harmscan.data import read_manifest
from harmscan.featurepass import onnx_features
from harmscan.heads import final_layer
from harmscan.models import build_model, resolve_weights
from harmscan.recipes import extract_features
from harmscan.trainjob import training_loaders
from tests.fixtures.train_data import make_synthetic_dataset
from tests.unit.test_domain_gate import SHARED


def _batches(n: int = 6, size: int = 32) -> DataLoader:
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(n, 3, size, size, generator=generator)
    return DataLoader(TensorDataset(images, torch.arange(n) % 2), batch_size=4)


def test_onnx_features_equal_torch_features_and_leave_the_model_as_it_was() -> None:
    model = build_model("mobilenet_v2", resolve_weights("mobilenet_v2", SHARED))
    head = final_layer(model, "mobilenet_v2")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    batches = _batches()
    got, y = onnx_features(model, "mobilenet_v2", batches, threads=1)
    want, want_y = extract_features(model, "mobilenet_v2", batches, torch.device("cpu"))
    assert got.shape == want.shape == (6, 1280)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    assert y.tolist() == want_y.tolist() == [0, 1, 0, 1, 0, 1]
    assert final_layer(model, "mobilenet_v2") is head  # the head is back
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)


def test_onnx_features_refuse_no_batches() -> None:
    model = build_model("mobilenet_v2", resolve_weights("mobilenet_v2", SHARED))
    empty = DataLoader(TensorDataset(torch.zeros(0, 3, 32, 32), torch.zeros(0)), batch_size=4)
    with pytest.raises(ValueError, match="no batches"):
        onnx_features(model, "mobilenet_v2", empty, threads=1)


def _engines_used(monkeypatch: pytest.MonkeyPatch, cfg: TrainSettings) -> list[str]:
    used: list[str] = []
    real_onnx, real_torch = transfer.onnx_features, transfer.extract_features

    def via_onnx(*args: object, **kwargs: object) -> tuple[np.ndarray, np.ndarray]:
        used.append("onnx")
        return real_onnx(*args, **kwargs)  # type: ignore[arg-type]

    def via_torch(*args: object, **kwargs: object) -> tuple[np.ndarray, np.ndarray]:
        used.append("torch")
        return real_torch(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(transfer, "onnx_features", via_onnx)
    monkeypatch.setattr(transfer, "extract_features", via_torch)
    model = build_model("mobilenet_v2", resolve_weights("mobilenet_v2", SHARED))
    transfer.probe_features(model, "mobilenet_v2", _batches(), cfg, torch.device("cpu"))
    return used


@pytest.mark.parametrize(
    ("views", "engine", "expected"),
    [(0, "onnx", ["torch"]), (2, "onnx", ["onnx"]), (2, "torch", ["torch"])],
)
def test_only_augmented_views_go_through_the_chosen_engine(
    monkeypatch: pytest.MonkeyPatch, views: int, engine: str, expected: list[str]
) -> None:
    cfg = TrainSettings(probe_views=views, probe_view_engine=engine)  # type: ignore[arg-type]
    assert _engines_used(monkeypatch, cfg) == expected


def test_the_gated_probe_on_onnx_views_equals_the_one_on_torch_views(tmp_path: Path) -> None:
    from harmscan.data import ManifestDataset
    from harmscan.heads import GatedPriorHead
    from harmscan.presets import EvalPreset
    from harmscan.trainjob import build_recipe_model
    from harmscan.transfer import train_recipe

    dataset = make_synthetic_dataset(tmp_path, {"train": 3, "val": 2, "test": 2}, size=48)
    heads = {}
    for engine in ("torch", "onnx"):
        cfg = TrainSettings(recipe="probe", head="prior-gated", image_size=32, num_workers=0,
                            weights={"mobilenet_v2": SHARED}, probe_views=2,
                            probe_view_engine=engine)  # fmt: skip
        data = training_loaders(dataset, cfg, read_manifest(dataset), [], "illustration")
        data.photos = DataLoader(ManifestDataset(dataset, "val", EvalPreset(image_size=32)))
        model = build_recipe_model("mobilenet_v2", resolve_weights("mobilenet_v2", SHARED), cfg)
        train_recipe(model, "mobilenet_v2", data, cfg, device=torch.device("cpu"))
        heads[engine] = final_layer(model, "mobilenet_v2")
    a, b = heads["torch"], heads["onnx"]
    assert isinstance(a, GatedPriorHead)
    assert isinstance(b, GatedPriorHead)
    torch.testing.assert_close(a.gate.weight, b.gate.weight, rtol=0, atol=0)  # torch both times
    torch.testing.assert_close(b.drawing.linear.weight, a.drawing.linear.weight, rtol=1e-3,
                               atol=1e-4)  # fmt: skip
    torch.testing.assert_close(b.drawing.linear.bias, a.drawing.linear.bias, rtol=1e-3, atol=1e-4)
