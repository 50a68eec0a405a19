"""serving.precision=auto: int8 only when it passed its accuracy check AND is faster on this host.

The timing itself is replaced by fake figures (`serving.graphs.time_predictors`): the decision is
tested, never a host's speed.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from harmscan.bundle import ONNX_FILE, ServingSpec
from harmscan.checksets import CheckSet
from harmscan.precision import build_served_models
from serving.graphs import SpeedCheck, choose_graph, int8_saturates, time_predictors
from serving.metrics import ServingMetrics
from serving.source import load_model_folder
from tests.serving_support import BLUE, RED, ColourNet, make_spec, write_extra_files, write_image


@pytest.fixture(autouse=True)
def vnni_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test here runs as on a CPU with VNNI, whatever the host (one test says otherwise)."""
    monkeypatch.setattr("serving.graphs.int8_saturates_here", lambda: False)


@pytest.mark.parametrize(
    ("flags", "machine", "saturates"),
    [
        ("fpu sse2 avx2 fma avx512f avx512bw avx512_vnni amx_int8", "x86_64", False),
        ("fpu sse2 avx2 fma avx_vnni", "x86_64", False),  # client cores: AVX-VNNI without 512
        ("fpu sse2 avx2 fma avx512f avx512bw", "x86_64", True),  # Skylake-SP: no VNNI
        ("fpu sse2 avx2 fma", "AMD64", True),
        ("fp asimd asimddp i8mm", "aarch64", False),  # no 16-bit intermediates on ARM dot
    ],
)
def test_int8_saturates_on_x86_without_vnni(flags: str, machine: str, saturates: bool) -> None:
    cpuinfo = f"processor\t: 0\nmodel name\t: some cpu\nflags\t\t: {flags}\n"
    assert int8_saturates(cpuinfo, machine) is saturates
    assert int8_saturates("processor\t: 0\n", machine) is False  # no flags: nothing to go on


@pytest.mark.parametrize(
    ("float_s", "int8_s", "min_speedup", "wins"),
    [
        (0.100, 0.050, 1.1, True),  # twice as fast
        (0.100, 0.095, 1.1, False),  # faster, not by enough
        (0.050, 0.100, 1.0, False),  # slower: what this host's first int8 graphs did
        (0.100, 0.100, 1.0, True),  # a tie at 1.0 keeps the approved int8
    ],
)
def test_speed_check_serves_int8_only_when_fast_enough(
    float_s: float, int8_s: float, min_speedup: float, wins: bool
) -> None:
    check = SpeedCheck(float_s, int8_s, min_speedup)
    assert check.int8_wins is wins
    assert check.speedup == pytest.approx(float_s / int8_s)
    assert ("serving int8" if wins else "serving float") in check.reason


def test_time_predictors_runs_each_in_turns_and_keeps_the_best() -> None:
    calls: list[str] = []

    def fake(name: str):  # type: ignore[no-untyped-def]
        def predict(batch: np.ndarray) -> np.ndarray:
            calls.append(name)
            return batch

        return predict

    best = time_predictors({"float": fake("float"), "int8": fake("int8")}, np.zeros(2), rounds=3)
    assert calls == ["float", "int8"] + ["float", "int8"] * 3  # one untimed run each, then turns
    assert set(best) == {"float", "int8"}
    assert all(0 <= t < math.inf for t in best.values())


