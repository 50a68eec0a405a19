"""Extra training sets: a pool's images reach the training data with their domains; the gate
set never trains a model."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conf.loader import SettingsError, load_settings
from conf.settings import TrainSettings
from harmscan.data import read_manifest
from harmscan.gateset import (
    GATESET_DIR,
    ICONCHECK_DIR,
    MANIFEST_COLUMNS,
    VERSION_FILE,
    manifest_version,
)
from harmscan.presets import EvalPreset
from harmscan.trainjob import prepare_job, training_loaders
from harmscan.trainsets import (
    TrainingSetError,
    class_weights_of,
    resolve_training_sets,
    training_split,
)
from tests.fixtures.train_data import make_synthetic_dataset, synthetic_image


def _pool(root: Path, labels: list[str], domain: str = "emoji") -> Path:
    """A tiny photo set in the builder's layout (manifest.csv, VERSION, images/)."""
    rng = np.random.default_rng(7)
    rows = []
    for i, label in enumerate(labels):
        rel = f"images/{label}/drawing{i}.jpg"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        synthetic_image(label, rng, 48).save(root / rel, quality=90)
        digest = hashlib.sha256((root / rel).read_bytes()).hexdigest()
        row = dict.fromkeys(MANIFEST_COLUMNS, "x")
        rows.append({**row, "file": rel, "label": label, "domain": domain, "sha256": digest})
    pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS)).to_csv(root / "manifest.csv", index=False)
    (root / VERSION_FILE).write_text(manifest_version(root / "manifest.csv") + "\n")
    return root


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    counts = {"train": 3, "val": 2, "test": 2}
    return make_synthetic_dataset(tmp_path_factory.mktemp("ds"), counts, size=48)


def test_a_pool_row_reaches_the_probe_and_training_batches_with_its_domain(
    dataset: Path, tmp_path: Path
) -> None:
    pool = _pool(tmp_path / "drawings", ["harmful", "safe", "safe"])
    frame = read_manifest(dataset)
    (resolved,) = resolve_training_sets([str(pool)])
    split = training_split(dataset, frame, EvalPreset(image_size=32), [resolved],
                           default_domain="illustration")  # fmt: skip
    assert len(split.dataset) == 6 + 3
    assert split.domains == ["photo"] * 6 + ["emoji"] * 3  # the manifest says photo
    assert split.sources[-3:] == ["drawings"] * 3
    assert split.targets[-3:] == [1, 0, 0]  # LABELS order: index 1 is harmful
    image, target = split.dataset[6]  # the pool's first row, decoded through the preset
    assert tuple(image.shape) == (3, 32, 32)
    assert target == 1
    cfg = TrainSettings(image_size=32, batch_size=4, num_workers=0, augment=False)
    data = training_loaders(dataset, cfg, frame, [resolved], "illustration")
    for loader in (data.probe, data.train):  # the probe's features and fine-tuning's batches
        assert len(loader.dataset) == 9
    probe_targets = torch.cat([y for _, y in data.probe]).tolist()
    assert probe_targets[-3:] == [1, 0, 0]
    assert len(data.val.dataset) == 4  # validation stays the dataset's own
    # cross-fitting groups: the pool's source package per image, None for the dataset's own
    assert split.groups == [None] * 6 + ["drawings:x"] * 3
    assert data.groups == split.groups


def test_without_pools_the_training_split_is_the_dataset_alone(dataset: Path) -> None:
    split = training_split(dataset, read_manifest(dataset), EvalPreset(image_size=32))
    assert len(split.dataset) == 6
    assert set(split.sources) == {"dataset"}


@pytest.mark.parametrize("name", ["gateset", "gateset/", str(GATESET_DIR)])
def test_the_gate_set_is_refused_by_name_with_the_valid_choices(name: str) -> None:
    with pytest.raises(
        TrainingSetError, match=r"is the gate set.*valid: colourpool, drawpool, emojipool"
    ):
        resolve_training_sets([name])
    with pytest.raises(
        ValueError, match=r"names the gate set.*valid: colourpool, drawpool, emojipool"
    ):
        TrainSettings(extra_train_sets=[name])


