"""registry.log_bundle against a real MLflow server: the registered version loads as torch and
carries the ONNX model and the serving spec under extra_files/."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from harmscan.bundle import HARMFUL, LABELS, ServingSpec
from harmscan.models import WeightsSource, build_model
from registry import CHAMPION, Registry, log_bundle, start_run

pytestmark = pytest.mark.slow


def test_logged_bundle_registers_and_loads_back(mlflow_uri: str, unique, tmp_path: Path) -> None:
    import mlflow
    import mlflow.pytorch
    import onnxruntime as ort

    torch.manual_seed(0)
    model = build_model("mobilenet_v2", WeightsSource("none")).eval()
    spec = ServingSpec(
        arch="mobilenet_v2",
        threshold=0.4,
        review_low=0.3,
        review_high=0.5,
        image_size=64,
        resize_size=73,
        dataset_version="abc123",
    )
    name = unique("reg")
    registry = Registry(mlflow_uri)
    with start_run(registry, unique("exp")) as run:
        bundle = log_bundle(run, model, spec, registered_model=name)
    assert bundle.version == "1"
    assert bundle.onnx_max_abs_diff < 1e-3

    registry.set_alias(name, CHAMPION, bundle.version, {"reason": "first"})
    assert registry.alias_version(name, CHAMPION) == "1"
    assert registry.alias_version(name, "nope") is None
    assert registry.model_version(name, "1").tags["dataset_version"] == "abc123"

    downloaded = registry.download_bundle(name, "1", tmp_path / "dl")
    got_spec, folder = downloaded.spec, downloaded.folder
    assert got_spec == spec
    assert got_spec.labels == LABELS
    assert got_spec.harmful_index == LABELS.index(HARMFUL)

    # A plain MLflow user (MLFLOW_TRACKING_URI, set by the fixture) loads it by alias.
    loaded = mlflow.pytorch.load_model(f"models:/{name}@{CHAMPION}")
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        expected = model(x).numpy()
        assert np.allclose(loaded.eval()(x).numpy(), expected, atol=1e-5)
    session = ort.InferenceSession(str(folder / "extra_files" / "model.onnx"))
    onnx_out = session.run(None, {"input": x.numpy()})[0]
    assert np.abs(onnx_out - expected).max() < 1e-3
