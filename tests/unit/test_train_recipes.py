"""Transfer recipes: the prior head, the probe, WiSE-FT interpolation, calibration, plumbing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset
from torchvision import models as tv

from conf.settings import TrainSettings
from harmscan.calibration import (
    apply_temperature,
    choose_operating_point,
    fit_platt,
    fit_temperature,
    mix_weights,
    threshold_for_recall_weighted,
    threshold_for_safe_flagged,
    weighted_ece,
)
from harmscan.data import ManifestDataset
from harmscan.heads import (
    PriorHead,
    final_layer,
    imagenet_rows,
    scale_logits,
    set_log_odds,
    shift_log_odds,
)
from harmscan.metrics import DOMAIN_METRICS, DOMAINS, domain_metrics, expected_calibration_error
from harmscan.modelcalibration import calibrate_model
from harmscan.models import WeightsError, WeightsSource, build_model, resolve_weights
from harmscan.presets import EvalPreset, TrainPreset
from harmscan.recipes import fit_probe, interpolate, recipe_name, snapshot
from harmscan.trainjob import build_recipe_model
from harmscan.transfer import RecipeData, train_recipe
from tests.fixtures.train_data import make_synthetic_dataset

SHARED = "weights/mobilenet_v2_imagenet.pth"
WEAPONS = ["assault rifle", "revolver", "rifle", "cannon", "cleaver", "hatchet"]


@pytest.fixture(scope="module")
def source() -> WeightsSource:
    return resolve_weights("mobilenet_v2", SHARED)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic_dataset(
        tmp_path_factory.mktemp("recipes"), {"train": 6, "val": 4, "test": 2}, size=40
    )


def test_prior_head_reproduces_the_imagenet_weapon_mass(source: WeightsSource) -> None:
    rows = imagenet_rows(WEAPONS)
    model = build_model("mobilenet_v2", source, prior_rows=rows).eval()
    untrained = tv.mobilenet_v2()
    untrained.load_state_dict(torch.load(SHARED, weights_only=True))
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        got = torch.softmax(model(x), dim=1)[:, 1]
        mass = torch.softmax(untrained.eval()(x), dim=1)[:, rows].sum(dim=1)
    assert got.shape == (3,)
    torch.testing.assert_close(got, mass, rtol=1e-4, atol=1e-7)


def test_unknown_imagenet_names_fail_with_suggestions() -> None:
    with pytest.raises(ValueError, match=r"'revolvr' \(did you mean 'revolver'\?\)"):
        imagenet_rows(["rifle", "revolvr"])
    with pytest.raises(ValueError, match="more than once"):
        imagenet_rows(["rifle", "rifle"])
    assert imagenet_rows(["cannon", "assault rifle"]) == [413, 471]


def test_prior_head_needs_pretrained_weights() -> None:
    with pytest.raises(WeightsError, match="prior head needs pretrained weights"):
        build_model("mobilenet_v2", WeightsSource("none"), prior_rows=[413])


def test_default_prior_classes_are_valid_names() -> None:
    assert len(imagenet_rows(TrainSettings().prior_classes)) == len(TrainSettings().prior_classes)


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_interpolation_endpoints_are_exact(alpha: float) -> None:
    a = {"w": torch.randn(4, 3), "n": torch.tensor(3)}
    b = {"w": torch.randn(4, 3), "n": torch.tensor(9)}
    out = interpolate(a, b, alpha)
    expected = a if alpha == 0 else b
    assert torch.equal(out["w"], expected["w"])
    assert torch.equal(out["n"], expected["n"])


def test_interpolation_midpoint_and_errors() -> None:
    a, b = {"w": torch.zeros(2)}, {"w": torch.ones(2) * 4}
    assert torch.equal(interpolate(a, b, 0.25)["w"], torch.ones(2))
    with pytest.raises(ValueError, match="alpha must be in"):
        interpolate(a, b, 1.5)
    with pytest.raises(ValueError, match="differ in keys"):
        interpolate(a, {"v": torch.ones(2)}, 0.5)


def test_temperature_scaling_lowers_ece_on_an_overconfident_model() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    true_logit = (2 * y - 1) * 1.0 + rng.normal(0, 1.0, y.size)
    p = 1 / (1 + np.exp(-4.0 * true_logit))  # the Bayes log-odds are 2 * true_logit
    t = fit_temperature(y, p)
    assert 1.6 < t < 2.4  # twice too confident
    before, after = (
        expected_calibration_error(y, p),
        expected_calibration_error(y, apply_temperature(p, t)),
    )
    assert after < before / 2


def test_platt_fixes_a_base_rate_shift_that_temperature_cannot() -> None:
    # Well-scaled log-odds, but every score 2 nats too high: the harmful base rate moved.
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 4000)
    x = (2 * y - 1) * 1.5 + rng.normal(0, 1.5, y.size)  # the Bayes log-odds are 4/3 x
    p = 1 / (1 + np.exp(-(x * 4 / 3 + 2.0)))
    t_only = fit_temperature(y, p)
    t, b = fit_platt(y, p)
    assert b == pytest.approx(-2.0, abs=0.25)
    assert 0.85 < t < 1.15
    temperature_ece = expected_calibration_error(y, apply_temperature(p, t_only))
    platt_ece = expected_calibration_error(y, apply_temperature(p, t, b))
    assert platt_ece < temperature_ece / 2
    point = choose_operating_point(
        y, p, ["illustration"] * y.size, photo_share=0.5, target_recall=0.9, band=0.1,
        method="platt",
    )  # fmt: skip
    assert point.bias == pytest.approx(b)
    assert point.ece_after < point.ece_before / 2
    with pytest.raises(ValueError, match="valid: temperature, platt, none"):
        choose_operating_point(
            y, p, ["photo"] * y.size, photo_share=0.5, target_recall=0.9, band=0.1, method="iso"
        )


def test_platt_bias_folds_into_the_head_exactly(source: WeightsSource) -> None:
    for layer in (PriorHead(torch.nn.Linear(8, 1000), [1, 2]), torch.nn.Linear(8, 2)):
        with torch.no_grad():
            layer.weight.normal_() if isinstance(layer, torch.nn.Linear) else None
        f = torch.randn(5, 8)
        before = layer(f).detach()
        scale_logits(layer, 0.5)
        shift_log_odds(layer, -1.25)
        after = layer(f).detach()
        odds = lambda z: z[:, 1] - z[:, 0]  # noqa: E731
        torch.testing.assert_close(odds(after), odds(before) * 0.5 - 1.25)


def test_mix_weights_give_photos_their_share() -> None:
    w = mix_weights(["photo", "emoji", "emoji", "illustration"], 0.5)
    assert w[0] == pytest.approx(w[1:].sum())
    assert np.all(mix_weights(["emoji"] * 3, 0.9) == 1)
    with pytest.raises(ValueError, match="photo share"):
        mix_weights(["photo"], 1.5)


def test_weighted_threshold_and_ece_reduce_to_unweighted() -> None:
    y = np.array([1, 1, 1, 1, 0, 0])
    p = np.array([0.9, 0.8, 0.7, 0.2, 0.3, 0.1])
    assert threshold_for_recall_weighted(y, p, np.ones(6), 0.75) == 0.7
    # the photo (weight 3) alone is recall 0.5 of the weighted positives
    assert threshold_for_recall_weighted(y, p, np.array([3, 1, 1, 1, 1, 1]), 0.5) == 0.9
    assert weighted_ece(y, p, np.ones(6)) == pytest.approx(expected_calibration_error(y, p))


def test_operating_point_on_the_calibrated_scale() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400)
    p = 1 / (1 + np.exp(-3 * ((2 * y - 1) + rng.normal(0, 1, 400))))
    domains = ["photo" if i % 4 == 0 else "illustration" for i in range(400)]
    point = choose_operating_point(y, p, domains, photo_share=0.5, target_recall=0.9, band=0.1)
    assert point.ece_after < point.ece_before
    calibrated = apply_temperature(p, point.temperature)
    assert np.mean(calibrated[y == 1] >= point.threshold) >= 0.85
    assert point.review_low == pytest.approx(max(0, point.threshold - 0.1))


def test_domain_metrics_have_the_same_names_every_run() -> None:
    out = domain_metrics([1, 0, 1, 0], [0.9, 0.2, 0.4, 0.6], ["photo"] * 4, 0.5)
    names = {f"{d}_{m}" for d in ("all", *DOMAINS) for m in DOMAIN_METRICS}
    assert set(out) == names
    assert out["photo_auc"] == 0.75
    assert out["photo_safe_flagged"] == 0.5
    assert np.isnan(out["emoji_auc"])
    assert out["emoji_count"] == 0
    with pytest.raises(ValueError, match="unknown domains"):
        domain_metrics([1], [0.5], ["clipart"], 0.5)


def test_probe_fits_separable_features_and_folds_into_the_head(source: WeightsSource) -> None:
    rng = np.random.default_rng(2)
    y = np.repeat([0, 1], 30)
    x = rng.normal(0, 1, (60, 1280)).astype(np.float32)
    x[:, 0] += 3 * y
    fit = fit_probe(x, y, c=1.0)
    score = x @ fit.weight + fit.bias
    assert score[y == 1].min() > score[y == 0].max() - 1
    model = build_model("mobilenet_v2", source)
    layer = final_layer(model, "mobilenet_v2")
    set_log_odds(layer, torch.from_numpy(fit.weight), fit.bias)
    logits = layer(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(logits[:, 1] - logits[:, 0], score, rtol=1e-4, atol=1e-4)


def test_prior_mix_keeps_both_terms_and_scaling_is_exact(source: WeightsSource) -> None:
    rng = np.random.default_rng(3)
    y = np.repeat([0, 1], 20)
    x = rng.normal(0, 1, (40, 8))
    x[:, 1] += y
    prior = rng.normal(0, 1, 40) + 2 * y
    fit = fit_probe(x, y, c=1.0, prior=prior, prior_mix=0.5)
    assert fit.prior > 0
    assert np.abs(fit.weight).sum() > 0
    head = PriorHead(torch.nn.Linear(8, 1000), [1, 2])
    set_log_odds(head, torch.from_numpy(fit.weight), fit.bias, fit.prior)
    f = torch.randn(5, 8, dtype=torch.float32)
    before = head(f).detach()
    scale_logits(head, 0.5)
    torch.testing.assert_close(head(f).detach(), before * 0.5)


def _data(dataset: Path, size: int) -> RecipeData:
    train = TrainPreset(image_size=size, augment=False)
    return RecipeData(
        train=DataLoader(ManifestDataset(dataset, "train", train), batch_size=4, shuffle=True),
        probe=DataLoader(ManifestDataset(dataset, "train", train.eval_preset), batch_size=6),
        val=DataLoader(ManifestDataset(dataset, "val", EvalPreset(image_size=size)), batch_size=8),
    )


class _Pooled(torch.nn.Module):
    """A stand-in MobileNetV2 whose inputs are already the pooled features."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.classifier = torch.nn.Sequential(torch.nn.Dropout(0.2), torch.nn.Linear(dim, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(x)


