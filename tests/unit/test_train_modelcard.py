"""Model card and evaluation figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from harmscan.bundle import ServingSpec
from harmscan.metrics import binary_metrics
from harmscan.modelcard import model_card, plot_confusion, plot_pr, plot_roc


def test_figures_are_png_images(tmp_path: Path) -> None:
    y = np.array([0, 0, 1, 1, 1, 0])
    p = np.array([0.1, 0.4, 0.35, 0.8, 0.9, 0.2])
    m = binary_metrics(y, p, 0.3)
    for draw, name in ((plot_roc, "roc.png"), (plot_pr, "pr.png")):
        path = draw(y, p, tmp_path / name)
        assert Image.open(path).format == "PNG"
    path = plot_confusion(m, tmp_path / "cm.png")
    assert Image.open(path).size[0] > 100


def test_card_states_data_metrics_thresholds_use_and_limits() -> None:
    spec = ServingSpec(
        arch="resnet50",
        threshold=0.3125,
        review_low=0.1625,
        review_high=0.4625,
        dataset_version="0123456789ab",
    )
    m = binary_metrics([0, 1, 1, 0], [0.2, 0.7, 0.4, 0.1], spec.threshold)
    card = model_card(
        spec=spec,
        counts={"train": {"safe": 5, "harmful": 6}},
        test_metrics=m,
        weights="none",
        target_recall=0.9,
        epochs_run=3,
        best_epoch=1,
    )
    for text in (
        "resnet50",
        "0123456789ab",
        "| train | 5 | 6 |",
        "0.3125",
        "[0.1625, 0.4625]",
        "## Intended use",
        "## Limits",
        "index 1 = harmful",
        "best epoch: 2 (counted from 1",
        "`best_epoch` metric counts from 0",
        "train.max_safe_flagged",
        "Measured per domain",
    ):
        assert text in card, text
    # the card described the first recipe's data and threshold rule, which no longer hold
    assert "Open Images V7 subset" not in card
    assert "Not evaluated on drawings" not in card
