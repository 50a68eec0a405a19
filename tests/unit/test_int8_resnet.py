"""ResNet50 takes the same int8 path as MobileNetV2: `build_served_models` on a random-weight
ResNet50 at a small input writes both pixel graphs, quantizes every convolution and judges it."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from harmscan.bundle import FLOAT_PIXELS_FILE, INT8_PIXELS_FILE, ONNX_FILE, ServingSpec
from harmscan.checksets import CheckSet
from harmscan.models import WeightsSource, build_model, export_onnx
from harmscan.pixelscore import p_harmful
from harmscan.precision import build_served_models
from harmscan.presets import EvalPreset
from harmscan.quantize import QuantizeOptions
from tests.serving_support import BLUE, RED, write_image

pytestmark = pytest.mark.slow

SIZE = 64
# int8 against float on the same images, random weights (no trained margins to keep): the
# harmful probabilities rank alike and stay close.
MIN_RANK_CORRELATION = 0.9
MAX_PROBABILITY_GAP = 0.01


def _session(path: Path, optimized: Path | None = None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    if optimized is not None:
        options.optimized_model_filepath = str(optimized)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _check_set(root: Path, n: int = 12) -> CheckSet:
    rng = np.random.default_rng(0)
    paths, labels, domains = [], [], []
    for i in range(n):
        base = np.array(RED if i % 2 else BLUE, dtype=np.int64)
        colour = tuple(int(c) for c in np.clip(base + rng.integers(-60, 60, 3), 0, 255))
        paths.append(write_image(root / f"{i}.jpg", colour))
        labels.append(i % 2)
        domains.append("photo" if i < n // 2 else "illustration")
    return CheckSet("val", tuple(paths), tuple(labels), tuple(domains))


@pytest.fixture(scope="module")
def resnet_served(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("resnet50")
    torch.manual_seed(0)
    model = build_model("resnet50", WeightsSource("none")).eval()
    spec = ServingSpec(arch="resnet50", threshold=0.5, review_low=0.4, review_high=0.6,
                       image_size=SIZE, resize_size=73)  # fmt: skip
    folder = root / "extra_files"
    export_onnx(model, folder / ONNX_FILE, SIZE)
    checks = _check_set(root / "val")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        served = build_served_models(
            folder / ONNX_FILE, folder, spec, calibration=list(checks.paths), checks=[checks],
            options=QuantizeOptions(calibration_images=8), tolerance=1.0,
        )  # fmt: skip
    return model, spec, folder, checks, served


def test_resnet50_float_pixel_graph_matches_torch(resnet_served) -> None:  # type: ignore[no-untyped-def]
    model, spec, folder, _, served = resnet_served
    assert [f.name for f in served.files] == [FLOAT_PIXELS_FILE, INT8_PIXELS_FILE]
    pixels = np.random.default_rng(1).integers(0, 256, (2, SIZE, SIZE, 3), dtype=np.uint8)
    preset = EvalPreset.from_spec(spec)
    mean, std = np.array(preset.mean), np.array(preset.std)
    x = ((pixels / 255.0 - mean) / std).transpose(0, 3, 1, 2).astype(np.float32)
    with torch.inference_mode():
        expected = model(torch.from_numpy(x)).numpy()
    got = _session(folder / FLOAT_PIXELS_FILE).run(None, {"pixels": pixels})[0]
    assert np.max(np.abs(got - expected)) / (np.max(np.abs(expected)) + 1e-6) < 1e-3


def test_resnet50_int8_quantizes_every_convolution(resnet_served) -> None:  # type: ignore[no-untyped-def]
    _, _, folder, _, _ = resnet_served
    optimized = folder / "int8.opt.onnx"
    _session(folder / INT8_PIXELS_FILE, optimized)
    ops = [node.op_type for node in onnx.load(str(optimized)).graph.node]
    assert ops.count("QLinearConv") == 53  # ResNet50's 53 convolutions (downsamples included)
    assert not {"Conv", "FusedConv"} & set(ops)


def test_resnet50_int8_verdict_and_parity_on_the_check_images(resnet_served) -> None:  # type: ignore[no-untyped-def]
    from scipy.stats import spearmanr

    _, _, folder, checks, served = resnet_served
    check = served.check
    assert served.spec.int8_approved is check.approved
    assert served.spec.int8_reason == check.reason
    assert {"all", "val", "val/photo", "val/illustration"} <= set(check.float_auc)
    p_float = p_harmful(folder / FLOAT_PIXELS_FILE, served.spec, checks.paths)
    p_int8 = p_harmful(folder / INT8_PIXELS_FILE, served.spec, checks.paths)
    assert check.float_auc["all"] == pytest.approx(_auc(checks.harmful, p_float))
    assert spearmanr(p_float, p_int8).statistic > MIN_RANK_CORRELATION
    assert np.max(np.abs(p_float - p_int8)) < MAX_PROBABILITY_GAP


def _auc(labels: tuple[int, ...], p: np.ndarray) -> float:
    from harmscan.metrics import binary_metrics

    return float(binary_metrics(np.asarray(labels), p)["auc"])
