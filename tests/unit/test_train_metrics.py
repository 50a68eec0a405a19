"""Metrics, threshold selection, calibration and the promotion gate (pure)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harmscan.metrics import (
    binary_metrics,
    choose_thresholds,
    decide_promotion,
    expected_calibration_error,
    threshold_for_recall,
)


def test_binary_metrics_on_a_known_confusion() -> None:
    y = [1, 1, 1, 0, 0, 0, 0, 1]
    p = [0.9, 0.8, 0.3, 0.2, 0.6, 0.1, 0.4, 0.7]
    m = binary_metrics(y, p, threshold=0.5)
    assert (m["tp"], m["fn"], m["fp"], m["tn"]) == (3, 1, 1, 3)
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["precision"] == pytest.approx(3 / 4)
    assert m["recall"] == pytest.approx(3 / 4)
    assert m["f1"] == pytest.approx(3 / 4)
    assert 0.5 < m["auc"] <= 1.0


def test_auc_is_nan_with_one_class() -> None:
    assert math.isnan(binary_metrics([1, 1], [0.2, 0.9])["auc"])


@pytest.mark.parametrize(
    ("y", "p", "message"),
    [
        ([1, 0], [0.5], "has 2 values"),
        ([], [], "no predictions"),
        ([2, 0], [0.1, 0.2], "must hold 0"),
    ],
)
def test_bad_inputs_are_named(y: list[int], p: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        binary_metrics(y, p)


@pytest.mark.parametrize("target", [0.5, 0.75, 0.9, 1.0])
def test_threshold_reaches_target_recall(target: float) -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    p = np.clip(y * 0.3 + rng.uniform(0, 0.7, 200), 0, 1)
    threshold = threshold_for_recall(y, p, target)
    recall = binary_metrics(y, p, threshold)["recall"]
    assert recall >= target
    # the highest such threshold: a hair above it, recall drops below the target
    assert binary_metrics(y, p, np.nextafter(threshold, 2))["recall"] < target


def test_thresholds_band_is_clipped_to_unit_interval() -> None:
    t = choose_thresholds([1, 1, 0], [0.95, 0.99, 0.1], target_recall=1.0, band=0.15)
    assert t.threshold == pytest.approx(0.95)
    assert (t.review_low, t.review_high) == (pytest.approx(0.80), 1.0)


def test_threshold_needs_harmful_examples() -> None:
    with pytest.raises(ValueError, match="no harmful"):
        threshold_for_recall([0, 0], [0.1, 0.2], 0.9)


def test_ece_zero_when_calibrated_and_large_when_not() -> None:
    y = np.array([1] * 8 + [0] * 2)
    assert expected_calibration_error(y, np.full(10, 0.8)) == pytest.approx(0.0)
    assert expected_calibration_error(y, np.full(10, 0.1)) == pytest.approx(0.7)


FLOORS = {"accuracy": 0.6, "auc": 0.6}


@pytest.mark.parametrize(
    ("candidate", "champion", "promote", "reason"),
    [
        ({"auc": 0.9, "accuracy": 0.8}, None, True, "no current champion"),
        ({"auc": 0.9, "accuracy": 0.8}, {"auc": 0.85, "accuracy": 0.9}, True, "beats"),
        ({"auc": 0.8, "accuracy": 0.8}, {"auc": 0.85, "accuracy": 0.7}, False, "does not beat"),
        ({"auc": 0.85, "accuracy": 0.8}, {"auc": 0.85, "accuracy": 0.7}, False, "does not beat"),
        ({"auc": 0.99, "accuracy": 0.5}, None, False, "below floors: accuracy"),
        ({"auc": float("nan"), "accuracy": 0.9}, None, False, "below floors: auc"),
    ],
)
def test_promotion_gate(
    candidate: dict[str, float], champion: dict[str, float] | None, promote: bool, reason: str
) -> None:
    decision = decide_promotion(candidate, champion, metric="auc", floors=FLOORS)
    assert decision.promote is promote
    assert reason in decision.reason


@pytest.mark.parametrize(
    ("ece", "promote"), [(0.03, True), (0.1, True), (0.4, False), (float("nan"), False)]
)
def test_an_ece_floor_is_a_ceiling(ece: float, promote: bool) -> None:
    candidate = {"auc": 0.95, "accuracy": 0.9, "ece": ece}
    decision = decide_promotion(candidate, None, metric="auc", floors={"ece": 0.1, "auc": 0.6})
    assert decision.promote is promote
    if not promote:
        assert decision.reason == f"below floors: ece={ece:.4f} > 0.1"


def test_promotion_min_improvement() -> None:
    decision = decide_promotion(
        {"auc": 0.86, "accuracy": 0.8}, {"auc": 0.85}, metric="auc", floors={}, min_improvement=0.02
    )
    assert not decision.promote


def test_promotion_rejects_unknown_metric() -> None:
    with pytest.raises(ValueError, match="valid"):
        decide_promotion({"auc": 1.0}, None, metric="auroc", floors={})
