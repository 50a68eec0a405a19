"""The int8 graph of a registration: the hook `registry.log_bundle` calls, and its logging.

`int8_hook` builds `harmscan.precision.Int8Plan` from the ``int8`` settings (calibration on the
train split, the check on the val split and the gate set) and wraps
`harmscan.precision.served_graphs_hook`, timing it; `log_int8` logs the verdict into the run.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from conf.settings import Int8Settings
from harmscan.bundle import ServingSpec
from harmscan.gateset import resolve_photo_set
from harmscan.int8check import Int8Check
from harmscan.precision import GraphsHook, HeadRefit, Int8Plan, served_graphs_hook
from harmscan.quantize import QuantizeOptions
from registry import Run

logger = logging.getLogger(__name__)


def int8_hook(
    dataset: Path,
    cfg: Int8Settings,
    gate_set: str | None,
    verdicts: list[Int8Check],
    seconds: list[float],
    refit_head: HeadRefit | None = None,
) -> GraphsHook | None:
    """The registration hook that makes the served graphs and judges int8 (None: int8 is off).

    Args:
        dataset: The manifest folder trained on (its train split calibrates, its val split checks).
        cfg: The ``int8`` settings.
        gate_set: ``mlflow.gate_set`` (None: the repository's ``gateset/``), checked per domain.
        verdicts: Receives the int8 verdict.
        seconds: Receives the seconds the hook took.
        refit_head: Refits the head on the int8 backbone's features (``int8.refit_head``).
    """
    if not cfg.enabled:
        return None
    options = QuantizeOptions(
        method=cfg.calibration_method,
        calibration_images=cfg.calibration_images,
        per_channel=cfg.per_channel,
        activations=cfg.activations,
        float_head=cfg.float_head,
        float_nodes=cfg.float_nodes if isinstance(cfg.float_nodes, str) else tuple(cfg.float_nodes),
        max_float_nodes=cfg.max_float_nodes,
        selection_images=cfg.selection_images,
    )
    plan = Int8Plan.for_dataset(
        dataset,
        gate_set=resolve_photo_set(gate_set),
        options=options,
        tolerance=cfg.tolerance,
        calibration_photos=cfg.calibration_photos,
        refit_head=refit_head,
        check_groups=cfg.check_groups,
    )
    hook = served_graphs_hook(plan, verdicts)

    def timed(onnx_path: Path, spec: ServingSpec) -> tuple[ServingSpec, tuple[Path, ...]]:
        start = time.perf_counter()
        try:
            return hook(onnx_path, spec)
        finally:
            seconds.append(time.perf_counter() - start)

    return timed


def log_int8(run: Run, verdicts: list[Int8Check], seconds: list[float]) -> None:
    """The int8 verdict (AUCs per group, ``int8_approved`` 1/0, the ``int8_reason`` tag) and
    ``int8_seconds``."""
    for check in verdicts:
        run.log_metrics({**check.summary(), "int8_approved": float(check.approved)})
        run.set_tags({"int8_reason": check.reason[:5000]})
        run.set_tags({"int8_float_nodes": ",".join(check.float_nodes)[:5000]})
        run.log_metrics({"int8_float_nodes": float(len(check.float_nodes))})
        verdict = "approved" if check.approved else "refused"
        logger.info("int8 %s (%.1fs): %s", verdict, sum(seconds), check.reason)
    if seconds:
        run.log_metrics({"int8_seconds": sum(seconds)})
