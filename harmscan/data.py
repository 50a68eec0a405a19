"""The dataset as the ETL writes it: a folder with ``manifest.csv`` and the split image folders.

Layout: ``<root>/{train,val,test}/{harmful,safe}/<image_id>.jpg`` plus ``<root>/manifest.csv`` with
at least the columns ``image_id,label,split,path,sha256`` (``path`` relative to ``<root>``). The
dataset version is the first 12 hex digits of the sha256 of the manifest file (as the ETL's
`harmscan.manifest.write_manifest` names it). Labels map to model outputs through
`harmscan.bundle.LABELS` (index 1 = harmful), never through folder order.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch.utils.data import Dataset

from harmscan.bundle import LABELS
from harmscan.datasetdir import manifest_path
from harmscan.imagefile import read_image_file
from harmscan.imageio import decode_image

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("image_id", "label", "split", "path", "sha256")
SPLITS = ("train", "val", "test")
VERSION_CHARS = 12


class ManifestError(ValueError):
    """The manifest is missing, malformed, or names files that do not exist."""


def dataset_version(dataset: Path) -> str:
    """The dataset version: first 12 hex digits of the sha256 of the manifest file's bytes."""
    path = manifest_path(dataset)
    if not path.is_file():
        raise ManifestError(f"no manifest at {path}")
    return hashlib.sha256(path.read_bytes()).hexdigest()[:VERSION_CHARS]


def read_manifest(dataset: Path) -> pd.DataFrame:
    """Read and validate a manifest; ``path`` values stay relative to the dataset folder.

    Raises:
        ManifestError: Missing file or columns, unknown labels or splits, duplicated ids.
    """
    path = manifest_path(dataset)
    if not path.is_file():
        raise ManifestError(f"no manifest at {path}; run the ETL first (harmscan etl)")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ManifestError(f"{path} lacks columns {missing}; has {list(frame.columns)}")
    bad_labels = sorted(set(frame["label"]) - set(LABELS))
    if bad_labels:
        raise ManifestError(f"{path}: unknown labels {bad_labels}; valid: {list(LABELS)}")
    bad_splits = sorted(set(frame["split"]) - set(SPLITS))
    if bad_splits:
        raise ManifestError(f"{path}: unknown splits {bad_splits}; valid: {list(SPLITS)}")
    duplicated = frame["image_id"][frame["image_id"].duplicated()].tolist()
    if duplicated:
        raise ManifestError(f"{path}: duplicated image ids {duplicated[:5]}")
    return frame


def summarize(frame: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Counts per split and label: ``{"train": {"harmful": 10, "safe": 12}, ...}``."""
    counts: dict[str, dict[str, int]] = {}
    for split in SPLITS:
        rows = frame[frame["split"] == split]
        counts[split] = {label: int((rows["label"] == label).sum()) for label in LABELS}
    return counts


def class_weights(frame: pd.DataFrame, split: str = "train") -> torch.Tensor:
    """Inverse-frequency loss weights in `LABELS` order (``n / (k * n_c)``).

    Raises:
        ManifestError: A class has no examples in ``split``.
    """
    counts = summarize(frame)[split]
    empty = [label for label, n in counts.items() if n == 0]
    if empty:
        raise ManifestError(f"split {split!r} has no images of class {empty}")
    total = sum(counts.values())
    return torch.tensor([total / (len(LABELS) * counts[label]) for label in LABELS])


@dataclass(frozen=True)
class Sample:
    """One manifest row: where the image is and its label index."""

    image_id: str
    path: Path
    target: int


class ManifestDataset(Dataset[tuple[torch.Tensor, int]]):
    """Images of one split, decoded safely and passed through a preset.

    Args:
        dataset: The dataset folder.
        split: ``train``, ``val`` or ``test``.
        transform: A `TrainPreset` or `EvalPreset` (PIL image -> CHW tensor).
        frame: An already-read manifest (read from ``dataset`` if omitted).
    """

    def __init__(
        self,
        dataset: Path,
        split: str,
        transform: Callable[[Any], torch.Tensor],
        frame: pd.DataFrame | None = None,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
        root = Path(dataset)
        root = root.parent if root.is_file() else root
        frame = read_manifest(root) if frame is None else frame
        rows = frame[frame["split"] == split]
        self.samples = [
            Sample(str(r.image_id), root / str(r.path), LABELS.index(str(r.label)))
            for r in rows.itertuples(index=False)
        ]
        if not self.samples:
            raise ManifestError(f"split {split!r} of {root} is empty")
        missing = [s.path for s in self.samples if not s.path.is_file()]
        if missing:
            raise ManifestError(f"{len(missing)} files of split {split!r} missing: {missing[:3]}")
        self.split = split
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def targets(self) -> list[int]:
        """Label indices of all samples, in order."""
        return [s.target for s in self.samples]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        sample = self.samples[index]
        image = decode_image(read_image_file(sample.path))
        return self.transform(image), sample.target


def leaked_fraction(evaluation: pd.DataFrame, training: pd.DataFrame) -> float:
    """Fraction of ``evaluation``'s test images that ``training`` used for train or val.

    A champion trained on an older dataset version may have seen images that the new version
    puts in its test split; its re-evaluated score is then optimistic.
    """
    test_ids = set(evaluation.loc[evaluation["split"] == "test", "image_id"])
    if not test_ids:
        return 0.0
    seen = set(training.loc[training["split"].isin(["train", "val"]), "image_id"])
    return len(test_ids & seen) / len(test_ids)


def split_domains(frame: pd.DataFrame, split: str, default: str = "photo") -> list[str]:
    """The ``domain`` of every image of ``split``, in `ManifestDataset` order.

    A manifest written before domains existed has no ``domain`` column: every image then gets
    ``default`` (Open Images is ``photo``; the offline mirror's icons are ``illustration``).
    """
    rows = frame[frame["split"] == split]
    if "domain" not in rows.columns:
        return [default] * len(rows)
    return [str(d) or default for d in rows["domain"]]
