"""The per-domain table a training run leaves in the Prefect UI, from its run's metrics."""

from __future__ import annotations

from tasks.artifacts import domain_rows


def test_rows_per_set_and_domain_with_images_and_empty_cells_for_no_number():
    metrics = {
        "gate_all_count": 367.0, "gate_all_auc": 0.95371, "gate_all_recall": 0.8333,
        "gate_all_safe_flagged": 0.0523,
        "gate_photo_count": 92.0, "gate_photo_auc": 0.9798, "gate_photo_recall": 1.0,
        "gate_photo_safe_flagged": 0.0706,
        "gate_illustration_count": 0.0, "gate_illustration_auc": float("nan"),  # no image: no row
        "iconcheck_emoji_count": 5.0, "iconcheck_emoji_auc": float("nan"),  # one label only
        "val_at_threshold_tp": 3.0, "calibration_count": 4.0,  # not a set's domain: no row
    }  # fmt: skip
    rows = domain_rows({"mobilenet_v2": metrics})
    assert [(r["set"], r["domain"]) for r in rows] == [
        ("gate", "all"), ("gate", "photo"), ("iconcheck", "emoji")
    ]  # fmt: skip
    assert rows[0] == {"model": "mobilenet_v2", "set": "gate", "domain": "all", "count": 367,
                       "auc": 0.9537, "recall": 0.8333, "safe_flagged": 0.0523}  # fmt: skip
    assert rows[2]["auc"] is None
    assert rows[2]["recall"] is None  # not logged at all
    assert domain_rows({"resnet50": {"test_auc": 0.5}}) == []