def test_probe_c_reaches_the_fit() -> None:
    """``train.probe_c`` is the C of the probe that `train_recipe` fits, not a fixed one."""
    rng = np.random.default_rng(4)
    y = np.repeat([0, 1], 40)
    x = rng.normal(0, 1, (80, 16)).astype(np.float32)
    x[:, 0] += 1.5 * y  # overlapping classes: the L2 strength sets the weights' size
    loader = DataLoader(TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=32)
    norms = {}
    for c in (1e-3, 10.0):
        cfg = TrainSettings(recipe="probe", head="linear", probe_c=c)
        model = _Pooled(16)
        outcome = train_recipe(
            model,
            "mobilenet_v2",
            RecipeData(loader, loader, loader),
            cfg,
            device=torch.device("cpu"),
        )
        expected = fit_probe(x, y, c=c)
        assert outcome.probe is not None
        np.testing.assert_allclose(outcome.probe.weight, expected.weight, rtol=1e-5, atol=1e-8)
        logits = model.eval()(torch.from_numpy(x)).detach().numpy()
        np.testing.assert_allclose(
            logits[:, 1] - logits[:, 0], x @ expected.weight + expected.bias, atol=1e-4
        )
        norms[c] = np.abs(expected.weight).sum()
    assert norms[1e-3] < 0.2 * norms[10.0]


