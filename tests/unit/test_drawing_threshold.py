"""The drawing branch's threshold by a false-alarm rate (train.drawing_threshold: false-alarm)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from conf.settings import TrainSettings
from harmscan.branchpoint import (
    DRAWING_RULES,
    branch_threshold,
    choose_branch_point,
    false_alarm_threshold,
    with_branches,
)
from harmscan.calibration import choose_operating_point, log_odds
from harmscan.crossfit import held_out
from harmscan.heads import GatedPriorHead, PriorHead
from harmscan.modelcalibration import calibrate_model
from tests.fixtures.branch_mix import calibration_mix


def test_the_threshold_is_the_quantile_of_the_safe_scores_alone() -> None:
    safe = np.arange(100.0)
    y = np.r_[np.zeros(100, dtype=int), np.ones(5, dtype=int)]
    for harmful in (np.full(5, -50.0), np.full(5, 500.0)):  # harmful scores do not move it
        z = np.r_[safe, harmful]
        t = false_alarm_threshold(y, z, rate=0.10)
        assert int(np.sum(safe >= t)) == 10  # 90..99 flagged, 89 not
        assert 89 < t <= 90
    assert int(np.sum(safe >= false_alarm_threshold(y, z, rate=0.05))) == 5
    assert false_alarm_threshold(y, z, rate=0.0) > safe.max()  # none flagged
    assert false_alarm_threshold(y, z, rate=1.0) == -np.inf  # every safe image may be


def test_weights_count_as_images_and_the_cap_is_the_same_quantile() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(0, 1, 300)
    y = (rng.uniform(size=300) < 0.2).astype(int)
    t = false_alarm_threshold(y, z, rate=0.1)
    # branch_threshold's false-alarm cap is this quantile (alone when there is no harmful image)
    safe = y == 0
    assert branch_threshold(y[safe], z[safe], target_recall=0.9, max_safe_flagged=0.1) == t
    doubled = false_alarm_threshold(np.r_[y, y], np.r_[z, z], rate=0.1)
    assert false_alarm_threshold(y, z, rate=0.1, weights=np.full(300, 2.0)) == t == doubled


def test_a_rate_outside_the_unit_interval_or_no_safe_images_is_refused() -> None:
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        false_alarm_threshold([0, 1], [0.0, 1.0], rate=1.5)
    with pytest.raises(ValueError, match="no safe images"):
        false_alarm_threshold([1, 1], [0.0, 1.0], rate=0.1)


def _point(y: np.ndarray, p: np.ndarray, domains: list[str]):  # type: ignore[no-untyped-def]
    return choose_operating_point(
        y, p, domains, photo_share=0.5, target_recall=0.9, band=0.15, method="platt"
    )


def test_the_drawing_threshold_flags_the_rate_of_safe_drawings_held_out_ones_included() -> None:
    y, branches, domains, p = calibration_mix()
    point = _point(y, p, domains)
    rule = {"target_recall": 0.9, "max_safe_flagged": 0.1, "photo_threshold_on": "mix"}
    rng = np.random.default_rng(1)
    extra_y = np.r_[np.zeros(200, dtype=int), np.ones(30, dtype=int)]
    extra = np.column_stack([np.zeros(230), np.full(230, 9.0), rng.normal(0, 1.5, 230)])
    held = held_out(extra_y, extra, ["emoji"] * 230)
    recall = choose_branch_point(y, branches, domains, point, held_out=held, **rule)
    for rate in (0.05, 0.1):
        split = choose_branch_point(
            y, branches, domains, point, held_out=held, **rule,
            drawing_rule="false-alarm", drawing_false_alarm=rate,
        )  # fmt: skip
        assert split.photo_threshold == recall.photo_threshold  # the photo branch's is today's
        safe = np.r_[branches[:60][y[:60] == 0, 2], extra[:200, 2]]
        safe = safe / point.temperature + point.bias
        flagged = np.mean(safe >= log_odds(split.drawing_threshold) + 1e-12)
        assert flagged <= rate
        assert flagged > rate - 1 / safe.size - 1e-9  # the lowest such threshold


def test_with_branches_and_calibrate_model_pass_the_rule_through() -> None:
    y, branches, domains, p = calibration_mix()
    point = _point(y, p, domains)
    direct = choose_branch_point(y, branches, domains, point, target_recall=0.9,
                                 max_safe_flagged=0.1, drawing_rule="false-alarm",
                                 drawing_false_alarm=0.05)  # fmt: skip
    folded = with_branches(point, y, p, branches, domains, photo_share=0.5, target_recall=0.9,
                           max_safe_flagged=0.1, drawing_rule="false-alarm",
                           drawing_false_alarm=0.05)  # fmt: skip
    assert folded.branches is not None
    assert folded.branches.drawing_threshold == direct.drawing_threshold
    torch.manual_seed(0)
    head = GatedPriorHead(PriorHead(torch.nn.Linear(8, 1000), [1, 2, 3])).double()
    settings = TrainSettings(head="prior-gated", gate_operating_point="per-branch",
                             calibration="platt", drawing_threshold="false-alarm",
                             drawing_false_alarm=0.05)  # fmt: skip
    model = torch.nn.Module()
    model.fc = head  # the final layer `calibrate_model` folds into, as in a ResNet50
    chosen = calibrate_model(model, "resnet50", y, p, domains, settings, branches)
    expected = choose_branch_point(
        y, branches, domains, chosen, target_recall=settings.target_recall,
        max_safe_flagged=settings.max_safe_flagged, drawing_rule="false-alarm",
        drawing_false_alarm=0.05, photo_threshold_on=settings.gate_photo_threshold_on,
        photo_share=settings.calibration_photo_share,
    )  # fmt: skip
    assert chosen.branches is not None
    assert chosen.branches.drawing_threshold == pytest.approx(expected.drawing_threshold)


def test_an_unknown_rule_names_the_valid_choices() -> None:
    y, branches, domains, p = calibration_mix()
    with pytest.raises(ValueError, match="valid: recall, false-alarm"):
        choose_branch_point(y, branches, domains, _point(y, p, domains), target_recall=0.9,
                            max_safe_flagged=0.1, drawing_rule="neyman")  # fmt: skip
    with pytest.raises(ValidationError) as error:
        TrainSettings(drawing_threshold="neyman")
    assert all(f"'{v}'" in str(error.value) for v in DRAWING_RULES)
    with pytest.raises(ValidationError):
        TrainSettings(drawing_false_alarm=1.0)