@pytest.fixture(scope="module")
def int8_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ServingSpec]:
    """A model folder whose int8 graph passed its check (spec.int8_approved)."""
    root = tmp_path_factory.mktemp("bundle")
    folder, spec = root / "model" / "extra_files", make_spec()
    write_extra_files(folder, ColourNet(), spec)
    images = []
    for i in range(6):
        images.append(write_image(root / "val" / f"{i}.jpg", RED if i % 2 else BLUE))
    check = CheckSet("val", tuple(images), tuple(i % 2 for i in range(6)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        served = build_served_models(
            folder / ONNX_FILE, folder, spec, calibration=images, checks=[check]
        )
    assert served.spec.int8_approved, served.spec.int8_reason
    served.spec.write(folder)
    return root / "model", served.spec


def _fake_timings(monkeypatch: pytest.MonkeyPatch, float_s: float, int8_s: float) -> list[int]:
    timed: list[int] = []

    def fake(predictors, batch, rounds=5):  # type: ignore[no-untyped-def]
        timed.append(len(batch))
        for predict in predictors.values():
            predict(batch)  # the graphs must still run on the blank batch
        return {"float": float_s, "int8": int8_s}

    monkeypatch.setattr("serving.graphs.time_predictors", fake)
    return timed


def _load(folder: Path, precision: str = "auto", **kw: object):  # type: ignore[no-untyped-def]
    return load_model_folder(
        folder, name="m", version="1", runtime="onnx", precision=precision, **kw
    )  # type: ignore[arg-type]


def test_auto_serves_float_when_int8_is_slower_here(
    int8_bundle: tuple[Path, ServingSpec], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, spec = int8_bundle
    timed = _fake_timings(monkeypatch, float_s=0.010, int8_s=0.020)
    model = _load(folder, warmup_batch=16, workers=2)
    assert timed == [8]  # the batch one inference worker scores
    assert model.precision == "float"
    assert model.int8_speedup == pytest.approx(0.5)
    assert model.pixel_input  # the float pixel graph, not the NCHW export
    red = np.full((1, spec.image_size, spec.image_size, 3), RED, dtype=np.uint8)
    assert model.p_harmful(red)[0] > 0.9


def test_auto_serves_int8_when_faster_here(
    int8_bundle: tuple[Path, ServingSpec], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, _ = int8_bundle
    _fake_timings(monkeypatch, float_s=0.020, int8_s=0.010)
    model = _load(folder, int8_min_speedup=1.1)
    assert model.precision == "int8"
    assert model.int8_speedup == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("precision", "min_speedup", "expected"),
    [("int8", 1.1, "int8"), ("float", 1.1, "float"), ("auto", 0.0, "int8")],
)
def test_forced_precisions_and_a_zero_threshold_are_not_timed(
    int8_bundle: tuple[Path, ServingSpec],
    monkeypatch: pytest.MonkeyPatch,
    precision: str,
    min_speedup: float,
    expected: str,
) -> None:
    folder, _ = int8_bundle
    timed = _fake_timings(monkeypatch, float_s=0.010, int8_s=1.0)  # int8 100x slower
    model = _load(folder, precision, int8_min_speedup=min_speedup)
    assert (model.precision, model.int8_speedup, timed) == (expected, None, [])


def test_a_refused_int8_is_not_timed(
    int8_bundle: tuple[Path, ServingSpec], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, spec = int8_bundle
    folder = tmp_path / "model"
    shutil.copytree(source, folder)
    dataclasses.replace(spec, int8_approved=False, int8_reason="refused").write(
        folder / "extra_files"
    )
    timed = _fake_timings(monkeypatch, float_s=1.0, int8_s=0.010)  # int8 100x faster
    model = _load(folder)
    assert (model.precision, timed) == ("float", [])


def test_auto_serves_float_on_a_cpu_where_int8_saturates(
    int8_bundle: tuple[Path, ServingSpec], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, spec = int8_bundle
    monkeypatch.setattr("serving.graphs.int8_saturates_here", lambda: True)
    bundle_dir = folder / "extra_files"
    assert choose_graph(bundle_dir, spec, "auto")[1] == "float"
    assert choose_graph(bundle_dir, spec, "int8")[1] == "int8"  # forced stays forced
    timed = _fake_timings(monkeypatch, float_s=1.0, int8_s=0.010)  # however fast int8 is
    assert (_load(folder).precision, timed) == ("float", [])


def test_metrics_expose_the_measured_speedup() -> None:
    metrics = ServingMetrics()
    metrics.set_model("m", "3", "onnx", "float", 0.5)
    assert metrics.registry.get_sample_value("harmscan_int8_speedup") == 0.5
    assert (
        metrics.registry.get_sample_value(
            "harmscan_model_info",
            {"name": "m", "version": "3", "runtime": "onnx", "precision": "float"},
        )
        == 1.0
    )
    metrics.set_model("m", "4", "onnx", "int8")
    assert math.isnan(metrics.registry.get_sample_value("harmscan_int8_speedup") or 0.0)
