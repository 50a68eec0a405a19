"""The gated head with one threshold per branch through the main job's training task."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conf.loader import load_settings
from tests.fixtures.train_data import make_synthetic_dataset

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("refit_head", [False, True])
def test_per_branch_thresholds_are_folded_logged_and_recorded_in_the_spec(
    mlflow_server: str, tmp_path: Path, refit_head: bool
) -> None:
    from registry import Registry
    from tasks.training import train_and_register

    dataset = make_synthetic_dataset(tmp_path / "data", {"train": 12, "val": 8, "test": 6})
    manifest = pd.read_csv(dataset / "manifest.csv")
    manifest["domain"] = "illustration"  # drawings beside photopool's photos in the mix
    manifest.to_csv(dataset / "manifest.csv", index=False)
    tag = uuid.uuid4().hex[:8]
    settings = load_settings(
        "ci",
        [
            f"paths.root={tmp_path / 'harmscan'}",
            f"mlflow.tracking_uri={mlflow_server}",
            f"mlflow.experiment=exp-{tag}",
            f"mlflow.registered_model=model-{tag}",
            "train.image_size=64",
            "train.batch_size=16",
            "train.recipe=probe",
            "train.head=prior-gated",
            "train.gate_operating_point=per-branch",
            "train.calibration_photos=photopool",
            "mlflow.check_sets=[iconcheck]",
            f"int8.refit_head={str(refit_head).lower()}",
        ],
        env={},
    )
    result = train_and_register(settings, "mobilenet_v2", dataset)
    registry = Registry(mlflow_server)
    metrics = registry.client.get_run(result.run_id).data.metrics
    tags = registry.client.get_run(result.run_id).data.tags
    assert tags["recipe"] == "probe+prior-gated"
    assert "int8_approved" in metrics  # the int8 graph of the shifted head was made and checked
    # int8.refit_head: the int8 graph's head was refitted on its own features, and the float
    # model's calibration, threshold and logged figures are its own (the refit works on a copy)
    assert ("head refitted on the int8 backbone's features" in tags["int8_reason"]) is refit_head
    assert metrics["threshold"] == pytest.approx(result.threshold)
    # the held-out icon check set is scored and logged per domain under its own prefix
    assert metrics["iconcheck_emoji_count"] == metrics["iconcheck_all_count"] == 120
    assert 0 <= metrics["iconcheck_emoji_auc"] <= 1
    # the shifts move each branch's threshold onto the stored one (synthetic images saturate
    # the drawing branch, so compare on the probability scale)
    stored = np.log(result.threshold / (1 - result.threshold))
    for branch in ("photo", "drawing"):
        shift = metrics[f"shift_{branch}_branch"]
        assert np.isfinite(shift)
        moved = 1 / (1 + np.exp(-(stored - shift)))
        assert moved == pytest.approx(metrics[f"threshold_{branch}_branch"], abs=1e-6)
    bundle = registry.download_bundle(result.registered_model, result.version, tmp_path / "dl")
    assert float(bundle.spec.extra["threshold_photo_branch"]) == pytest.approx(
        metrics["threshold_photo_branch"], abs=1e-6
    )
    assert bundle.spec.threshold == pytest.approx(result.threshold)
