"""The train/eval engine: one epoch of training, evaluation, checkpointing, and the epoch loop.

Shaped after torchvision's ``references/classification/train.py`` (separate `train_one_epoch` and
`evaluate` under ``torch.inference_mode()``, one checkpoint dict) but with explicit arguments.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch import nn

from harmscan.bundle import HARMFUL, LABELS

logger = logging.getLogger(__name__)

HARMFUL_INDEX = LABELS.index(HARMFUL)
Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device(setting: str) -> torch.device:
    """``auto`` -> CUDA when present else CPU; ``cuda`` without a GPU is an error."""
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if setting == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device=cuda but no CUDA GPU is visible; use auto or cpu")
    if setting not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {setting!r}; valid: auto, cpu, cuda")
    return torch.device(setting)


def progress_bar() -> Progress:
    """A rich progress bar for batches of one epoch."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeRemainingColumn(),
        transient=True,
    )


def _limited(batches: Batches, limit: int | None) -> Iterable[tuple[int, Any]]:
    for index, batch in enumerate(batches):
        if limit is not None and index >= limit:
            return
        yield index, batch


def _steps(batches: Batches, limit: int | None) -> int | None:
    try:
        total = len(batches)  # type: ignore[arg-type]
    except TypeError:
        return limit
    return min(total, limit) if limit is not None else total


def train_one_epoch(
    model: nn.Module,
    batches: Batches,
    criterion: nn.Module,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    *,
    scaler: torch.amp.GradScaler | None = None,
    limit_batches: int | None = None,
    description: str = "train",
) -> dict[str, float]:
    """Train over ``batches`` once; return ``{"loss", "accuracy"}`` averaged over samples.

    The caller sets the module modes (e.g. a frozen backbone in eval mode) before calling.
    """
    total_loss, correct, seen = 0.0, 0, 0
    autocast = torch.autocast("cuda") if device.type == "cuda" else nullcontext()
    with progress_bar() as progress:
        bar = progress.add_task(description, total=_steps(batches, limit_batches), status="")
        for _, (images, targets) in _limited(batches, limit_batches):
            images, targets = images.to(device, non_blocking=True), targets.to(device)
            with autocast:
                logits = model(images)
                loss = criterion(logits, targets)
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            total_loss += float(loss.detach()) * targets.size(0)
            correct += int((logits.argmax(1) == targets).sum())
            seen += targets.size(0)
            progress.update(bar, advance=1, status=f"loss {total_loss / seen:.4f}")
    if seen == 0:
        raise ValueError("no training batches")
    return {"loss": total_loss / seen, "accuracy": correct / seen}


@dataclass
class Predictions:
    """Labels and harmful probabilities of one evaluation pass."""

    y_true: np.ndarray
    p_harmful: np.ndarray
    loss: float


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    batches: Batches,
    device: torch.device,
    *,
    criterion: nn.Module | None = None,
    limit_batches: int | None = None,
    description: str = "eval",
) -> Predictions:
    """Predict over ``batches`` in eval mode; return labels, P(harmful) and the mean loss."""
    model.eval()
    criterion = criterion or nn.CrossEntropyLoss()
    ys, ps, total_loss, seen = [], [], 0.0, 0
    with progress_bar() as progress:
        bar = progress.add_task(description, total=_steps(batches, limit_batches), status="")
        for _, (images, targets) in _limited(batches, limit_batches):
            images, targets = images.to(device), targets.to(device)
            logits = model(images).float()
            total_loss += float(criterion(logits, targets)) * targets.size(0)
            seen += targets.size(0)
            ps.append(torch.softmax(logits, dim=1)[:, HARMFUL_INDEX].cpu().numpy())
            ys.append((targets == HARMFUL_INDEX).long().cpu().numpy())
            progress.update(bar, advance=1)
    if seen == 0:
        raise ValueError("no evaluation batches")
    return Predictions(np.concatenate(ys), np.concatenate(ps), total_loss / seen)


@dataclass
class TrainState:
    """Everything a resumed run needs; saved as one checkpoint dict."""

    epoch: int = 0  # epochs completed
    best_score: float = -math.inf
    best_epoch: int = -1
    bad_epochs: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    best_model: dict[str, torch.Tensor] | None = None


def save_checkpoint(
    path: Path,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    state: TrainState,
    meta: dict[str, Any],
) -> None:
    """Write one checkpoint dict atomically (``tmp`` + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "state": state.__dict__,
        "meta": meta,
    }
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def load_checkpoint(
    path: Path, *, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any
) -> tuple[TrainState, dict[str, Any]]:
    """Restore model, optimizer and scheduler from `save_checkpoint`'s dict; return state, meta."""
    payload = torch.load(path, map_location="cpu", weights_only=False)
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    scheduler.load_state_dict(payload["scheduler"])
    return TrainState(**payload["state"]), payload["meta"]


EpochCallback = Callable[[int, dict[str, float]], None]
