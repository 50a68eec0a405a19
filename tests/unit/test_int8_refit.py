"""``int8.refit_head``: the head refitted on the int8 backbone's own features.

`harmscan.onnxfeatures.OnnxFeatures` gives the training code a graph's pooled features;
`tasks.int8refit.head_refit` refits a copy of the model's head on an int8 graph's features and
folds its threshold onto the float spec's; `build_served_models(refit_head=...)` serves the
quantized refitted export and judges it as it judges any int8 model.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from scipy.special import logit
from torch import nn

from conf.settings import TrainSettings
from harmscan.bundle import INT8_PIXELS_FILE, ONNX_FILE, ServingSpec
from harmscan.calibration import OperatingPoint
from harmscan.checksets import CheckSet
from harmscan.heads import final_layer
from harmscan.models import export_onnx
from harmscan.onnxfeatures import OnnxFeatures, features_output
from harmscan.precision import build_served_models
from harmscan.quantize import QuantizeOptions, quantize_int8
from harmscan.transfer import RecipeOutcome
from tasks.int8refit import check_refit, head_refit
from tests.serving_support import BLUE, RED, ColourNet, make_spec, write_extra_files, write_image


class SmallNet(nn.Module):
    """MobileNetV2's outline: features, pooling, flatten, ``classifier.1`` (the head)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU()
        )
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(8, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = nn.functional.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(pooled, 1))


def _batch(n: int = 8, size: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 3, size, size)).astype(np.float32)


def _flatten_of(graph: Path, batch: np.ndarray) -> np.ndarray:
    model = onnx.load(str(graph))
    name = features_output(model.graph)
    model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.asarray(session.run([name], {session.get_inputs()[0].name: batch})[0])


def _log_odds(graph: Path, batch: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    logits = np.asarray(session.run(None, {session.get_inputs()[0].name: batch})[0])
    return logits[:, 1] - logits[:, 0]


def test_onnx_features_give_the_head_the_graphs_pooled_features(tmp_path: Path) -> None:
    net = SmallNet().eval()
    graph = export_onnx(net, tmp_path / "net.onnx", 16)
    wrapped = OnnxFeatures(graph, final_layer(net, "mobilenet_v2")).eval()
    x = torch.from_numpy(_batch())
    with torch.no_grad():
        assert torch.allclose(wrapped(x), net(x), atol=1e-5)
    assert np.allclose(wrapped.features(x).numpy(), _flatten_of(graph, x.numpy()), atol=1e-6)


def test_a_graph_without_one_flatten_is_refused(tmp_path: Path) -> None:
    graph = write_extra_files(tmp_path / "colour", ColourNet(), make_spec())
    colour = next(p for p in graph if p.name == ONNX_FILE)
    with pytest.raises(ValueError, match="one Flatten"):
        OnnxFeatures(colour, nn.Linear(3, 2))


def _job(recipe: str = "probe") -> Any:
    train = TrainSettings(recipe=recipe, probe_views=2)
    return SimpleNamespace(
        model=SmallNet(), arch="mobilenet_v2", data=object(), class_weights=None,
        settings=SimpleNamespace(train=train),
    )  # fmt: skip


@pytest.mark.parametrize("recipe", ["finetune", "lp-ft"])
def test_refit_is_refused_when_the_recipe_trains_the_backbone(recipe: str) -> None:
    with pytest.raises(ValueError, match="valid: probe, prior"):
        check_refit(_job(recipe))


def test_head_refit_fits_on_the_int8_features_and_folds_onto_the_float_threshold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = _job()
    before = {k: v.clone() for k, v in job.model.state_dict().items()}
    batch = _batch()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export = export_onnx(job.model, tmp_path / "float.onnx", 16)
        int8 = quantize_int8(export, tmp_path / "int8.onnx", [batch], QuantizeOptions())
    seen: dict[str, np.ndarray] = {}

    def fit(model: nn.Module, arch: str, _data: object, settings: Any, **_: object) -> Any:
        assert isinstance(model, OnnxFeatures)
        assert settings.probe_view_engine == "torch"  # its views through the int8 graph too
        seen["features"] = model.features(torch.from_numpy(batch)).numpy()
        head = final_layer(model, arch)
        assert isinstance(head, nn.Linear)
        with torch.no_grad():  # the "fit": harmful log-odds 1.0 for every image
            head.weight.zero_()
            head.bias.copy_(torch.tensor([0.0, 1.0]))
        return RecipeOutcome()

    monkeypatch.setattr("tasks.int8refit.train_recipe", fit)
    point = OperatingPoint(1.0, 0.25, 0.1, 0.4, 0.0, 0.0)
    spec = ServingSpec(**{**make_spec().__dict__, "threshold": 0.5, "image_size": 16})
    refitted = head_refit(job, lambda model, outcome: point)(int8, tmp_path, spec)

    assert np.allclose(seen["features"], _flatten_of(int8, batch), atol=1e-6)
    expected = 1.0 + logit(0.5) - logit(0.25)  # its own threshold 0.25 decides at the spec's 0.5
    assert np.allclose(_log_odds(refitted, batch), expected, atol=1e-5)
    after = job.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the float model is untouched


def _colour_set(root: Path, n: int = 6) -> CheckSet:
    paths, labels = [], []
    for i in range(n):
        harmful = i % 2
        shade = 20 * (i // 2)
        colour = (RED[0] - shade, RED[1], RED[2] + shade) if harmful else BLUE
        paths.append(write_image(root / "val" / f"{i}.jpg", colour))
        labels.append(harmful)
    return CheckSet("val", tuple(paths), tuple(labels), ("photo",) * n)


@pytest.mark.parametrize("invert", [False, True])
def test_build_served_models_serves_and_judges_the_refitted_export(
    tmp_path: Path, invert: bool
) -> None:
    spec = make_spec()
    folder = tmp_path / "bundle"
    write_extra_files(folder, ColourNet(), spec)
    checks = [_colour_set(tmp_path)]
    given: list[Path] = []

    def refit(int8_graph: Path, where: Path, float_spec: ServingSpec) -> Path:
        assert int8_graph.is_file()  # the int8 graph just made (ColourNet has no conv to quantize)
        assert float_spec == spec
        given.append(int8_graph)
        # the injected fault (invert): a refit that ranks every image backwards
        write_extra_files(where / "refit", ColourNet(invert=invert), spec)
        return where / "refit" / ONNX_FILE

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        served = build_served_models(
            folder / ONNX_FILE, folder, spec, calibration=list(checks[0].paths), checks=checks,
            refit_head=refit,
        )  # fmt: skip
    assert len(given) == 1
    assert served.check.approved is not invert, served.check.reason
    assert "head refitted on the int8 backbone's features" in served.check.reason
    assert (folder / INT8_PIXELS_FILE).is_file()
    assert not list(folder.glob("*.tmp.onnx"))
