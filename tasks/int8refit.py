"""``int8.refit_head``: the head refitted on the int8 backbone's own features at registration.

`head_refit` gives `harmscan.precision.build_served_models` a function that, given the int8
graph it made, runs the run's recipe again on a copy of the model whose pooled features come
from that graph (`harmscan.onnxfeatures.OnnxFeatures`): the domain gate, the gated probe, the
calibration and the per-branch operating point are fitted on the int8 features of the same
training, gate-photo and validation rows the float head was fitted on. The difference between
its threshold and the float model's is folded into the head (one constant log-odds shift: the
ranking, and so the AUC, is unchanged), so the float spec's threshold serves both graphs. The
copy is exported with the float backbone; quantizing it the same way gives the same int8
backbone (its ranges do not depend on the head, which stays float).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from pathlib import Path

import torch
from scipy.special import logit
from torch import nn

from harmscan.bundle import ServingSpec
from harmscan.calibration import OperatingPoint
from harmscan.heads import final_layer, shift_log_odds
from harmscan.models import export_onnx
from harmscan.onnxfeatures import OnnxFeatures
from harmscan.precision import HeadRefit
from harmscan.recipes import trains
from harmscan.trainjob import TrainJob
from harmscan.transfer import RecipeOutcome, train_recipe

logger = logging.getLogger(__name__)

# (model, the recipe's outcome) -> the operating point chosen on validation (folded into the
# model's head), as the run's float model was calibrated.
Calibrate = Callable[[nn.Module, RecipeOutcome], OperatingPoint]


def check_refit(job: TrainJob) -> None:
    """Refuse ``int8.refit_head`` for a recipe that trains the backbone (before any work).

    Raises:
        ValueError: ``train.recipe`` is ``finetune`` or ``lp-ft``.
    """
    recipe = job.settings.train.recipe
    if trains(recipe):
        raise ValueError(
            f"int8.refit_head refits a head on frozen features; train.recipe={recipe!r} trains "
            "the backbone; valid: probe, prior (or int8.refit_head=false)"
        )


def head_refit(job: TrainJob, calibrate: Calibrate) -> HeadRefit:
    """The `harmscan.precision.HeadRefit` of one training run (see the module docstring)."""
    check_refit(job)

    def refit(int8_graph: Path, folder: Path, spec: ServingSpec) -> Path:
        model = copy.deepcopy(job.model).cpu()
        head = final_layer(model, job.arch)
        on_int8 = OnnxFeatures(int8_graph, head)
        cpu = torch.device("cpu")
        # augmented probe views through on_int8 itself: the ONNX feature pass would export the
        # model, and this one is not a torch backbone
        train = job.settings.train.model_copy(update={"probe_view_engine": "torch"})
        outcome = train_recipe(on_int8, job.arch, job.data, train, device=cpu,
                               class_weights=job.class_weights)  # fmt: skip
        point = calibrate(on_int8, outcome)
        shift = float(logit(spec.threshold) - logit(point.threshold))
        shift_log_odds(head, shift)
        logger.info(
            "int8 head refitted on the int8 features: its threshold %.4f folded onto the float "
            "spec's %.4f (log-odds %+.3f)",
            point.threshold,
            spec.threshold,
            shift,
        )
        return export_onnx(model, folder / "refit_head.tmp.onnx", spec.image_size)

    return refit
