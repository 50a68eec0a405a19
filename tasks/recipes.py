"""The I/O around the transfer recipes: photo sets, calibration on a domain mix, MLflow logging.

A photo set is a folder with a ``manifest.csv`` (``file``, ``label``, ``domain``; ``file``
relative to the folder), e.g. ``gateset/`` (the promotion gate's) or ``photopool/`` (photos that
may be used for calibration). The functions here are plain; `tasks.training` calls them.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from conf.settings import TrainSettings
from harmscan.calibration import OperatingPoint
from harmscan.crossfit import HeldOut, held_out
from harmscan.engine import evaluate
from harmscan.gateset import PhotoSet, load_photo_set
from harmscan.heads import recording_branches
from harmscan.metrics import domain_metrics
from harmscan.modelcalibration import calibrate_model
from harmscan.presets import EvalPreset
from harmscan.recipes import WiseCurve
from harmscan.trainsets import PoolDataset
from harmscan.transfer import RecipeOutcome
from registry import Registry

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scored:
    """Labels (1 = harmful), harmful probabilities and domains of one set of images, and for a
    gated head each image's gate and branch log-odds (``(n, 3)``, else None)."""

    y: np.ndarray
    p: np.ndarray
    domains: list[str]
    branches: np.ndarray | None = None

    def __add__(self, other: Scored) -> Scored:
        branches = None
        if self.branches is not None and other.branches is not None:
            branches = np.concatenate([self.branches, other.branches])
        return Scored(
            np.concatenate([self.y, other.y]),
            np.concatenate([self.p, other.p]),
            [*self.domains, *other.domains],
            branches,
        )

    @property
    def gate(self) -> np.ndarray | None:
        """Each image's photo probability under a gated head (None otherwise)."""
        return None if self.branches is None else self.branches[:, 0]


@contextlib.contextmanager
def branch_scores(model: nn.Module) -> Iterator[Callable[[], np.ndarray | None]]:
    """`harmscan.heads.recording_branches` as one ``(n, 3)`` array, read after scoring."""
    with recording_branches(model) as seen:
        yield lambda: None if seen is None else torch.cat(seen).numpy()


def score_photo_set(
    model: nn.Module, root: Path | PhotoSet, preset: EvalPreset, *, batch_size: int = 32
) -> Scored:
    """Score every image of a photo set with ``model`` (CPU).

    A folder is loaded with `harmscan.gateset.load_photo_set`: its manifest must hash to its
    ``VERSION`` and every image to its row, so a set edited by hand is refused, not scored.
    """
    photos = root if isinstance(root, PhotoSet) else load_photo_set(root)
    data = PoolDataset(photos, preset)
    loader = DataLoader(data, batch_size=batch_size)
    with branch_scores(model) as branches:
        preds = evaluate(
            model, loader, torch.device("cpu"), description=f"{photos.root.name} ({len(data)})"
        )
    return Scored(preds.y_true, preds.p_harmful, data.domains, branches())


def calibrate_on_mix(
    model: nn.Module,
    arch: str,
    val: Scored,
    photos: Scored | None,
    cfg: TrainSettings,
    held_out: HeldOut | None = None,
) -> OperatingPoint:
    """Temperature and threshold on validation plus the calibration photos (folded in);
    ``held_out``: training drawings scored out of fold, for the drawing branch's threshold."""
    mix = val + photos if photos is not None else val
    return calibrate_model(
        model, arch, mix.y, mix.p, mix.domains, cfg, mix.branches, held_out=held_out
    )


def out_of_fold(outcome: RecipeOutcome, domains: list[str]) -> HeldOut | None:
    """The recipe's out-of-fold training scores (``train.cross_fit``) with their domains."""
    if outcome.out_of_fold is None:
        return None
    y, branches = outcome.out_of_fold
    return held_out(y, branches, domains)