@pytest.mark.parametrize(
    ("recipe", "head", "wise", "backbone_moves"),
    [
        ("prior", "prior", None, False),
        ("probe", "linear", None, False),
        ("probe", "prior", None, False),
        ("finetune", "linear", None, True),
        ("lp-ft", "prior", 0.0, False),
        ("lp-ft", "linear", None, True),
    ],
)
def test_recipe_plumbing(
    dataset: Path, recipe: str, head: str, wise: float | None, backbone_moves: bool
) -> None:
    cfg = TrainSettings(
        recipe=recipe,
        head=head,
        wise_alpha=wise,
        epochs=1,
        warmup_epochs=0,
        image_size=32,
        limit_batches=2,
        num_workers=0,
        weights={"mobilenet_v2": SHARED},
    )
    model = build_recipe_model("mobilenet_v2", resolve_weights("mobilenet_v2", SHARED), cfg)
    before = snapshot(model)
    data = _data(dataset, 32)
    outcome = train_recipe(model, "mobilenet_v2", data, cfg, device=torch.device("cpu"))
    after = snapshot(model)
    key = "features.0.0.weight"
    assert (not torch.equal(before[key], after[key])) == backbone_moves
    assert (outcome.probe is not None) == (recipe in ("probe", "lp-ft"))
    if recipe == "prior":
        assert all(torch.equal(before[k], after[k]) for k in before)
    assert isinstance(final_layer(model, "mobilenet_v2"), PriorHead) == (head == "prior")
    assert recipe_name(recipe, head, wise).startswith(recipe)
    # calibration folds in and the model still gives two logits per image
    y = np.array([0, 1, 0, 1])
    p = np.array([0.2, 0.9, 0.4, 0.6])
    point = calibrate_model(model, "mobilenet_v2", y, p, ["illustration"] * 4, cfg)
    assert point.temperature > 0
    assert model.eval()(torch.zeros(2, 3, 32, 32)).shape == (2, 2)


