"""One operating point per branch of the gated head, folded into the graph."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harmscan.branchpoint import (
    branch_threshold,
    choose_branch_point,
    served_probability,
    with_branches,
)
from harmscan.calibration import choose_operating_point, sigmoid
from harmscan.heads import (
    GatedPriorHead,
    PriorHead,
    recording_branches,
    scale_logits,
    shift_branches,
    shift_log_odds,
)

RULE = {"target_recall": 0.9, "max_safe_flagged": 0.1}


def _head(seed: int = 0) -> GatedPriorHead:
    torch.manual_seed(seed)
    head = GatedPriorHead(PriorHead(torch.nn.Linear(8, 1000), [1, 2, 3])).double()
    with torch.no_grad():
        for p in head.parameters():
            p.normal_(0, 0.5)
    return head


def _p(head: torch.nn.Module, f: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return torch.softmax(head(f), dim=1)[:, 1].numpy()


def _mix(seed: int = 1) -> tuple[torch.Tensor, np.ndarray, list[str]]:
    """40 drawings (both labels) and 20 safe photos, as features."""
    rng = np.random.default_rng(seed)
    f = torch.from_numpy(rng.normal(0, 1, (60, 8)))
    y = np.r_[np.repeat([0, 1], 20), np.zeros(20, dtype=int)]
    f[y == 1, :2] += 3.0
    return f, y, ["illustration"] * 40 + ["photo"] * 20


def _fold(head: GatedPriorHead, f: torch.Tensor, y: np.ndarray, domains: list[str]):  # type: ignore[no-untyped-def]
    p = _p(head, f)
    branches = head.branch_log_odds(f).numpy()
    point = choose_operating_point(
        y, p, domains, photo_share=0.5, band=0.15, method="platt", **RULE
    )
    point = with_branches(point, y, p, branches, domains, photo_share=0.5, **RULE)
    scale_logits(head, 1 / point.temperature)
    shift_log_odds(head, point.bias)
    assert point.branches is not None
    shift_branches(head, point.branches.photo_shift, point.branches.drawing_shift)
    return point, branches, p


@pytest.mark.parametrize(("g_logit", "column", "name"), [(60.0, 1, "photo"), (-60.0, 2, "drawing")])
def test_an_image_routed_to_one_branch_is_flagged_exactly_at_its_branch_threshold(
    g_logit: float, column: int, name: str
) -> None:
    head = _head()
    f, y, domains = _mix()
    point, _, _ = _fold(head, f, y, domains)
    # now route every image fully to one branch and compare with that branch alone
    probe = torch.from_numpy(np.random.default_rng(7).normal(0, 1.5, (400, 8)))
    with torch.no_grad():
        head.gate.weight.zero_()
        head.gate.bias.fill_(g_logit)
    served = _p(head, probe)
    assert point.branches is not None
    shift = getattr(point.branches, f"{name}_shift")
    branch_threshold_ = getattr(point.branches, f"{name}_threshold")
    calibrated = sigmoid(head.branch_log_odds(probe).numpy()[:, column] - shift)
    clear = np.abs(calibrated - branch_threshold_) > 1e-9
    flagged = served >= point.threshold
    np.testing.assert_array_equal(flagged[clear], (calibrated >= branch_threshold_)[clear])
    assert 0 < flagged.mean() < 1  # the check can fail both ways


def test_branch_thresholds_follow_their_rules_on_the_calibration_mix() -> None:
    head = _head(3)
    with torch.no_grad():  # the drawing branch sees the harmful signal, so both rules can hold
        head.drawing.linear.weight.zero_()
        head.drawing.linear.weight[1, :2] = 5.0
        head.drawing.prior_scale.zero_()
    f, y, domains = _mix(4)
    before = head.branch_log_odds(f).numpy()
    point, _, _ = _fold(head, f, y, domains)
    assert point.branches is not None
    b = point.branches
    stored = np.log(point.threshold / (1 - point.threshold))
    # calibrated branch log-odds, and each branch's threshold on that scale
    photo = before[40:, 1] / point.temperature + point.bias
    drawing = before[:40, 2] / point.temperature + point.bias
    t_photo, t_drawing = stored - b.photo_shift, stored - b.drawing_shift
    tie = 1e-9  # a threshold sits just above a safe score or on a harmful one
    assert 0 < np.mean(photo >= t_photo + tie) <= 0.1  # the cap on the safe photos binds
    harmful = y[:40] == 1
    assert np.mean(drawing[harmful] >= t_drawing - tie) >= 0.9
    assert np.mean(drawing[~harmful] >= t_drawing + tie) <= 0.1
    # the thresholds reported are those log-odds as probabilities
    pairs = ((b.photo_threshold, b.photo_shift), (b.drawing_threshold, b.drawing_shift))
    for threshold, shift in pairs:
        assert sigmoid(stored - shift) == pytest.approx(threshold)


def test_served_probability_is_what_the_folded_head_outputs() -> None:
    head = _head(5)
    f, y, domains = _mix(6)
    point, branches, p = _fold(head, f, y, domains)
    np.testing.assert_allclose(
        served_probability(p, point, branches[:, 0]), _p(head, f), rtol=1e-6, atol=1e-9
    )
    with pytest.raises(ValueError, match="gate"):
        served_probability(p, point)


def test_branch_threshold_with_safe_images_only_is_the_cap() -> None:
    p = np.linspace(0.01, 0.99, 20)
    t = branch_threshold(np.zeros(20, dtype=int), p, **RULE)
    assert np.mean(p >= t) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="max_safe_flagged"):
        branch_threshold(np.zeros(3, dtype=int), p[:3], target_recall=0.9, max_safe_flagged=None)


def test_a_mix_without_photos_names_the_fix() -> None:
    point = choose_operating_point(
        [0, 1, 0, 1], [0.2, 0.8, 0.3, 0.6], ["emoji"] * 4, photo_share=0.5, band=0.1, **RULE
    )
    with pytest.raises(ValueError, match=r"calibration_photos.*mix, per-branch"):
        choose_branch_point([0, 1, 0, 1], np.zeros((4, 3)), ["emoji"] * 4, point, **RULE)
    with pytest.raises(ValueError, match=r"\(n, 3\)"):
        choose_branch_point([0, 1], np.zeros((2, 2)), ["photo", "emoji"], point, **RULE)


def test_recording_branches_sees_every_image_once_and_only_for_a_gated_head() -> None:
    head = _head(8)
    model = torch.nn.Sequential(torch.nn.Identity(), head)
    f = torch.randn(5, 8, dtype=torch.float64)
    with recording_branches(model) as seen:
        model(f[:2])
        model(f[2:])
    assert seen is not None
    np.testing.assert_allclose(torch.cat(seen).numpy(), head.branch_log_odds(f).numpy())
    plain = torch.nn.Sequential(PriorHead(torch.nn.Linear(8, 1000), [1]))
    with recording_branches(plain) as none:
        plain(f.float())
    assert none is None
    with pytest.raises(TypeError, match="gated head"):
        shift_branches(plain[0], 1.0, 1.0)


def test_photo_threshold_on_the_mix_is_the_point_of_the_photo_branch_alone() -> None:
    """``photo_threshold_on=mix``: an image routed to the photo branch is flagged exactly when
    a one-score model equal to the photo branch, given the usual operating point on the same
    mix, flags it (harmful drawings' recall, then the cap on every safe image, weighted)."""
    head = _head(9)
    f, y, domains = _mix(10)
    p = _p(head, f)
    branches = head.branch_log_odds(f).numpy()
    point = choose_operating_point(y, p, domains, photo_share=0.5, band=0.1, **RULE)
    split = choose_branch_point(
        y, branches, domains, point, photo_threshold_on="mix", photo_share=0.5, **RULE
    )
    alone = choose_operating_point(
        y, sigmoid(branches[:, 1]), domains, photo_share=0.5, band=0.1, method="none", **RULE
    )
    photo = branches[:, 1] / point.temperature + point.bias  # calibrated, as the split's scale
    stored = np.log(point.threshold / (1 - point.threshold))
    np.testing.assert_array_equal(
        photo >= stored - split.photo_shift, sigmoid(branches[:, 1]) >= alone.threshold
    )
    on_photos = choose_branch_point(y, branches, domains, point, **RULE)
    assert on_photos.photo_threshold != pytest.approx(split.photo_threshold)  # it matters
    assert on_photos.drawing_threshold == pytest.approx(split.drawing_threshold)
    with pytest.raises(ValueError, match="valid: photos, mix"):
        choose_branch_point(y, branches, domains, point, photo_threshold_on="all", **RULE)
