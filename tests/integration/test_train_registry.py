"""log_bundle against a real MLflow server: the registered version loads as torch and carries
the ONNX model and the serving spec under extra_files/."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from harmscan.bundle import HARMFUL, LABELS, ServingSpec
from harmscan.models import WeightsSource, build_model
from tasks.registry import CHAMPION, alias_version, download_bundle, log_bundle, set_alias

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
    mlflow.set_tracking_uri(mlflow_uri)
    mlflow.set_experiment(unique("exp"))
    with mlflow.start_run():
        bundle = log_bundle(model, spec, registered_model=name)
    assert bundle.version == "1"
    assert bundle.onnx_max_abs_diff < 1e-3

    client = mlflow.MlflowClient()
    set_alias(client, name, CHAMPION, bundle.version, {"reason": "first"})
    assert alias_version(client, name, CHAMPION) == "1"
    assert alias_version(client, name, "nope") is None
    assert client.get_model_version(name, "1").tags["dataset_version"] == "abc123"

    got_spec, folder = download_bundle(f"models:/{name}@{CHAMPION}", tmp_path / "dl")
    assert got_spec == spec
    assert got_spec.labels == LABELS
    assert got_spec.harmful_index == LABELS.index(HARMFUL)

    loaded = mlflow.pytorch.load_model(f"models:/{name}@{CHAMPION}")
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        expected = model(x).numpy()
        assert np.allclose(loaded.eval()(x).numpy(), expected, atol=1e-5)
    session = ort.InferenceSession(str(folder / "extra_files" / "model.onnx"))
    onnx_out = session.run(None, {"input": x.numpy()})[0]
    assert np.abs(onnx_out - expected).max() < 1e-3