def test_a_configured_gate_set_is_refused_by_setting_and_by_folder(tmp_path: Path) -> None:
    gate = _pool(tmp_path / "mygate", ["harmful", "safe"], domain="photo")
    with pytest.raises(SettingsError, match=r"names mlflow.gate_set .*valid: colourpool, drawpool"):
        load_settings("ci", [f"mlflow.gate_set={gate}", f"train.extra_train_sets=[{gate}]"], env={})
    with pytest.raises(TrainingSetError, match="is the gate set"):
        resolve_training_sets([str(gate)], gate_set=gate)


def test_a_copy_of_gate_images_under_another_name_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "renamed"
    shutil.copytree(GATESET_DIR, copy)
    with pytest.raises(TrainingSetError, match=r"shares 367 images with the gate set"):
        resolve_training_sets([str(copy)])


def test_the_held_out_icon_check_set_is_refused_by_name_and_by_shared_image(
    tmp_path: Path,
) -> None:
    with pytest.raises(TrainingSetError, match=r"'iconcheck' is the held-out iconcheck/"):
        resolve_training_sets(["iconcheck"])
    copy = tmp_path / "renamed"
    shutil.copytree(ICONCHECK_DIR, copy)
    with pytest.raises(TrainingSetError, match=r"shares 120 images with the held-out iconcheck/"):
        resolve_training_sets([str(copy)])


