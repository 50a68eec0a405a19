"""Extra training sets: fixed pools of images the probe may train on beside the dataset's split.

A pool is a photo set (`harmscan.gateset`: ``manifest.csv`` with file, label, domain, ...,
``VERSION``), e.g. ``drawpool/`` (emoji and icons from vendors in neither the gate set nor the
offline mirror), ``iconpool/`` or ``glyphpool/`` (icons of other families).
`resolve_training_sets` turns the ``train.extra_train_sets`` setting into verified folders and
refuses the gate set, by name, by folder or by any shared image: models are judged on the gate
set, so nothing may train on it; the held-out icon check set (``iconcheck/``) is refused the same
way (a new pool needs no rule of its own: its families are kept out of the check set when it is
built, `scripts/icon_pools.py`, and any image it shared would be refused here). `training_split`
is the dataset's training split with the pools appended, and the domain of every image.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch.utils.data import ConcatDataset, Dataset

from conf.sections.photosets import HELD_OUT_SETS
from conf.sections.photosets import valid_training_sets as _valid
from harmscan.bundle import LABELS
from harmscan.data import ManifestDataset, split_domains
from harmscan.gateset import (
    GATESET_DIR,
    REPO_ROOT,
    PhotoSet,
    find_photo_set,
    load_photo_set,
)
from harmscan.imagefile import read_image_file
from harmscan.imageio import decode_image

# Held-out check sets: scored only (`bench/gate_study.py`), never trained on or calibrated with;
# the settings refuse them by name (`conf.sections.photosets`), this module by folder and image.
HELD_OUT = tuple(REPO_ROOT / name for name in HELD_OUT_SETS)


class TrainingSetError(ValueError):
    """An extra training set that is unknown, or that is (or overlaps) the gate set."""


def _folder(name: str, role: str) -> Path:
    found = find_photo_set(name)
    if found is None:
        raise TrainingSetError(f"{role} {name!r} has no manifest.csv; {_valid()}")
    return found


def resolve_training_sets(
    names: Sequence[str], gate_set: Path | None = None, role: str = "extra training set"
) -> list[PhotoSet]:
    """The verified pools named by ``train.extra_train_sets``, in order.

    Args:
        names: Pool names (``drawpool``, ...) or folders, relative to the cwd or the repository.
        gate_set: The configured gate set (``mlflow.gate_set``) besides the repository's own.
        role: What the pools are for, as the errors name it (``calibration set`` for the
            photos that calibration and the thresholds are chosen on).

    Raises:
        TrainingSetError: A name is the gate set or has no manifest, or a pool shares an image
            (sha256) with the gate set.
        harmscan.gateset.PhotoSetError: A pool is not the version its ``VERSION`` names.
    """
    gates = {GATESET_DIR.resolve(), *([Path(gate_set).resolve()] if gate_set else [])}
    gate_hashes: set[str] = set()
    for gate in gates:
        if (gate / "manifest.csv").is_file():
            gate_hashes |= set(load_photo_set(gate, verify=False).manifest["sha256"])
    pools = []
    for name in names:
        folder = _folder(name, role) if Path(name).name != GATESET_DIR.name else GATESET_DIR
        if folder in gates:
            raise TrainingSetError(
                f"{role} {name!r} is the gate set: models are judged on it and "
                f"never trained on it; {_valid()} (other than the gate set)"
            )
        _refuse_held_out(name, folder, role)
        pool = load_photo_set(folder)
        shared = sorted(set(pool.manifest["sha256"]) & gate_hashes)
        if shared:
            raise TrainingSetError(
                f"{role} {name!r} shares {len(shared)} images with the gate set "
                f"(sha256 {shared[0][:12]}...); {_valid()} (sharing no image with the gate set)"
            )
        pools.append(pool)
    return pools


def _refuse_held_out(name: str, folder: Path, role: str) -> None:
    """Refuse a held-out check set (`HELD_OUT`), by folder or by any image it shares."""
    for held in HELD_OUT:
        if not (held / "manifest.csv").is_file():
            continue
        if folder.resolve() == held.resolve():
            raise TrainingSetError(
                f"{role} {name!r} is the held-out {held.name}/: it measures models "
                f"and never trains or calibrates one; {_valid()}"
            )
        held_hashes = set(load_photo_set(held, verify=False).manifest["sha256"])
        pool_hashes = set(load_photo_set(folder, verify=False).manifest["sha256"])
        if held_hashes & pool_hashes:
            raise TrainingSetError(
                f"{role} {name!r} shares {len(held_hashes & pool_hashes)} images "
                f"with the held-out {held.name}/; {_valid()}"
            )


class PoolDataset(Dataset[tuple[torch.Tensor, int]]):
    """Every image of a pool, decoded safely and passed through a preset, with its domain."""

    def __init__(self, pool: PhotoSet, transform: Callable[[Any], torch.Tensor]) -> None:
        self.pool = pool
        self.paths = pool.paths
        self.targets = [LABELS.index(str(label)) for label in pool.manifest["label"]]
        self.domains = [str(d) for d in pool.manifest["domain"]]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = decode_image(read_image_file(self.paths[index]))
        return self.transform(image), self.targets[index]


@dataclass(frozen=True)
class TrainingSplit:
    """The images a model trains on: the dataset's split, then each pool's images."""

    dataset: Dataset[tuple[torch.Tensor, int]]
    targets: list[int]
    domains: list[str]
    sources: list[str]  # "dataset" or the pool's folder name, per image
    # Cross-fitting groups (harmscan.crossfit): "<pool>:<source package>" for a pool's image
    # (its manifest's ``source``; the pool's name without one), None for the dataset's.
    groups: list[str | None]


def training_split(
    dataset: Path,
    frame: pd.DataFrame,
    transform: Callable[[Any], torch.Tensor],
    pools: Sequence[PhotoSet] = (),
    *,
    split: str = "train",
    default_domain: str = "photo",
) -> TrainingSplit:
    """``split`` of ``dataset`` followed by every image of ``pools``, through ``transform``."""
    base = ManifestDataset(dataset, split, transform, frame)
    parts = [PoolDataset(pool, transform) for pool in pools]
    return TrainingSplit(
        dataset=ConcatDataset([base, *parts]) if parts else base,
        targets=[*base.targets, *(t for p in parts for t in p.targets)],
        domains=[
            *split_domains(frame, split, default_domain),
            *(d for p in parts for d in p.domains),
        ],
        sources=["dataset"] * len(base) + [p.pool.root.name for p in parts for _ in p.targets],
        groups=[*(None for _ in range(len(base))), *(g for p in pools for g in pool_groups(p))],
    )


def pool_groups(pool: PhotoSet) -> list[str | None]:
    """Each image's cross-fitting group: ``<pool>:<source>`` (the pool's name without a
    ``source`` column)."""
    name = pool.root.name
    if "source" not in pool.manifest.columns:
        return [name] * len(pool.manifest)
    return [f"{name}:{s}" for s in pool.manifest["source"]]


def class_weights_of(targets: Sequence[int]) -> torch.Tensor:
    """Inverse-frequency loss weights in `LABELS` order (``n / (k * n_c)``) of ``targets``."""
    counts = [sum(1 for t in targets if t == i) for i in range(len(LABELS))]
    if min(counts) == 0:
        per_class = dict(zip(LABELS, counts, strict=True))
        raise TrainingSetError(f"training images per class {per_class}: one class has none")
    return torch.tensor([len(targets) / (len(LABELS) * n) for n in counts])


def gate_pool(
    names: Sequence[str], transform: Callable[[Any], torch.Tensor], gate_set: Path | None = None
) -> Dataset[tuple[torch.Tensor, int]]:
    """Images a domain gate learns "photo" (``train.gate_photos``) or "drawing"
    (``train.gate_drawings``) from; like a training pool, never the gate set
    (`resolve_training_sets`).

    Raises:
        TrainingSetError: No set named, or a set is the gate set or shares an image with it.
    """
    if not names:
        raise TrainingSetError("train.gate_photos is empty; the domain gate needs photos")
    return ConcatDataset(
        [PoolDataset(p, transform) for p in resolve_training_sets(names, gate_set)]
    )
