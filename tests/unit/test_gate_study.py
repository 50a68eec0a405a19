"""The gate study's premise: a probe recipe's head on cached pooled features is the model."""

from __future__ import annotations

import json

import torch
from torch.utils.data import DataLoader, TensorDataset

from bench.gate_study import FeatureModel
from bench.recipe_bench import WEIGHTS as BENCH_WEIGHTS
from conf.settings import TrainSettings
from harmscan.gateset import REPO_ROOT
from harmscan.heads import final_layer
from harmscan.models import resolve_weights
from harmscan.recipes import extract_features
from harmscan.trainjob import build_recipe_model


def test_the_head_on_cached_features_gives_the_full_models_logits() -> None:
    torch.manual_seed(0)
    cfg = TrainSettings(recipe="probe", head="prior-gated")
    model = build_recipe_model(
        "mobilenet_v2", resolve_weights("mobilenet_v2", BENCH_WEIGHTS["mobilenet_v2"]), cfg
    ).eval()
    head = final_layer(model, "mobilenet_v2")
    with torch.no_grad():
        head.gate.weight.normal_(0, 0.1)  # a gate that blends, so both branches count
        head.photo.linear.weight.normal_(0, 0.1)
    images = torch.randn(3, 3, 64, 64)
    batches = DataLoader(TensorDataset(images, torch.tensor([0, 1, 0])), batch_size=2)
    features, _ = extract_features(model, "mobilenet_v2", batches, torch.device("cpu"))
    with torch.no_grad():
        expected = model(images)
        got = FeatureModel(head).eval()(torch.from_numpy(features))
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(expected[0], expected[1])  # the check can fail


def test_the_icon_check_set_is_scored_beside_the_pools_and_keys_the_cache() -> None:
    from bench.gate_study import POOLS, _cache_key, _sets
    from harmscan.gateset import GATESET_DIR, ICONCHECK_DIR

    assert "iconpool" in POOLS
    assert _sets(GATESET_DIR, ICONCHECK_DIR)["iconcheck"] == ICONCHECK_DIR
    assert "iconcheck" not in _sets(GATESET_DIR)  # --iconcheck ''
    assert _cache_key(160, GATESET_DIR, ICONCHECK_DIR) != _cache_key(160, GATESET_DIR)


def test_later_pools_are_cached_on_their_own_and_train_no_held_out_set(tmp_path) -> None:
    """A pool added later (glyphpool) leaves the base cache key as it was."""
    import numpy as np

    from bench.gate_study import LATER_POOLS, POOLS, pool_features
    from harmscan.gateset import load_photo_set

    assert "glyphpool" in LATER_POOLS
    assert not set(LATER_POOLS) & set(POOLS)
    version = load_photo_set(REPO_ROOT / "glyphpool", verify=False).version
    meta = {"domain": ["emoji"], "sha256": ["a"], "source": ["s"], "subject": ["dog"]}
    np.savez(tmp_path / f"mobilenet_v2-160-glyphpool-{version}.npz",
             meta=json.dumps(meta), x=np.ones((1, 4)), y=np.array([0]))  # fmt: skip
    got = pool_features(160, "glyphpool", tmp_path)  # from the cache: no model is built
    assert got["x"].shape == (1, 4)
    assert got["subject"] == ["dog"]


def test_n_probe_views_are_the_first_n_view_blocks_of_the_cache() -> None:
    import numpy as np
    import pytest

    from bench.gate_study import _view_rows

    clean = [{"y": np.array([1, 0])}, {"y": np.array([0])}]
    views = {"x": np.arange(9.0)[:, None], "y": np.array([1, 0, 0] * 3)}
    got = _view_rows(views, clean, 2)
    assert got["x"].ravel().tolist() == [0, 1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match="4 probe views asked, 3 cached"):
        _view_rows(views, clean, 4)
    with pytest.raises(ValueError, match="not of these training sets"):
        _view_rows(views, [{"y": np.array([0, 1, 0])}], 1)


