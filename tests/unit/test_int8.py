"""int8 and pixel-input graphs on tiny models: export, quantization, the auto-precision decision."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from harmscan.bundle import FLOAT_PIXELS_FILE, INT8_PIXELS_FILE, ONNX_FILE, ServingSpec
from harmscan.checksets import CheckSet
from harmscan.int8check import check_int8
from harmscan.onnx_export import INPUT_UINT8, write_pixel_model
from harmscan.precision import build_served_models
from harmscan.presets import EvalPreset, normalize
from harmscan.qdq import head_nodes
from harmscan.quantize import QuantizeOptions, quantize_int8
from serving.graphs import choose_graph
from serving.source import load_model_folder
from tests.fixtures.photo_sets import write_photo_set
from tests.serving_support import (
    BLUE,
    RED,
    ColourNet,
    image_bytes,
    make_spec,
    write_extra_files,
    write_image,
)

# uint8 pixels through the graph's Cast/Mul/Add vs numpy's normalize in float32: rounding only.
PIXEL_GRAPH_TOLERANCE = 1e-4


class TinyConvNet(torch.nn.Module):
    """Two convolutions and a linear head: enough structure for QDQ quantization to act on."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(8, 16, 3, stride=2, padding=1),
            torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1),
            torch.nn.Flatten(),
        )
        self.head = torch.nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _run(path: Path, batch: np.ndarray) -> np.ndarray:
    session = _session(path)
    return np.asarray(session.run(None, {session.get_inputs()[0].name: batch})[0])


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, ServingSpec]:
    spec = make_spec()
    write_extra_files(tmp_path / "bundle", TinyConvNet(), spec)
    return tmp_path / "bundle", spec


@pytest.fixture(autouse=True)
def vnni_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """auto's choice as on a CPU with VNNI, whatever the host (tests/unit/test_precision_choice)."""
    monkeypatch.setattr("serving.graphs.int8_saturates_here", lambda: False)


