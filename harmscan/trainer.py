"""The epoch loop: frozen-backbone warm-up, optimizer and cosine schedule, early stopping, resume.

Per-epoch metric names are the same for every architecture (`EPOCH_METRICS`), so runs compare.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from conf.settings import TrainSettings
from harmscan.engine import (
    Batches,
    EpochCallback,
    TrainState,
    evaluate,
    load_checkpoint,
    save_checkpoint,
    train_one_epoch,
)
from harmscan.metrics import binary_metrics
from harmscan.models import head_module, set_backbone_trainable, split_parameters

logger = logging.getLogger(__name__)

EPOCH_METRICS = (
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "val_f1",
    "val_auc",
    "val_pr_auc",
    "lr",
    "backbone_frozen",
)


def make_optimizer(model: nn.Module, arch: str, settings: TrainSettings) -> torch.optim.Optimizer:
    """AdamW or SGD with two groups: the backbone at ``lr * backbone_lr_scale``, the head at lr."""
    backbone, head = split_parameters(model, arch)
    groups = [
        {"params": backbone, "lr": settings.lr * settings.backbone_lr_scale},
        {"params": head, "lr": settings.lr},
    ]
    if settings.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=settings.lr, weight_decay=settings.weight_decay)
    return torch.optim.SGD(
        groups, lr=settings.lr, momentum=0.9, nesterov=True, weight_decay=settings.weight_decay
    )


def _score(metrics: dict[str, float], name: str) -> float:
    value = metrics[name]
    if math.isnan(value):
        return -math.inf
    return -value if name == "val_loss" else value


def _set_modes(model: nn.Module, arch: str, frozen: bool) -> None:
    """Train mode, except a frozen backbone stays in eval (its BatchNorm statistics are kept)."""
    set_backbone_trainable(model, arch, not frozen)
    if frozen:
        model.eval()
        head_module(model, arch).train()
    else:
        model.train()


@dataclass
class _Loop:
    """What one fitting run needs between epochs."""

    criterion: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler | None
    state: TrainState = field(default_factory=TrainState)


def _make_loop(
    model: nn.Module,
    arch: str,
    settings: TrainSettings,
    device: torch.device,
    class_weights: torch.Tensor | None,
) -> _Loop:
    weight = class_weights.to(device) if class_weights is not None else None
    optimizer = make_optimizer(model, arch, settings)
    return _Loop(
        criterion=nn.CrossEntropyLoss(weight=weight, label_smoothing=settings.label_smoothing),
        optimizer=optimizer,
        scheduler=torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=settings.epochs),
        scaler=torch.amp.GradScaler("cuda") if device.type == "cuda" else None,
    )


def _stretch_schedule(loop: _Loop, epochs: int) -> None:
    """The restored cosine schedule over this run's ``epochs``: a checkpoint of a shorter run
    carries its own length, and the resumed epochs trained at its end (a learning rate of 0),
    then climbed back. Each group's rate is set to the cosine at the resumed epoch."""
    scheduler = loop.scheduler
    if scheduler.T_max == epochs:
        return
    scheduler.T_max = epochs
    done = min(loop.state.epoch, epochs)
    for group, base in zip(loop.optimizer.param_groups, scheduler.base_lrs, strict=True):
        eta_min = scheduler.eta_min
        group["lr"] = eta_min + (base - eta_min) * (1 + math.cos(math.pi * done / epochs)) / 2


def _run_epoch(
    model: nn.Module,
    arch: str,
    loop: _Loop,
    batches: tuple[Batches, Batches],
    settings: TrainSettings,
    device: torch.device,
) -> dict[str, float]:
    """Train one epoch (warm-up epochs keep the backbone frozen), validate, return the metrics."""
    epoch = loop.state.epoch
    frozen = epoch < settings.warmup_epochs
    _set_modes(model, arch, frozen)
    lr = loop.optimizer.param_groups[-1]["lr"]
    train = train_one_epoch(
        model,
        batches[0],
        loop.criterion,
        loop.optimizer,
        device,
        scaler=loop.scaler,
        limit_batches=settings.limit_batches,
        description=f"{arch} epoch {epoch + 1}/{settings.epochs}" + (" (warm-up)" * frozen),
    )
    loop.scheduler.step()
    preds = evaluate(model, batches[1], device, criterion=loop.criterion, description="val")
    val = binary_metrics(preds.y_true, preds.p_harmful)
    return {
        "train_loss": train["loss"],
        "train_accuracy": train["accuracy"],
        "val_loss": preds.loss,
        "val_accuracy": val["accuracy"],
        "val_f1": val["f1"],
        "val_auc": val["auc"],
        "val_pr_auc": val["pr_auc"],
        "lr": lr,
        "backbone_frozen": float(frozen),
    }