def test_safe_flagged_cap_raises_the_threshold() -> None:
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.6, 0.3, 0.7, 0.5, 0.4, 0.35, 0.2, 0.1, 0.1, 0.1, 0.05, 0.0])
    w = np.ones_like(p)
    cap = threshold_for_safe_flagged(y, p, w, 0.10)  # 1 of 10 safe images may be flagged
    assert 0.5 < cap <= 0.7 + 1e-9
    assert np.mean(p[y == 0] >= cap) <= 0.10
    point = choose_operating_point(
        y,
        p,
        ["photo"] * 14,
        photo_share=0.5,
        target_recall=1.0,
        band=0.05,
        method="none",
        max_safe_flagged=0.10,
    )
    assert point.threshold == pytest.approx(cap)  # the cap wins over recall 1.0 (0.3)


def test_behavioural_checks_catch_a_flip_sensitive_model() -> None:
    from PIL import Image

    from tests.behavioural import assert_clear_cases_ranked, assert_invariant

    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)) for _ in range(3)]

    def steady(batch: list) -> np.ndarray:
        return np.array([np.asarray(im.convert("RGB")).mean() / 255 for im in batch])

    def left_half(batch: list) -> np.ndarray:
        return np.array([np.asarray(im)[:, : im.width // 2].mean() / 255 for im in batch])

    assert_invariant(steady, images, tolerance=0.05)
    with pytest.raises(AssertionError, match="hflip"):
        assert_invariant(left_half, images, tolerance=0.001)
    dark, bright = Image.new("RGB", (8, 8)), Image.new("RGB", (8, 8), (255, 255, 255))
    assert_clear_cases_ranked(steady, [bright], [dark])
    with pytest.raises(AssertionError, match="out of order"):
        assert_clear_cases_ranked(steady, [dark], [bright])


@pytest.mark.parametrize(
    ("candidate", "baseline", "promote"),
    [(0.90, 0.95, False), (0.94, 0.95, True), (0.99, 0.95, True), (float("nan"), 0.9, False)],
)
def test_gate_set_refuses_a_candidate_worse_than_champion_or_prior(
    candidate: float, baseline: float, promote: bool
) -> None:
    from harmscan.metrics import decide_not_worse

    for against in ("champion on the gate set", "prior on the gate set"):
        decision = decide_not_worse(
            {"auc": candidate}, {"auc": baseline}, metric="auc", tolerance=0.02, against=against
        )
        assert decision.promote is promote
        assert against in decision.reason
    assert decide_not_worse({"auc": 0.5}, None, metric="auc", tolerance=0, against="prior").promote
