"""Data, engine and trainer: label order, overfitting one batch, checkpoint and resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from conf.settings import TrainSettings
from harmscan.bundle import HARMFUL, LABELS
from harmscan.data import (
    ManifestDataset,
    ManifestError,
    class_weights,
    dataset_version,
    read_manifest,
    summarize,
)
from harmscan.engine import evaluate, pick_device, seed_everything, train_one_epoch
from harmscan.models import build_model, resolve_weights
from harmscan.presets import EvalPreset, TrainPreset
from harmscan.trainer import EPOCH_METRICS, fit
from tests.fixtures.train_data import make_synthetic_dataset

SHARED = "weights/mobilenet_v2_imagenet.pth"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic_dataset(
        tmp_path_factory.mktemp("data"), {"train": 8, "val": 4, "test": 4}
    )


def test_manifest_labels_map_to_the_canonical_order(dataset: Path) -> None:
    data = ManifestDataset(dataset, "val", EvalPreset(image_size=64))
    for sample in data.samples:
        # folder name is the label; index must follow LABELS, not alphabetical folder order
        assert LABELS[sample.target] == sample.path.parent.name
    assert LABELS.index(HARMFUL) == 1
    image, target = data[0]
    assert image.shape == (3, 64, 64)
    assert target in (0, 1)


def test_manifest_summary_weights_and_version(dataset: Path) -> None:
    frame = read_manifest(dataset)
    assert summarize(frame)["train"] == {"safe": 8, "harmful": 8}
    assert torch.allclose(class_weights(frame), torch.ones(2))
    assert len(dataset_version(dataset)) == 12


def test_manifest_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no manifest"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.csv").write_text("image_id,label,split,path,sha256\na,weapon,train,x,y\n")
    with pytest.raises(ManifestError, match=r"unknown labels \['weapon'\]"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.csv").write_text("image_id,label,split,path,sha256\na,safe,train,x,y\n")
    with pytest.raises(ManifestError, match="missing"):
        ManifestDataset(tmp_path, "train", EvalPreset())


class _ConstantHarmful(nn.Module):
    """Logits that always favour output index 1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tensor([[0.0, 4.0]]).repeat(x.shape[0], 1)


def test_reported_probability_is_that_of_the_harmful_class() -> None:
    batches = [(torch.zeros(3, 3, 8, 8), torch.tensor([1, 0, 1]))]
    preds = evaluate(_ConstantHarmful(), batches, torch.device("cpu"))
    # index 1 is "harmful": p_harmful is softmax([0, 4])[1], and y_true marks harmful rows
    assert preds.p_harmful == pytest.approx([0.982] * 3, abs=1e-3)
    assert preds.y_true.tolist() == [1, 0, 1]


@pytest.mark.slow
def test_overfits_one_batch(dataset: Path) -> None:
    seed_everything(0)
    torch.set_num_threads(2)
    data = ManifestDataset(dataset, "train", TrainPreset(image_size=64, augment=False))
    batch = next(iter(DataLoader(data, batch_size=8, shuffle=True)))
    model = build_model("mobilenet_v2", resolve_weights("mobilenet_v2", SHARED))
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    criterion = nn.CrossEntropyLoss()
    first = train_one_epoch(model, [batch], criterion, optimizer, torch.device("cpu"))["loss"]
    for _ in range(12):
        last = train_one_epoch(model, [batch], criterion, optimizer, torch.device("cpu"))
    assert last["loss"] < 0.1 * first
    assert last["accuracy"] == 1.0


@pytest.mark.slow
def test_fit_warms_up_stops_checkpoints_and_resumes(dataset: Path, tmp_path: Path) -> None:
    settings = TrainSettings(epochs=2, warmup_epochs=1, batch_size=8, lr=1e-3, limit_batches=1)
    train = DataLoader(ManifestDataset(dataset, "train", TrainPreset(image_size=64)), batch_size=8)
    val = DataLoader(ManifestDataset(dataset, "val", EvalPreset(image_size=64)), batch_size=8)
    logged: list[tuple[int, dict[str, float]]] = []

    def run(epochs: int, resume: bool) -> object:
        seed_everything(1)
        model = build_model("mobilenet_v2", resolve_weights("mobilenet_v2", SHARED))
        s = settings.model_copy(update={"epochs": epochs})
        return fit(
            model,
            "mobilenet_v2",
            train,
            val,
            s,
            device=pick_device("cpu"),
            checkpoint=tmp_path / "ckpt.pt",
            resume=resume,
            on_epoch=lambda e, m: logged.append((e, m)),
        )

    state = run(1, resume=False)
    assert state.epoch == 1
    assert logged[0][1]["backbone_frozen"] == 1.0
    assert set(logged[0][1]) == set(EPOCH_METRICS)
    state = run(2, resume=True)  # continues at epoch 2, does not redo epoch 1
    assert [e for e, _ in logged] == [0, 1]
    assert logged[1][1]["backbone_frozen"] == 0.0
    # the schedule spans the resumed run's 2 epochs, not the checkpoint's 1 (lr 0 at epoch 2)
    assert logged[1][1]["lr"] == pytest.approx(1e-3 * 0.5)
    assert state.epoch == 2
    assert len(state.history) == 2


def test_leaked_fraction_counts_test_images_the_other_dataset_trained_on() -> None:
    import pandas as pd

    from harmscan.data import leaked_fraction

    new = pd.DataFrame(
        {"image_id": ["a", "b", "c", "d", "e"], "split": ["test", "test", "test", "test", "train"]}
    )
    old = pd.DataFrame(
        {"image_id": ["a", "b", "c", "e"], "split": ["train", "val", "test", "train"]}
    )
    assert leaked_fraction(new, old) == pytest.approx(2 / 4)  # a (train), b (val); not c (test)
    assert leaked_fraction(new, new) == 0.0
