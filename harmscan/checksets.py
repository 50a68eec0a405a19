"""The labelled image sets an int8 model is checked on: a manifest split, the photo gate set.

`harmscan.precision.judge` scores the float and the int8 graph on them, per set and per domain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harmscan.bundle import HARMFUL


@dataclass(frozen=True)
class CheckSet:
    """Labelled images the int8 model is checked on (a split, the gate set).

    Attributes:
        name: Group prefix in the verdict (``val``, ``gate``).
        paths: Image files.
        harmful: 1 for harmful, 0 for safe, per image.
        domains: Domain of each image (``photo``, ``illustration``, ``emoji``), or empty.
    """

    name: str
    paths: tuple[Path, ...]
    harmful: tuple[int, ...]
    domains: tuple[str, ...] = ()

    def groups(self, offset: int, total: int) -> dict[str, np.ndarray]:
        """Masks over the concatenated check images: this set, and each of its domains."""
        mask = np.zeros(total, dtype=bool)
        mask[offset : offset + len(self.paths)] = True
        out = {self.name: mask}
        for domain in sorted(set(self.domains)):
            domain_mask = np.zeros(total, dtype=bool)
            hits = [i for i, d in enumerate(self.domains) if d == domain]
            domain_mask[[offset + i for i in hits]] = True
            out[f"{self.name}/{domain}"] = domain_mask
        return out

    @classmethod
    def from_manifest(
        cls, dataset: Path, *, split: str | None = "val", name: str | None = None
    ) -> CheckSet:
        """The images of one split of a manifest folder (every row if ``split`` is None).

        The manifest's ``domain`` column, when it has one, names each image's domain.
        """
        from harmscan.data import read_manifest

        frame = read_manifest(dataset)
        if split is not None:
            frame = frame[frame["split"] == split]
        root = Path(dataset)
        root = root.parent if root.is_file() else root
        domains = tuple(frame["domain"]) if "domain" in frame.columns else ()
        return cls(
            name or split or root.name,
            tuple(root / p for p in frame["path"]),
            tuple(int(label == HARMFUL) for label in frame["label"]),
            domains,
        )

    @classmethod
    def from_photo_set(cls, root: Path, *, name: str = "gate") -> CheckSet:
        """A verified photo set (the gate set; `harmscan.gateset.load_photo_set`)."""
        from harmscan.gateset import load_photo_set

        photos = load_photo_set(Path(root))
        return cls(
            name, tuple(photos.paths), tuple(photos.targets), tuple(photos.manifest["domain"])
        )


def pooled(checks: Sequence[CheckSet]) -> tuple[list[Path], np.ndarray, dict[str, np.ndarray]]:
    """Every check set's images in one list, their labels, and each group's mask over the list
    (`CheckSet.groups`: a set, and each of its domains)."""
    paths = [p for c in checks for p in c.paths]
    labels = np.asarray([y for c in checks for y in c.harmful], dtype=np.int64)
    groups: dict[str, np.ndarray] = {}
    offset = 0
    for check_set in checks:
        groups.update(check_set.groups(offset, len(paths)))
        offset += len(check_set.paths)
    return paths, labels, groups