def set_metrics(prefix: str, scored: Scored, threshold: float) -> dict[str, float]:
    """``<prefix>_<domain>_<metric>`` for every domain (same names for every run)."""
    values = domain_metrics(scored.y, scored.p, scored.domains, threshold)
    return {f"{prefix}_{k}": v for k, v in values.items()}


def log_recipe(run: Any, outcome: RecipeOutcome, point: OperatingPoint) -> None:
    """Log the calibration figures and the WiSE-FT curve (metric per alpha and a plot)."""
    run.log_metrics(
        {
            "calibration_temperature": point.temperature,
            "calibration_bias": point.bias,
            "calibration_ece_before": point.ece_before,
            "calibration_ece_after": point.ece_after,
            "threshold": point.threshold,
        }
    )
    if point.branches is not None:
        b = point.branches
        run.log_metrics(
            {
                "threshold_photo_branch": b.photo_threshold,
                "threshold_drawing_branch": b.drawing_threshold,
                "shift_photo_branch": b.photo_shift,
                "shift_drawing_branch": b.drawing_shift,
            }
        )
    if outcome.probe is not None:
        run.log_metrics({"probe_prior_weight": outcome.probe.prior})
    if outcome.wise is not None:
        for alpha, score in zip(outcome.wise.alphas, outcome.wise.scores, strict=True):
            run.log_metrics({"wise_val_auc": score}, step=round(alpha * 100))
        run.log_metrics({"wise_alpha": float(outcome.wise_alpha or 0.0)})
        with tempfile.TemporaryDirectory(prefix="harmscan-wise-") as tmp:
            _plot_wise(outcome.wise, Path(tmp) / "wise_curve.png")
            run.log_artifacts(Path(tmp), "evaluation")


def _plot_wise(curve: WiseCurve, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    ax.plot(curve.alphas, curve.scores, marker="o")
    ax.set(xlabel="alpha (0 = start, 1 = fine-tuned)", ylabel="validation ROC AUC", title="WiSE-FT")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


PRIOR_TAG = "recipe"
PRIOR_VALUE = "prior"


def photo_metrics(scored: Scored, threshold: float) -> dict[str, float]:
    """`harmscan.metrics.binary_metrics` plus ``<domain>_<metric>`` per domain at ``threshold``."""
    from harmscan.metrics import binary_metrics

    return {
        **binary_metrics(scored.y, scored.p, threshold),
        **domain_metrics(scored.y, scored.p, scored.domains, threshold),
    }


def score_version(
    registry: Registry, name: str, version: str, photos: Path | PhotoSet, *, batch_size: int = 32
) -> tuple[Scored, float]:
    """A registered bundle's scores on a photo set (at its own preset) and its stored threshold."""
    import mlflow.pytorch

    with tempfile.TemporaryDirectory(prefix="harmscan-gate-") as tmp:
        bundle = registry.download_bundle(name, version, Path(tmp))
        model = mlflow.pytorch.load_model(str(bundle.model_dir), map_location="cpu")
    spec = bundle.spec
    scored = score_photo_set(model, photos, EvalPreset.from_spec(spec), batch_size=batch_size)
    return scored, spec.threshold


# The version tag of the prior the retrain registered as the reference (`ensure_prior`).
REFERENCE_TAG = "prior_reference"


def prior_version(registry: Registry, name: str) -> str | None:
    """The reference prior: the registered version tagged ``recipe=prior`` and
    ``prior_reference=true`` (the first if several), else the first tagged ``recipe=prior``
    (a registry from before the reference tag); None when there is none.

    A prior trained by hand later (``--set train.recipe=prior``, another image size) is tagged
    ``recipe=prior`` too, but never replaces the reference the gate and the fallback use.
    """
    query = f"name='{name}' and tags.{PRIOR_TAG}='{PRIOR_VALUE}'"
    versions = registry.client.search_model_versions(query)
    references = [v for v in versions if (v.tags or {}).get(REFERENCE_TAG) == "true"]
    return min((str(v.version) for v in references or versions), key=int, default=None)
