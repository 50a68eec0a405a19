"""Cross-fitting: out-of-fold scores of the training drawings for the drawing branch's operating
point, and Platt scaling again after the per-branch shifts are folded."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from conf.settings import TrainSettings
from harmscan.branchpoint import (
    branch_threshold,
    choose_branch_point,
    recalibrate_folded,
    served_probability,
    with_branches,
)
from harmscan.calibration import _nll, choose_operating_point, log_odds, mix_weights
from harmscan.crossfit import fold_ids, held_out, out_of_fold_branches
from harmscan.recipes import fit_gated_probe
from tests.fixtures.branch_mix import calibration_mix

MIXES = (1.0, 0.25)


def _training(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list]:
    """Drawings from 4 "vendors": the signal is shared, each vendor adds its own style offset
    on many dimensions, so a probe fitted in-sample memorises styles (64 features, 160 images)."""
    rng = np.random.default_rng(seed)
    n, d = 160, 64
    vendor = np.repeat(np.arange(4), n // 4)
    y = rng.permutation(np.tile([0, 0, 0, 1], n // 4))
    style = rng.normal(0, 1.5, (4, d))
    x = rng.normal(0, 1, (n, d)) + style[vendor]
    x[:, 0] += 1.2 * y  # the weak shared signal
    prior = rng.normal(-3, 1, n) + 0.5 * y
    gate = np.full(n, 0.02)  # drawings: the gate sends them to the drawing branch
    return x, y, prior, gate, [f"pool:vendor{v}" for v in vendor]


def _in_sample(x: np.ndarray, y: np.ndarray, prior: np.ndarray, gate: np.ndarray) -> np.ndarray:
    _, drawing = fit_gated_probe(x, y, c=10.0, prior=prior, photo_probability=gate, mixes=MIXES)
    return drawing.prior * prior + x @ drawing.weight + drawing.bias


def _out_of_fold(how: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, y, prior, gate, groups = _training()
    folds = fold_ids(y, groups, how=how, folds=4, seed=0)
    oof = out_of_fold_branches(
        x, y, prior=prior, photo_probability=gate, folds=folds, c=10.0, mixes=MIXES
    )
    return y, _in_sample(x, y, prior, gate), oof[:, 2]


@pytest.mark.parametrize("how", ["sources", "folds"])
def test_the_out_of_fold_recall_threshold_is_below_the_in_sample_one(how: str) -> None:
    y, in_sample, oof = _out_of_fold(how)
    rule = {"target_recall": 0.9, "max_safe_flagged": None}
    inside = branch_threshold(y, in_sample, **rule)
    outside = branch_threshold(y, oof, **rule)
    # in-sample the probe scores its own harmful drawings high; held out they score lower, so
    # keeping 90 % recall needs a lower threshold
    assert outside < inside - 1.0
    assert np.mean(oof[y == 1]) < np.mean(in_sample[y == 1])


def test_the_out_of_fold_false_alarm_cap_is_above_the_in_sample_one() -> None:
    y, in_sample, oof = _out_of_fold("sources")
    rule = {"target_recall": 0.9, "max_safe_flagged": 0.1}
    safe = y == 0
    # held-out safe drawings score higher too: the cap binds at a higher threshold
    inside = branch_threshold(y[safe], in_sample[safe], **rule)
    outside = branch_threshold(y[safe], oof[safe], **rule)
    assert outside > inside


def test_sources_hold_each_vendor_out_and_spread_the_dataset_over_stratified_folds() -> None:
    y = np.r_[np.tile([0, 1], 10), [0, 0, 1], [0, 1]]
    groups = [None] * 20 + ["pool:a"] * 3 + ["pool:b"] * 2
    folds = fold_ids(y, groups, how="sources", folds=5, seed=3)
    assert set(folds[:20]) == set(range(5))
    for k in range(5):  # every dataset fold holds both classes
        assert set(y[:20][folds[:20] == k]) == {0, 1}
    assert len(set(folds[20:23])) == 1
    assert len(set(folds[23:])) == 1
    assert folds[20] != folds[23]
    assert folds[20] >= 5
    everything = fold_ids(y, groups, how="folds", folds=5, seed=3)
    assert set(everything) == set(range(5))  # sources ignored


def test_a_fold_that_cannot_be_fitted_is_left_out() -> None:
    x, y, prior, gate, _ = _training()
    folds = np.where(y == 1, 1, 0)  # holding out fold 1 leaves no harmful image to fit on
    folds[np.flatnonzero(y == 0)[:8]] = 2
    oof = out_of_fold_branches(
        x, y, prior=prior, photo_probability=gate, folds=folds, c=1.0, mixes=MIXES
    )
    kept = held_out(y, oof, ["emoji"] * len(y))
    assert np.isnan(oof[folds == 1, 1:]).all()
    assert not np.isnan(oof[folds != 1]).any()
    assert kept.y.size == int((folds != 1).sum())


@pytest.mark.parametrize(
    ("field", "value", "valid"),
    [
        ("cross_fit", "loso", ("none", "sources", "folds")),
        ("branch_recalibration", "isotonic", ("none", "platt")),
    ],
)
def test_an_invalid_setting_names_the_valid_choices(field: str, value: str, valid: tuple) -> None:
    with pytest.raises(ValidationError) as error:
        TrainSettings(**{field: value})
    assert all(f"'{v}'" in str(error.value) for v in valid)


def test_the_core_functions_name_the_valid_choices_too() -> None:
    with pytest.raises(ValueError, match="valid: none, sources, folds"):
        fold_ids([0, 1], [None, None], how="loso", folds=2, seed=0)
    y, branches, domains, p = calibration_mix()
    point = choose_operating_point(
        y, p, domains, photo_share=0.5, target_recall=0.9, band=0.15, method="platt"
    )
    with pytest.raises(ValueError, match="valid: none, platt"):
        with_branches(point, y, p, branches, domains, photo_share=0.5, target_recall=0.9,
                      max_safe_flagged=0.1, recalibration="isotonic")  # fmt: skip


def test_held_out_drawings_join_the_drawing_branch_and_only_it() -> None:
    y, branches, domains, p = calibration_mix()
    point = choose_operating_point(
        y, p, domains, photo_share=0.5, target_recall=0.9, band=0.15, method="platt"
    )
    rule = {"target_recall": 0.9, "max_safe_flagged": None, "photo_threshold_on": "mix"}
    alone = choose_branch_point(y, branches, domains, point, **rule)
    # held-out harmful drawings that score low, and photos that must be ignored
    extra_y = np.r_[np.ones(30, dtype=int), np.zeros(5, dtype=int)]
    extra = np.column_stack([np.zeros(35), np.full(35, 9.0), np.r_[np.full(30, -4.0), [-9] * 5]])
    held = held_out(extra_y, extra, ["emoji"] * 30 + ["photo"] * 5)
    with_held = choose_branch_point(y, branches, domains, point, held_out=held, **rule)
    assert with_held.photo_threshold == alone.photo_threshold
    assert with_held.drawing_threshold < alone.drawing_threshold


def test_platt_after_folding_keeps_every_decision_and_lowers_the_log_loss() -> None:
    y, branches, domains, p = calibration_mix()
    point = choose_operating_point(
        y, p, domains, photo_share=0.5, target_recall=0.9, band=0.15, method="platt"
    )
    rule = {"target_recall": 0.9, "max_safe_flagged": 0.1}
    folded = with_branches(point, y, p, branches, domains, photo_share=0.5, **rule)
    weights = mix_weights(domains, 0.5)
    gate = branches[:, 0]
    again = recalibrate_folded(folded, y, p, gate, weights, band=0.15)
    before = served_probability(p, folded, gate)
    after = served_probability(p, again, gate)
    # a monotone map of the margin to the threshold: every image, gated or not, keeps its side
    np.testing.assert_array_equal(before >= folded.threshold, after >= again.threshold)
    assert again.threshold != pytest.approx(folded.threshold)
    y64 = y.astype(np.float64)
    assert _nll(log_odds(after), y64, weights) <= _nll(log_odds(before), y64, weights) + 1e-9
    assert again.review_high - again.threshold == pytest.approx(0.15)
    # the same through with_branches, whose ece_after is then of the refitted model
    via = with_branches(point, y, p, branches, domains, photo_share=0.5,
                        recalibration="platt", **rule)  # fmt: skip
    assert via.threshold == pytest.approx(again.threshold)


def test_the_recipe_returns_out_of_fold_scores_that_reach_the_drawing_threshold() -> None:
    """Through the real code: `train_recipe` (gated head, ``cross_fit: sources``) on pooled
    features, then `tasks.recipes.calibrate_on_mix` with and without the held-out scores."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from bench.gate_study import FeatureModel
    from harmscan.heads import GatedPriorHead, PriorHead
    from harmscan.transfer import RecipeData, train_recipe
    from tasks.recipes import Scored, branch_scores, calibrate_on_mix, out_of_fold

    x, y, _, _, groups = _training(seed=2)
    rng = np.random.default_rng(4)
    photos = rng.normal(0, 1, (40, x.shape[1])) + 3.0  # photos sit apart from the drawings

    def loader(features: np.ndarray, labels: np.ndarray) -> DataLoader:
        data = TensorDataset(torch.from_numpy(features).float(), torch.from_numpy(labels).long())
        return DataLoader(data, batch_size=32)

    def scored(model: torch.nn.Module, features: np.ndarray, labels: np.ndarray, domain: str):  # type: ignore[no-untyped-def]
        with branch_scores(model) as branches, torch.no_grad():
            logits = model(torch.from_numpy(features).float())
        p = torch.softmax(logits, dim=1)[:, 1].double().numpy()
        return Scored(labels, p, [domain] * len(labels), branches())

    points = {}
    for how in ("none", "sources"):
        torch.manual_seed(0)
        model = FeatureModel(GatedPriorHead(PriorHead(torch.nn.Linear(64, 1000), [1, 2, 3])))
        cfg = TrainSettings(recipe="probe", head="prior-gated", gate_operating_point="per-branch",
                            gate_photo_mix=1.0, cross_fit=how, probe_c=10.0)  # fmt: skip
        data = RecipeData(train=loader(x, y), probe=loader(x, y), val=loader(x[:40], y[:40]),
                          groups=[None] * 80 + groups[80:])  # fmt: skip
        data.photos = loader(photos, np.zeros(40, dtype=np.int64))
        outcome = train_recipe(model, "mobilenet_v2", data, cfg, device=torch.device("cpu"))
        held = out_of_fold(outcome, ["emoji"] * len(y))
        assert (held is None) == (how == "none")
        if held is not None:
            assert held.branches.shape == (len(y), 3)  # every fold could be fitted
        val = scored(model, x[:40], y[:40], "illustration")
        cal = scored(model, photos, np.zeros(40, dtype=np.int64), "photo")
        points[how] = calibrate_on_mix(model, "mobilenet_v2", val, cal, cfg, held)
    assert points["none"].branches is not None
    assert points["sources"].branches is not None
    # the validation images are in-sample here: held out, the drawing threshold moves
    assert points["sources"].branches.drawing_threshold != pytest.approx(
        points["none"].branches.drawing_threshold
    )
    assert points["sources"].branches.photo_threshold == pytest.approx(
        points["none"].branches.photo_threshold
    )
