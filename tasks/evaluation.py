"""Evaluation on a dataset split: of a torch model in memory, or of a registered model version.

Re-evaluating a registered version uses the preset and threshold that travel with it (its
`ServingSpec`), so the champion and a candidate are scored the same way on the same split.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from prefect import get_run_logger, task
from torch import nn
from torch.utils.data import DataLoader

from harmscan.data import ManifestDataset, dataset_version
from harmscan.engine import Predictions, evaluate
from harmscan.metrics import binary_metrics
from harmscan.presets import EvalPreset
from registry import Registry


def predict_split(
    model: nn.Module,
    dataset: Path,
    split: str,
    preset: EvalPreset,
    *,
    batch_size: int = 32,
    num_workers: int = 0,
    device: torch.device | None = None,
) -> Predictions:
    """Labels and P(harmful) of every image of one split."""
    data = ManifestDataset(dataset, split, preset)
    loader = DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    device = device or torch.device("cpu")
    return evaluate(model.to(device), loader, device, description=f"{split} ({len(data)} images)")


def evaluate_version(
    registry: Registry,
    name: str,
    version: str,
    dataset: Path,
    *,
    split: str = "test",
    batch_size: int = 32,
) -> dict[str, float]:
    """Metrics of a registered harmscan bundle on a split, at the bundle's own threshold.

    Args:
        registry: Where the model is registered.
        name: Registered model name.
        version: Its version.
        dataset: Dataset folder (manifest + images).
        split: Which split to score.
        batch_size: Evaluation batch size.

    Returns:
        `harmscan.metrics.binary_metrics` output, plus nothing else.
    """
    import mlflow.pytorch

    with tempfile.TemporaryDirectory(prefix="harmscan-eval-") as tmp:
        bundle = registry.download_bundle(name, version, Path(tmp))
        model = mlflow.pytorch.load_model(str(bundle.model_dir), map_location="cpu")
    spec = bundle.spec
    preds = predict_split(
        model.eval(), dataset, split, EvalPreset.from_spec(spec), batch_size=batch_size
    )
    return binary_metrics(preds.y_true, preds.p_harmful, spec.threshold)


@task(name="evaluate-model", retries=1, retry_delay_seconds=5)
def evaluate_model_task(
    tracking_uri: str,
    name: str,
    version: str,
    dataset: Path,
    split: str = "test",
    batch_size: int = 32,
) -> dict[str, float]:
    """Prefect task: `evaluate_version`, logged."""
    logger = get_run_logger()
    metrics = evaluate_version(
        Registry(tracking_uri), name, version, dataset, split=split, batch_size=batch_size
    )
    logger.info(
        "%s v%s on %s split of dataset %s: auc=%.4f f1=%.4f accuracy=%.4f",
        name,
        version,
        split,
        dataset_version(dataset),
        metrics["auc"],
        metrics["f1"],
        metrics["accuracy"],
    )
    return metrics
