"""Augmented views of the probe's training images (``train.probe_views``), seeded per row.

A linear probe fitted on one centre crop per image learns the styles of its few vendors; fitted
on several augmented views of each image (random resized crop, flip, colour jitter, grayscale,
colour inversion: `harmscan.presets.TrainPreset.probe_view_preset`) it sees each drawing framed
and coloured several ways, the feature-space counterpart of training with augmentation. The
views are view-major (every image's first view, then every image's second, ...), so per-image
lists such as labels or sources repeat ``views`` times in the same order. Each row seeds the
torch generator from ``(seed, row)``, so the same rows come back in any order and with any
number of loader workers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np
import torch
from torch.utils.data import Dataset

T = TypeVar("T")


class ProbeViews(Dataset):
    """``views`` rows per image of ``base`` (whose transform augments), view-major."""

    def __init__(self, base: Dataset, views: int, seed: int) -> None:
        if views < 1:
            raise ValueError(f"probe views must be >= 1 here, got {views}")
        self.base = base
        self.views = views
        self.seed = seed
        self.size = len(base)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return self.size * self.views

    def __getitem__(self, row: int) -> Any:
        if not 0 <= row < len(self):
            raise IndexError(row)
        state = np.random.SeedSequence([self.seed, row]).generate_state(1, dtype=np.uint64)[0]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(state))
            return self.base[row % self.size]


def probe_dataset(base: Dataset, views: int, seed: int) -> Dataset:
    """``base`` itself at 0 views (today's single un-augmented view), else `ProbeViews`."""
    return base if views == 0 else ProbeViews(base, views, seed)


def repeat_rows(rows: Sequence[T], views: int) -> list[T]:
    """A per-image list in the rows' order of `probe_dataset` (unchanged at 0 views)."""
    return list(rows) * max(views, 1)