def test_the_paired_bootstrap_gap_is_zero_for_equal_scores_and_signed_for_better() -> None:
    import numpy as np

    from bench.gate_study_paired import paired_gap

    y = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    base = np.array([0.9, 0.4, 0.6, 0.5, 0.7, 0.1, 0.2, 0.3])
    assert paired_gap(y, base, base, 50) == (0.0, 0.0, 0.0, 1.0)
    better = np.where(y == 1, base + 1.0, base)  # every harmful image above every safe one
    gap, low, high, share = paired_gap(y, base, better, 200)
    assert gap > 0
    assert 0 <= low <= gap <= high
    assert share == 1.0


def test_the_vendor_bootstrap_resamples_whole_vendors_and_skips_the_mirror() -> None:
    import numpy as np

    from bench.gate_study import vendor_bootstrap_gap

    y = np.array([0, 1] * 2 + [0, 1, 0, 1] * 3)
    groups = np.array(["-"] * 4 + [g for g in ("a", "b", "c") for _ in range(4)])
    base = np.r_[np.full(4, np.nan), np.tile([0.5, 0.4, 0.6, 0.3], 3)]  # ranks backwards
    candidate = np.r_[np.full(4, np.nan), np.tile([0.1, 0.9, 0.2, 0.8], 3)]  # ranks perfectly
    gap, low, high, share = vendor_bootstrap_gap(y, groups, base, candidate, 200)
    assert gap == 1.0
    assert (low, high, share) == (1.0, 1.0, 1.0)
    same = vendor_bootstrap_gap(y, groups, base, base, 200)
    assert same == (0.0, 0.0, 0.0, 0.0)  # a tie is not "better"
    # better on vendor a only: better exactly in the resamples that draw a (1 - (2/3)^3)
    mixed = np.r_[candidate[:8], base[8:]]
    gap, low, high, share = vendor_bootstrap_gap(y, groups, base, mixed, 2000)
    assert low == 0 < gap < high
    assert abs(share - (1 - (2 / 3) ** 3)) < 0.04


def test_study_configurations_with_views_fit_cached_features_in_torch() -> None:
    from bench.gate_study import study_settings

    base = {"image_size": 160, "num_workers": 0}
    name = "prior+probe+gate-branch+mixpoint@1.0:0.25%0.01/drawpool"
    plain, views = study_settings(name, base), study_settings(f"{name}*8", base)
    assert (plain.probe_views, views.probe_views) == (0, 8)
    assert views.probe_view_engine == "torch"  # the default onnx would take features as images
    assert TrainSettings().probe_view_engine == "onnx"
    assert views.head == plain.head == "prior-gated"


def test_a_kin_group_is_held_out_with_its_vendor() -> None:
    """With ``kin``, a copy of vendor a1 in another pool leaves a1's fold with it: a1 scores
    as if the copy were not there; without ``kin`` the copy trains and a1 scores otherwise."""
    import numpy as np

    from bench.gate_study import held_out_scores

    rng = np.random.default_rng(0)

    def part(n: int, sources: list[str]) -> dict:
        return {"x": rng.normal(0, 1, (n, 1280)).astype(np.float32),
                "y": np.tile([0, 1], n // 2), "source": sources}  # fmt: skip

    train, a = part(8, ["-"] * 8), part(8, ["a1"] * 4 + ["a2"] * 4)
    copy = {"x": a["x"][:4], "y": a["y"][:4], "source": ["b1"] * 4}  # a1's images again
    kw = {"c": 0.01, "mix": 0.25}
    alone = held_out_scores({"train": train, "A": a}, None, ["A"], "0", **kw)[2][8:12]
    feats = {"train": train, "A": a, "B": copy}
    with_kin = held_out_scores(feats, None, ["A", "B"], "0", kin={"B:b1": "A:a1"}, **kw)[2]
    without = held_out_scores(feats, None, ["A", "B"], "0", **kw)[2]
    np.testing.assert_allclose(with_kin[8:12], alone, rtol=1e-6)
    assert not np.allclose(without[8:12], alone)  # the copy trained in a1's fold
