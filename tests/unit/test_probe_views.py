"""train.probe_views: the probe's features from N seeded augmented views per training image."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from pydantic import ValidationError

from conf.sections.train import MAX_PROBE_VIEWS
from conf.settings import TrainSettings
from harmscan.data import read_manifest
from harmscan.presets import TrainPreset
from harmscan.probeviews import ProbeViews, probe_dataset, repeat_rows
from harmscan.trainjob import training_loaders
from harmscan.trainsets import resolve_training_sets
from tests.fixtures.train_data import make_synthetic_dataset
from tests.unit.test_trainsets import _pool


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    counts = {"train": 3, "val": 2, "test": 2}
    return make_synthetic_dataset(tmp_path_factory.mktemp("ds"), counts, size=48)


def _loaders(dataset: Path, pool: Path, views: int, seed: int = 5) -> tuple[torch.Tensor, ...]:
    frame = read_manifest(dataset)
    pools = resolve_training_sets([str(pool)])
    cfg = TrainSettings(image_size=32, batch_size=4, num_workers=0, probe_views=views, seed=seed)
    data = training_loaders(dataset, cfg, frame, pools, "illustration")
    images = torch.cat([x for x, _ in data.probe])
    targets = torch.cat([y for _, y in data.probe])
    return images, targets, data.groups  # type: ignore[return-value]


def test_n_views_give_n_times_the_rows_in_view_major_order(dataset: Path, tmp_path: Path) -> None:
    pool = _pool(tmp_path / "drawings", ["harmful", "safe", "safe"])
    plain, plain_y, plain_groups = _loaders(dataset, pool, 0)
    images, y, groups = _loaders(dataset, pool, 3)
    assert len(images) == 3 * len(plain) == 27
    assert y.tolist() == plain_y.tolist() * 3
    assert groups == list(plain_groups) * 3
    # the views differ from one another and from the un-augmented crop
    assert not torch.allclose(images[0], images[9])
    assert not torch.allclose(images[0], plain[0])


def test_with_views_the_gate_learns_the_un_augmented_drawings(
    dataset: Path, tmp_path: Path
) -> None:
    pool = _pool(tmp_path / "drawings", ["harmful", "safe"])
    frame = read_manifest(dataset)
    pools = resolve_training_sets([str(pool)])
    plain, *_ = _loaders(dataset, pool, 0)
    for views in (0, 2):
        cfg = TrainSettings(image_size=32, batch_size=4, num_workers=0, probe_views=views)
        data = training_loaders(dataset, cfg, frame, pools, "illustration")
        if views == 0:
            assert data.gate_side is None  # the probe batches, as before
        else:
            assert data.gate_side is not None
            gate = torch.cat([x for x, _ in data.gate_side])
            torch.testing.assert_close(gate, plain, rtol=0, atol=0)


def test_the_views_are_seeded_reproducibly(dataset: Path, tmp_path: Path) -> None:
    pool = _pool(tmp_path / "drawings", ["harmful", "safe"])
    first, _, _ = _loaders(dataset, pool, 2, seed=5)
    torch.manual_seed(999)  # the global generator does not matter
    again, _, _ = _loaders(dataset, pool, 2, seed=5)
    other, _, _ = _loaders(dataset, pool, 2, seed=6)
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    assert not torch.allclose(first, other)


def test_zero_views_is_the_un_augmented_path_exactly(dataset: Path, tmp_path: Path) -> None:
    pool = _pool(tmp_path / "drawings", ["harmful", "safe", "safe"])
    frame = read_manifest(dataset)
    pools = resolve_training_sets([str(pool)])
    cfg = TrainSettings(image_size=32, batch_size=4, num_workers=0)
    assert cfg.probe_views == 0
    data = training_loaders(dataset, cfg, frame, pools, "illustration")
    from harmscan.trainsets import training_split

    split = training_split(dataset, frame, TrainPreset(image_size=32).eval_preset, pools,
                           default_domain="illustration")  # fmt: skip
    assert data.probe.dataset is not None
    assert not isinstance(data.probe.dataset, ProbeViews)
    expected = torch.stack([split.dataset[i][0] for i in range(len(split.dataset))])
    torch.testing.assert_close(torch.cat([x for x, _ in data.probe]), expected, rtol=0, atol=0)
    assert data.groups == split.groups


def test_probe_dataset_and_repeat_rows_at_zero_views_change_nothing() -> None:
    base = [(torch.zeros(1), 0), (torch.ones(1), 1)]
    assert probe_dataset(base, 0, 1) is base  # type: ignore[arg-type]
    assert repeat_rows(["a", None], 0) == ["a", None]
    assert repeat_rows(["a", None], 2) == ["a", None, "a", None]
    with pytest.raises(ValueError, match=">= 1"):
        ProbeViews(base, 0, 1)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [-1, MAX_PROBE_VIEWS + 1])
def test_an_invalid_probe_views_names_the_valid_range(bad: int) -> None:
    with pytest.raises(ValidationError, match=rf"0\.\.{MAX_PROBE_VIEWS}"):
        TrainSettings(probe_views=bad)


def test_probe_views_refuse_cross_fitting() -> None:
    with pytest.raises(ValidationError, match="cross_fit=none"):
        TrainSettings(probe_views=2, cross_fit="sources")
    assert TrainSettings(probe_views=MAX_PROBE_VIEWS).probe_views == MAX_PROBE_VIEWS


def test_the_probe_view_preset_adds_grayscale_and_inversion_only_there() -> None:
    preset = TrainPreset(image_size=32, augment=False)
    views = preset.probe_view_preset
    assert views.augment
    assert (views.grayscale_prob, views.invert_prob) == (0.2, 0.2)
    assert (preset.grayscale_prob, preset.invert_prob) == (0.0, 0.0)  # fine-tuning unchanged
    assert views.eval_preset == preset.eval_preset  # serving's preset is the same


def test_the_gated_probe_trains_on_the_views_and_its_gate_on_the_clean_drawings(
    dataset: Path,
) -> None:
    from torch.utils.data import DataLoader

    from harmscan.data import ManifestDataset
    from harmscan.heads import GatedPriorHead, final_layer
    from harmscan.models import resolve_weights
    from harmscan.presets import EvalPreset
    from harmscan.trainjob import build_recipe_model
    from harmscan.transfer import RecipeData, train_recipe
    from tests.unit.test_domain_gate import SHARED

    heads = {}
    for views in (0, 2):
        cfg = TrainSettings(recipe="probe", head="prior-gated", image_size=32, num_workers=0,
                            weights={"mobilenet_v2": SHARED}, probe_views=views)  # fmt: skip
        data = training_loaders(dataset, cfg, read_manifest(dataset), [], "illustration")
        data.photos = DataLoader(ManifestDataset(dataset, "val", EvalPreset(image_size=32)))
        model = build_recipe_model("mobilenet_v2", resolve_weights("mobilenet_v2", SHARED), cfg)
        assert isinstance(data, RecipeData)
        train_recipe(model, "mobilenet_v2", data, cfg, device=torch.device("cpu"))
        heads[views] = final_layer(model, "mobilenet_v2")
    plain, views2 = heads[0], heads[2]
    assert isinstance(plain, GatedPriorHead)
    assert isinstance(views2, GatedPriorHead)
    torch.testing.assert_close(views2.gate.weight, plain.gate.weight)  # the same drawings
    assert not torch.allclose(views2.drawing.linear.weight, plain.drawing.linear.weight)