def fit(
    model: nn.Module,
    arch: str,
    train_batches: Batches,
    val_batches: Batches,
    settings: TrainSettings,
    *,
    device: torch.device,
    class_weights: torch.Tensor | None = None,
    checkpoint: Path | None = None,
    resume: bool = False,
    on_epoch: EpochCallback | None = None,
) -> TrainState:
    """Train ``settings.epochs`` with warm-up and early stopping; the model ends on its best epoch.

    Args:
        model: Model from `harmscan.models.build_model`, moved to ``device`` here.
        arch: Its architecture name.
        train_batches: Training loader (augmenting preset).
        val_batches: Validation loader (eval preset); scored on ``early_stopping_metric``.
        settings: The ``train`` settings section.
        device: Where to train; AMP is used on CUDA.
        class_weights: Loss weights in label order, or None.
        checkpoint: Where the one checkpoint dict is written after every epoch.
        resume: Continue from ``checkpoint`` if it exists.
        on_epoch: Called with (epoch, metrics) after every epoch (e.g. to log to MLflow).

    Returns:
        The final state (history, best epoch); the model holds the best epoch's weights.
    """
    model.to(device)
    loop = _make_loop(model, arch, settings, device, class_weights)
    meta: dict[str, Any] = {"arch": arch, "settings": settings.model_dump(mode="json")}
    if resume and checkpoint is not None and checkpoint.is_file():
        loop.state, saved = load_checkpoint(
            checkpoint, model=model, optimizer=loop.optimizer, scheduler=loop.scheduler
        )
        if saved.get("arch", arch) != arch:
            raise ValueError(
                f"{checkpoint} holds a {saved['arch']} run, not {arch}: train without resume, "
                "or remove the checkpoint"
            )
        _stretch_schedule(loop, settings.epochs)
        model.to(device)
        logger.info("%s: resumed from %s after epoch %d", arch, checkpoint, loop.state.epoch)
    state = loop.state
    while state.epoch < settings.epochs and state.bad_epochs < settings.early_stopping_patience:
        epoch = state.epoch
        metrics = _run_epoch(model, arch, loop, (train_batches, val_batches), settings, device)
        _record(state, metrics, model, settings.early_stopping_metric)
        logger.info("%s epoch %d: %s", arch, epoch + 1, _fmt(metrics))
        if on_epoch is not None:
            on_epoch(epoch, metrics)
        if checkpoint is not None:
            save_checkpoint(
                checkpoint,
                model=model,
                optimizer=loop.optimizer,
                scheduler=loop.scheduler,
                state=state,
                meta=meta,
            )
    if state.bad_epochs >= settings.early_stopping_patience:
        logger.info("%s: early stop after epoch %d (best %d)", arch, state.epoch, state.best_epoch)
    if state.best_model is not None:
        model.load_state_dict(state.best_model)
    set_backbone_trainable(model, arch, True)
    return state


def _record(state: TrainState, metrics: dict[str, float], model: nn.Module, metric: str) -> None:
    state.history.append(metrics)
    score = _score(metrics, metric)
    if score > state.best_score or state.best_model is None:
        state.best_score, state.best_epoch, state.bad_epochs = score, state.epoch, 0
        state.best_model = copy.deepcopy({k: v.cpu() for k, v in model.state_dict().items()})
    else:
        state.bad_epochs += 1
    state.epoch += 1


def _fmt(metrics: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.4f}" for k, v in metrics.items())
