"""Where a model's starting weights come from, resolved without importing torch.

A weights source is one of:

* ``imagenet`` — torchvision's own ImageNet weights (needs internet or a warm torch hub cache),
* a path to a state dict that loads strictly into the 1000-class torchvision model
  (relative paths are resolved against the working directory, then the repository root),
* ``none`` — random initialisation (logged as a loud warning).

Nothing falls back silently: a missing file raises `WeightsError` naming the alternatives. This
module is torch-free so that a command can check its weights setting in milliseconds, before the
training stack is imported (`harmscan.models` builds the models from what it resolves).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

ARCHS: tuple[str, ...] = ("mobilenet_v2", "resnet50")
# The architecture of the untrained ImageNet prior that a retrain with a gate set registers once as
# its reference version (`tasks.training.ensure_prior`), whatever train.models holds.
PRIOR_ARCH = "mobilenet_v2"
REPO_ROOT = Path(__file__).resolve().parents[1]
# torchvision's own ImageNet weights of each architecture (`harmscan.models` loads these enums:
# MobileNet_V2_Weights.IMAGENET1K_V1, ResNet50_Weights.IMAGENET1K_V2; a test keeps them equal).
IMAGENET_URLS = {
    "mobilenet_v2": "https://download.pytorch.org/models/mobilenet_v2-b0353104.pth",
    "resnet50": "https://download.pytorch.org/models/resnet50-11ad3fa6.pth",
}


class WeightsError(RuntimeError):
    """The requested weights cannot be had; the message names the alternatives."""


@dataclass(frozen=True)
class WeightsSource:
    """A resolved weights setting.

    Attributes:
        kind: ``imagenet``, ``file`` or ``none``.
        path: The state-dict file when ``kind == "file"``.
    """

    kind: Literal["imagenet", "file", "none"]
    path: Path | None = None

    def describe(self) -> str:
        """A short human-readable description (logged as a run parameter)."""
        return str(self.path) if self.kind == "file" else self.kind


def check_arch(arch: str) -> None:
    """Raise ValueError naming the valid architectures unless ``arch`` is one."""
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; valid: {', '.join(ARCHS)}")


def alternatives(arch: str) -> str:
    """The settings that would work instead, for an error message."""
    return (
        f"set train.weights.{arch} to 'imagenet' (needs internet or a warm torch hub cache), "
        "to an existing state-dict file (e.g. weights/mobilenet_v2_imagenet.pth "
        "for mobilenet_v2), or to 'none' to train from scratch"
    )


def resolve_weights(
    arch: str, setting: str, *, cwd: Path | None = None, repo_root: Path = REPO_ROOT
) -> WeightsSource:
    """Turn a ``train.weights[arch]`` setting into a `WeightsSource`.

    Raises:
        WeightsError: A file setting that exists neither relative to ``cwd`` nor to the repo root.
    """
    check_arch(arch)
    value = setting.strip()
    if value.lower() in ("imagenet", "none"):
        return WeightsSource(value.lower())  # type: ignore[arg-type]
    path = Path(value).expanduser()
    candidates = [path] if path.is_absolute() else [(cwd or Path.cwd()) / path, repo_root / path]
    for candidate in candidates:
        if candidate.is_file():
            return WeightsSource("file", candidate.resolve())
    tried = ", ".join(dict.fromkeys(str(c) for c in candidates))
    raise WeightsError(f"weights file for {arch} not found (tried {tried}); {alternatives(arch)}")


def torch_hub_dir(env: dict[str, str] | None = None) -> Path:
    """Where torch keeps its hub downloads, as `torch.hub.get_dir()` finds it (no set_dir)."""
    env = dict(os.environ) if env is None else env
    if env.get("TORCH_HOME"):
        home = Path(env["TORCH_HOME"]).expanduser()
    else:
        cache = env.get("XDG_CACHE_HOME") or str(Path("~/.cache").expanduser())
        home = Path(cache) / "torch"
    return home / "hub"


def imagenet_cache_file(arch: str, env: dict[str, str] | None = None) -> Path:
    """The file torchvision's ImageNet weights of ``arch`` are cached in once downloaded."""
    check_arch(arch)
    return torch_hub_dir(env) / "checkpoints" / IMAGENET_URLS[arch].rsplit("/", 1)[1]
