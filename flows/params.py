"""The flows' typed parameters as dotted settings keys (None: not given).

Only the standard library and `conf` types, so the CLI checks a command's options against the
settings before it imports Prefect or the training stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conf.settings import Arch, OpenImagesSubset


def etl_changes(
    max_per_side: int | None = None,
    max_per_label: int | None = None,
    seed: int | None = None,
    subsets: list[OpenImagesSubset] | None = None,
) -> dict[str, object]:
    """The ``etl`` flow's parameters as settings keys."""
    return {
        "etl.max_per_side": max_per_side,
        "etl.max_per_label": max_per_label,
        "etl.seed": seed,
        "openimages.subsets": subsets or None,
    }


def train_changes(
    models: list[Arch] | None,
    epochs: int | None,
    weights: dict[str, str] | None,
    limit_batches: int | None = None,
) -> dict[str, object]:
    """The typed flow parameters as dotted settings keys (None: not given)."""
    changes: dict[str, object] = {
        "train.models": models or None,
        "train.epochs": epochs,
        "train.limit_batches": limit_batches,
    }
    changes.update({f"train.weights.{arch}": value for arch, value in (weights or {}).items()})
    return changes