def _pixels(n: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_pixel_graph_equals_float_preprocessed_graph(tiny: tuple[Path, ServingSpec]) -> None:
    folder, spec = tiny
    preset = EvalPreset.from_spec(spec)
    pixel_model = write_pixel_model(folder / ONNX_FILE, folder / FLOAT_PIXELS_FILE, preset=preset)
    pixels = _pixels(4, spec.image_size)
    floats = np.stack([normalize(p, preset.mean, preset.std) for p in pixels])
    assert _session(pixel_model).get_inputs()[0].type == INPUT_UINT8
    got = _run(pixel_model, pixels)
    expected = _run(folder / ONNX_FILE, floats)
    assert np.max(np.abs(got - expected)) < PIXEL_GRAPH_TOLERANCE


def _image(pixels: np.ndarray):  # type: ignore[no-untyped-def]
    from PIL import Image

    return Image.fromarray(pixels)


def test_preset_model_input_is_pixels_or_normalized() -> None:
    image = _image(_pixels(1, 40)[0])
    float_preset = EvalPreset(image_size=32, resize_size=36)
    pixel_preset = dataclasses.replace(float_preset, normalize_in_model=True)
    pixels = pixel_preset.model_input(image)
    assert pixels.dtype == np.uint8
    assert pixels.shape == (32, 32, 3)
    assert np.array_equal(float_preset.model_input(image), float_preset.array(image))
    assert np.array_equal(pixels, float_preset.pixels(image))


def test_quantize_tiny_model_gives_a_qdq_graph_close_to_float(
    tiny: tuple[Path, ServingSpec],
) -> None:
    folder, spec = tiny
    preset = EvalPreset.from_spec(spec)
    calibration = [
        np.stack([preset.array(_image(p)) for p in _pixels(4, spec.image_size, seed)])
        for seed in range(3)
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        int8 = quantize_int8(
            folder / ONNX_FILE, folder / "int8.onnx", calibration, QuantizeOptions(method="minmax")
        )
    ops = {node.op_type for node in onnx.load(str(int8)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    batch = calibration[0]
    got, expected = _run(int8, batch), _run(folder / ONNX_FILE, batch)
    assert got.shape == expected.shape
    scale = np.max(np.abs(expected)) + 1e-6
    assert np.max(np.abs(got - expected)) / scale < 0.1  # int8 is close, not equal
    assert not np.array_equal(got, expected)


@pytest.mark.parametrize("float_head", [True, False])
def test_the_head_after_global_pooling_stays_float(
    tiny: tuple[Path, ServingSpec], float_head: bool
) -> None:
    folder, spec = tiny
    preset = EvalPreset.from_spec(spec)
    calibration = [np.stack([preset.array(_image(p)) for p in _pixels(4, spec.image_size)])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        int8 = quantize_int8(
            folder / ONNX_FILE, folder / "int8.onnx", calibration,
            QuantizeOptions(float_head=float_head),
        )  # fmt: skip
    graph = onnx.load(str(int8)).graph
    producer = {out: node.op_type for node in graph.node for out in node.output}

    def weight_is_quantized(op: str) -> bool:
        node = next(n for n in graph.node if n.op_type == op)
        return producer.get(node.input[1]) == "DequantizeLinear"

    assert weight_is_quantized("Conv")  # the backbone is int8 either way
    assert weight_is_quantized("Gemm") is not float_head
    assert head_nodes(onnx.load(str(folder / ONNX_FILE)))  # the export has a head after pooling


@pytest.mark.parametrize("method", ["entropy", "percentile"])
def test_other_calibration_methods_run(tiny: tuple[Path, ServingSpec], method: str) -> None:
    folder, spec = tiny
    preset = EvalPreset.from_spec(spec)
    batches = [np.stack([preset.array(_image(p)) for p in _pixels(4, spec.image_size)])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = quantize_int8(
            folder / ONNX_FILE, folder / f"{method}.onnx", batches, QuantizeOptions(method=method)
        )  # type: ignore[arg-type]
    assert _run(out, batches[0]).shape == (4, 2)


def test_unknown_calibration_method_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="minmax, entropy, percentile"):
        QuantizeOptions(method="kl")  # type: ignore[arg-type]


def test_check_int8_approves_equal_scores() -> None:
    y = np.array([0, 0, 1, 1, 0, 1])
    p = np.array([0.1, 0.3, 0.8, 0.7, 0.2, 0.9])
    check = check_int8(y, p, p + 0.01)
    assert check.approved
    assert "within 0.005" in check.reason
    assert check.summary()["int8_auc_all"] == pytest.approx(1.0)


def test_check_int8_refuses_a_domain_that_drops_even_if_overall_holds() -> None:
    rng = np.random.default_rng(0)
    y = np.tile([0, 1], 200)
    p_float = np.clip(y * 0.4 + rng.uniform(0, 0.6, y.size), 0, 1)
    photo = np.arange(y.size) < 40  # a small domain
    p_int8 = p_float.copy()
    p_int8[photo] = rng.uniform(0, 1, photo.sum())  # int8 ruins the photos only
    check = check_int8(y, p_float, p_int8, {"val/photo": photo}, tolerance=0.005)
    assert not check.approved
    assert "val/photo" in check.reason
    assert check.float_auc["val/photo"] - check.int8_auc["val/photo"] > 0.005


def test_check_int8_skips_single_class_groups() -> None:
    y = np.array([0, 1, 0, 1, 0, 0])
    p = np.array([0.1, 0.9, 0.2, 0.8, 0.3, 0.4])
    only_safe = np.array([True, False, True, False, True, True])
    check = check_int8(y, p, p, {"gate/emoji": only_safe})
    assert check.approved
    assert check.skipped == ("gate/emoji",)


def _colour_set(root: Path, name: str, n: int = 6) -> CheckSet:
    paths, labels, domains = [], [], []
    for i in range(n):
        harmful = i % 2
        shade = 20 * (i // 2)
        colour = (RED[0] - shade, RED[1], RED[2] + shade) if harmful else BLUE
        paths.append(write_image(root / name / f"{i}.jpg", colour))
        labels.append(harmful)
        domains.append("photo" if i < n // 2 else "emoji")
    return CheckSet(name, tuple(paths), tuple(labels), tuple(domains))


def _colour_bundle(root: Path) -> tuple[Path, ServingSpec]:
    spec = make_spec()
    write_extra_files(root / "extra_files", ColourNet(), spec)
    return root / "extra_files", spec


def test_build_served_models_approves_a_faithful_int8(tmp_path: Path) -> None:
    folder, spec = _colour_bundle(tmp_path / "model")
    checks = [_colour_set(tmp_path, "val"), _colour_set(tmp_path, "gate")]
    calibration = list(checks[0].paths)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        served = build_served_models(
            folder / ONNX_FILE, folder, spec, calibration=calibration, checks=checks
        )
    assert served.check.approved, served.check.reason
    assert served.spec.int8_approved
    assert {"all", "val", "val/photo", "gate/emoji"} <= set(served.check.float_auc)
    assert (folder / INT8_PIXELS_FILE).is_file()
    assert (folder / FLOAT_PIXELS_FILE).is_file()


def test_a_bad_int8_is_refused_and_serving_auto_uses_float(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, spec = _colour_bundle(tmp_path / "model")
    checks = [_colour_set(tmp_path, "val")]

    def inverted_int8(float_model: Path, dest: Path, *_: object, **__: object) -> Path:
        # The injected fault: an "int8" graph that ranks every image backwards.
        write_extra_files(dest.parent / "inverted", ColourNet(invert=True), spec)
        (dest.parent / "inverted" / ONNX_FILE).replace(dest)
        return dest

    monkeypatch.setattr("harmscan.precision.quantize_int8", inverted_int8)
    served = build_served_models(
        folder / ONNX_FILE, folder, spec, calibration=list(checks[0].paths), checks=checks
    )
    assert not served.spec.int8_approved
    assert "below float beyond tolerance" in served.spec.int8_reason
    served.spec.write(folder)
    assert not ServingSpec.read(folder).int8_approved  # the verdict travels with the model

    path, precision = choose_graph(folder, served.spec, "auto")
    assert (path.name, precision) == (FLOAT_PIXELS_FILE, "float")
    path, precision = choose_graph(folder, served.spec, "int8")  # forced: served regardless
    assert (path.name, precision) == (INT8_PIXELS_FILE, "int8")
    approved = dataclasses.replace(served.spec, int8_approved=True)
    assert choose_graph(folder, approved, "auto")[1] == "int8"
    assert choose_graph(folder, approved, "float")[1] == "float"
    with pytest.raises(ValueError, match="auto, int8, float"):
        choose_graph(folder, approved, "fp16")


def test_loaded_model_names_its_precision_and_takes_pixels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # auto also needs int8 to be faster here: fake timings say it is (test_precision_choice.py)
    monkeypatch.setattr(
        "serving.graphs.time_predictors", lambda *_a, **_k: {"float": 2.0, "int8": 1.0}
    )
    folder, spec = _colour_bundle(tmp_path / "model")
    checks = [_colour_set(tmp_path, "val")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        served = build_served_models(
            folder / ONNX_FILE, folder, spec, calibration=list(checks[0].paths), checks=checks
        )
    served.spec.write(folder)
    for setting, precision in (("auto", "int8"), ("float", "float")):
        model = load_model_folder(
            tmp_path / "model", name="m", version="1", runtime="onnx", precision=setting,
            warmup_batch=2,
        )  # fmt: skip
        assert model.precision == precision
        assert model.pixel_input
        assert model.preset.normalize_in_model
        red = np.full((1, spec.image_size, spec.image_size, 3), RED, dtype=np.uint8)
        assert model.p_harmful(red)[0] > 0.9


def test_results_name_the_precision_that_scored_them(tmp_path: Path) -> None:
    import base64

    from serving.classifier import BatchClassifier
    from serving.inputs import InputReader
    from serving.schema import Result, decode_result, encode_request, encode_result

    folder, spec = _colour_bundle(tmp_path / "model")
    checks = [_colour_set(tmp_path, "val")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        served = build_served_models(
            folder / ONNX_FILE, folder, spec, calibration=list(checks[0].paths), checks=checks
        )
    served.spec.write(folder)
    classifier = BatchClassifier(
        InputReader([tmp_path], [], max_bytes=1_000_000),
        workers=1, max_pixels=4_000_000, decode_timeout_s=5.0,
    )  # fmt: skip
    request = encode_request("red", image_b64=base64.b64encode(image_bytes(RED)).decode())
    try:
        for setting in ("int8", "float"):
            model = load_model_folder(
                tmp_path / "model", name="m", version="1", runtime="onnx", precision=setting
            )
            (result,) = classifier.classify([request], model, received_at=0.0)
            assert isinstance(result, Result)
            assert result.label == "harmful"
            assert decode_result(encode_result(result)).precision == setting
    finally:
        classifier.close()


def test_plan_calibrates_on_train_and_checks_val_and_the_gate_set(tmp_path: Path) -> None:
    import pandas as pd

    from harmscan.precision import Int8Plan

    rows = []
    for split in ("train", "val"):
        for i, label in enumerate(["harmful", "safe"] * 2):
            rel = f"{split}/{label}/{i}.jpg"
            write_image(tmp_path / "data" / rel, RED if label == "harmful" else BLUE)
            domain = "photo" if i < 2 else "emoji"
            rows.append((f"{split}{i}", label, split, rel, "0", domain))
    columns = ["image_id", "label", "split", "path", "sha256", "domain"]
    pd.DataFrame(rows, columns=columns).to_csv(tmp_path / "data" / "manifest.csv", index=False)
    gate = write_photo_set(  # a verified set: the plan loads it through load_photo_set
        tmp_path / "gate",
        [
            ("images/a.jpg", "harmful", "photo", image_bytes(RED)),
            ("images/b.jpg", "safe", "photo", image_bytes(BLUE)),
        ],
    )
    plan = Int8Plan.for_dataset(tmp_path / "data", gate_set=gate)
    assert all("/train/" in str(p) for p in plan.calibration)
    assert [c.name for c in plan.checks] == ["val", "gate"]
    assert plan.checks[0].domains == ("photo", "photo", "emoji", "emoji")
    assert plan.checks[1].harmful == (1, 0)

    folder, spec = _colour_bundle(tmp_path / "model")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        served = plan.build(folder / ONNX_FILE, folder, spec)
    assert served.check.approved, served.check.reason
    assert {"val/photo", "val/emoji", "gate", "gate/photo"} <= set(served.check.float_auc)


# Served input (JPEG draft mode: DCT-scaled decode, then the preset's crop) against the trained
# input (full decode, same crop), in grey levels on 1024x768 photos. Measured on the mirror: mean
# 0.1-0.5, 99th percentile 1-3, max 3-8 levels.
PARITY_MEAN_LEVELS = 1.0
PARITY_P99_LEVELS = 4.0
PARITY_MAX_LEVELS = 16.0


@pytest.mark.parametrize("index", [1, 5, 9])
def test_served_input_equals_trained_input_within_tolerance(tmp_path: Path, index: int) -> None:
    import io

    from PIL import Image

    from harmscan.imageio import decode_image
    from harmscan.models import REPO_ROOT
    from harmscan.onnx_export import pixel_constants

    source = sorted((REPO_ROOT / "mirror" / "images" / "test").glob("*.jpg"))[index]
    photo = Image.open(source).convert("RGB").resize((1024, 768), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=90)
    data = buffer.getvalue()
    preset = EvalPreset()  # the one preset training evaluates with and serving decodes with
    served = preset.pixels(decode_image(data, draft=preset.draft_size)).astype(np.float32)
    trained_tensor = preset(decode_image(data)).numpy()  # what training's evaluation feeds
    diff = np.abs(served - preset.pixels(decode_image(data)).astype(np.float32))
    assert diff.mean() <= PARITY_MEAN_LEVELS
    assert np.percentile(diff, 99) <= PARITY_P99_LEVELS
    assert diff.max() <= PARITY_MAX_LEVELS
    # and the graph's own normalisation of the served pixels lands on the trained tensor's scale
    scale, bias = pixel_constants(preset.mean, preset.std)
    in_graph = served.transpose(2, 0, 1)[None] * scale + bias
    step = float(scale.max())  # one grey level, normalised
    assert np.abs(in_graph[0] - trained_tensor).mean() <= PARITY_MEAN_LEVELS * step


def test_registration_hook_returns_the_verdict_spec_and_the_served_graphs(tmp_path: Path) -> None:
    from harmscan.int8check import Int8Check
    from harmscan.precision import Int8Plan, served_graphs_hook

    folder, spec = _colour_bundle(tmp_path / "model")
    checks = _colour_set(tmp_path, "val")
    verdicts: list[Int8Check] = []
    hook = served_graphs_hook(Int8Plan(checks.paths, (checks,)), verdicts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        new_spec, files = hook(folder / ONNX_FILE, spec)
    assert [f.name for f in files] == [FLOAT_PIXELS_FILE, INT8_PIXELS_FILE]
    assert all(f.parent == folder for f in files)
    assert new_spec.int8_approved == verdicts[0].approved
    assert new_spec.int8_reason == verdicts[0].reason


def test_the_domain_check_judges_pooled_domains_and_logs_the_sets_in_the_spec(
    tmp_path: Path,
) -> None:
    from harmscan.int8check import Int8Check
    from harmscan.precision import Int8Plan, served_graphs_hook

    folder, spec = _colour_bundle(tmp_path / "model")
    checks = (_colour_set(tmp_path, "val"), _colour_set(tmp_path, "gate"))
    verdicts: list[Int8Check] = []
    plan = Int8Plan(checks[0].paths, checks, check_groups="domain")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        new_spec, _ = served_graphs_hook(plan, verdicts)(folder / ONNX_FILE, spec)
    check = verdicts[0]
    assert {"all", "photo", "emoji"} <= set(check.float_auc)
    assert set(check.logged) == {"val", "val/photo", "val/emoji", "gate", "gate/photo",
                                 "gate/emoji"}  # fmt: skip
    assert new_spec.int8_reason.startswith("judged per domain, the check sets pooled: ")
    assert "logged, not judged (int8 - float AUC): val " in new_spec.int8_reason
    assert "float_auc_gate_emoji" in check.summary()


class InvertedResidual(torch.nn.Module):
    """MobileNetV2's block (pointwise, depthwise, pointwise; BN; ReLU6) at its initial weights:
    the folded biases are all zero, so the export shares them through ``Identity`` nodes."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)

        def conv(cin: int, cout: int, k: int, groups: int = 1) -> list[torch.nn.Module]:
            return [torch.nn.Conv2d(cin, cout, k, padding=k // 2, groups=groups, bias=False),
                    torch.nn.BatchNorm2d(cout)]  # fmt: skip

        self.body = torch.nn.Sequential(
            *conv(3, 16, 3), torch.nn.ReLU6(),
            *conv(16, 32, 1), torch.nn.ReLU6(),
            *conv(32, 32, 3, groups=32), torch.nn.ReLU6(),
            *conv(32, 16, 1),
            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(16, 2),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _optimized_ops(path: Path) -> set[str]:
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(path.with_suffix(".opt.onnx"))
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return {node.op_type for node in onnx.load(options.optimized_model_filepath).graph.node}


def test_every_convolution_runs_in_int8(tmp_path: Path) -> None:
    # What made int8 slower than float: convolutions left in float between Q/DQ pairs (shared
    # initializers behind Identity nodes without pre-processing; int8 activations on x86).
    spec = make_spec()
    write_extra_files(tmp_path, InvertedResidual().eval(), spec)
    assert "Identity" in {node.op_type for node in onnx.load(str(tmp_path / ONNX_FILE)).graph.node}
    preset = EvalPreset.from_spec(spec)
    calibration = [np.stack([preset.array(_image(p)) for p in _pixels(4, spec.image_size)])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        int8 = quantize_int8(tmp_path / ONNX_FILE, tmp_path / "int8.onnx", calibration)
    ops = _optimized_ops(int8)
    assert "QLinearConv" in ops
    assert not ops & {"Conv", "FusedConv"}, ops


def test_registration_makes_no_int8_when_it_is_disabled(tmp_path: Path) -> None:
    from conf.settings import Int8Settings
    from tasks.int8 import int8_hook

    verdicts: list[object] = []
    assert int8_hook(tmp_path, Int8Settings(enabled=False), None, verdicts, []) is None  # type: ignore[arg-type]


def test_pair_step_is_one_pair_of_the_auc() -> None:
    from harmscan.int8check import pair_step

    assert pair_step(np.array([1] * 14 + [0] * 13)) == pytest.approx(1 / 182)
    assert pair_step(np.array([0, 0, 0])) == float("inf")


def _small_group_case() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """400 images ranked perfectly, and a group of 10 harmful and 10 safe (100 pairs: one pair
    moves its AUC 0.01, more than the tolerance) where int8 swaps one pair far from 0.5."""
    y = np.tile([0, 1], 200)
    p_float = np.where(y == 1, 0.6, 0.1) + np.linspace(0, 0.3, y.size)
    p_int8 = p_float.copy()
    small = np.arange(y.size) < 20
    harmful_low = int(np.flatnonzero(small & (y == 1))[0])
    safe_high = int(np.flatnonzero(small & (y == 0))[-1])
    p_float[harmful_low], p_float[safe_high] = 0.70, 0.20
    p_int8[harmful_low], p_int8[safe_high] = 0.19, 0.21  # one pair swapped, far below 0.5
    return y, p_float, p_int8, small


def test_a_group_too_small_for_the_tolerance_is_judged_on_its_verdicts() -> None:
    y, p_float, p_int8, small = _small_group_case()
    by_auc = check_int8(y, p_float, p_int8, {"val/illustration": small})
    assert not by_auc.approved  # one swapped pair: -0.01 > 0.005
    # the harmful image now scores 0.19: below the threshold it is no longer caught
    missed = check_int8(y, p_float, p_int8, {"val/illustration": small}, threshold=0.5)
    assert not missed.approved
    assert "harmful caught 10 -> 9" in missed.reason
    assert "one pair moves its AUC 0.0100 > 0.005" in missed.reason
    # same swap, both images still on the right side of a threshold of 0.15: verdicts agree
    p_int8[p_int8 == 0.19] = 0.205
    held = check_int8(y, p_float, p_int8, {"val/illustration": small}, threshold=0.15)
    assert held.approved, held.reason
    assert "val/illustration too small for AUC at 0.005" in held.reason


def test_a_group_that_resolves_the_tolerance_is_still_judged_on_auc() -> None:
    y, p_float, _, _ = _small_group_case()
    big = np.arange(y.size) < 60  # 30 x 30 = 900 pairs: one pair moves the AUC 0.0011
    p_int8 = p_float.copy()
    rows = np.flatnonzero(big)
    p_int8[rows] = p_float[rows][::-1]  # int8 reverses the ranking there, verdicts aside
    check = check_int8(y, p_float, p_int8, {"val/emoji": big}, threshold=0.0)
    assert not check.approved
    assert "val/emoji: " in check.reason
    assert "vs float" in check.reason