def test_calibration_photos_that_copy_a_held_out_set_stop_the_run_before_any_work(
    dataset: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "renamed"
    shutil.copytree(ICONCHECK_DIR, copy)  # the settings refuse "iconcheck" only by name
    settings = load_settings("ci", [f"train.calibration_photos={copy}"], env={})
    with pytest.raises(TrainingSetError, match=r"calibration set '.*renamed' shares 120 images"):
        prepare_job(settings, "mobilenet_v2", dataset)


@pytest.mark.parametrize(
    "override",
    [
        "train.calibration_photos=gateset",
        f"train.calibration_photos={GATESET_DIR}",
        "train.gate_drawings=[drawpool, gateset/]",
        "int8.calibration_photos=[photopool, gateset]",
    ],
)
def test_loading_settings_refuses_the_gate_set_with_the_valid_choices(override: str) -> None:
    setting = override.split("=", 1)[0]
    with pytest.raises(
        SettingsError,
        match=rf"{setting} names the gate set .*valid: colourpool, drawpool, emojipool",
    ):
        load_settings("ci", [override], env={})


@pytest.mark.parametrize("setting", ["train.calibration_photos", "int8.calibration_photos"])
def test_loading_settings_refuses_calibration_on_a_configured_gate_set(
    tmp_path: Path, setting: str
) -> None:
    gate = _pool(tmp_path / "mygate", ["harmful", "safe"], domain="photo")
    value = str(gate) if setting.startswith("train.") else f"[{gate}]"
    with pytest.raises(
        SettingsError, match=rf"{setting} names mlflow.gate_set .*valid: colourpool, drawpool"
    ):
        load_settings("ci", [f"mlflow.gate_set={gate}", f"{setting}={value}"], env={})


@pytest.mark.parametrize(
    "override",
    [
        "train.extra_train_sets=[drawpool, iconcheck]",
        "train.gate_photos=[iconcheck/]",
        "train.gate_drawings=[iconcheck]",
        f"train.calibration_photos={ICONCHECK_DIR}",
        "int8.calibration_photos=[iconcheck]",
    ],
)
def test_loading_settings_refuses_the_held_out_set_with_the_valid_choices(override: str) -> None:
    setting = override.split("=", 1)[0]
    with pytest.raises(
        SettingsError,
        match=rf"{setting} names the held-out check set .*valid: colourpool, drawpool, emojipool",
    ):
        load_settings("ci", [override], env={})


def test_unknown_sets_name_the_valid_choices() -> None:
    with pytest.raises(
        TrainingSetError, match=r"'nopool' has no manifest.csv; valid: colourpool, drawpool"
    ):
        resolve_training_sets(["nopool"])


def test_the_repository_pools_resolve_and_default_to_none() -> None:
    assert TrainSettings().extra_train_sets == []
    (draw,) = resolve_training_sets(["drawpool"])
    assert draw.root.name == "drawpool"
    assert set(draw.manifest["domain"]) == {"emoji"}
    (glyphs,) = resolve_training_sets(["glyphpool"])  # a training pool, not held out
    assert glyphs.root.name == "glyphpool"
    (colour,) = resolve_training_sets(["colourpool"])  # measured, not adopted: by name only
    assert colour.root.name == "colourpool"
    assert "colourpool" not in load_settings("local", env={}).train.extra_train_sets


def test_class_weights_count_the_pools_too() -> None:
    assert class_weights_of([1, 0, 0, 0]).tolist() == pytest.approx([4 / 6, 2.0])
    with pytest.raises(TrainingSetError, match="one class has none"):
        class_weights_of([0, 0])


@pytest.mark.parametrize(
    ("drop", "says"),
    [
        ({"split": "val", "label": "safe"}, "val has no safe"),
        ({"split": "test"}, "test has no safe and no harmful"),
        ({"split": "train", "label": "harmful"}, "train has no harmful"),
    ],
)
def test_training_refuses_a_short_split_before_any_epoch(
    dataset: Path, tmp_path: Path, drop: dict[str, str], says: str
) -> None:
    """A split without both labels once trained every epoch and then failed in calibration."""
    from harmscan.data import ManifestError
    from tasks.training import train_and_register

    short = tmp_path / "short"
    shutil.copytree(dataset, short)
    frame = pd.read_csv(short / "manifest.csv", dtype=str, keep_default_na=False)
    dropped = np.logical_and.reduce([frame[k] == v for k, v in drop.items()])
    frame[~dropped].to_csv(short / "manifest.csv", index=False)
    settings = load_settings(
        "ci",
        [f"paths.root={tmp_path / 'h'}", "mlflow.tracking_uri=http://127.0.0.1:9",
         "train.image_size=32", "train.head=linear", "train.recipe=finetune",
         "train.extra_train_sets=[]"],
        env={},
    )  # fmt: skip
    with pytest.raises(ManifestError, match=says) as caught:
        train_and_register(settings, "mobilenet_v2", short, register=False)
    assert "etl.max_per_side" in str(caught.value)
    assert not (tmp_path / "h" / "runs").exists() or not any((tmp_path / "h" / "runs").iterdir())


def test_the_no_weights_fallback_trains_on_the_dataset_alone(caplog) -> None:
    """The pools serve the probe; a scratch fine-tune without weights runs without them."""
    from harmscan.models import WeightsSource
    from harmscan.trainjob import effective_settings

    cfg = TrainSettings(recipe="probe", head="prior-gated", extra_train_sets=["drawpool"])
    fallback = effective_settings(cfg, WeightsSource("none"), "resnet50")
    assert (fallback.recipe, fallback.head, fallback.extra_train_sets) == ("finetune", "linear", [])
    assert "without drawpool" in caplog.text
    kept = effective_settings(cfg, WeightsSource("file", Path("weights.pth")), "mobilenet_v2")
    assert kept.extra_train_sets == ["drawpool"]
    mine = TrainSettings(recipe="finetune", head="linear", extra_train_sets=["drawpool"])
    asked = effective_settings(mine, WeightsSource("none"), "resnet50")
    assert asked.extra_train_sets == ["drawpool"]
