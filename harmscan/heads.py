"""Classification heads of the 2-class model: the plain linear head and the ImageNet-prior head.

The prior head keeps the pretrained 1000-class classifier and turns it into two logits,
``[logsumexp(z[safe rows]), logsumexp(z[harmful rows])]``, whose softmax is *exactly*
``[1 - m, m]`` with ``m`` the ImageNet probability mass of the harmful classes (those listed in
``train.prior_classes``). A trainable linear layer on the same features adds to it::

    logits = prior_scale * [lse_safe(f), lse_harmful(f)] + linear(f)

so the harmful log-odds are ``prior_scale * logit(m(f)) + (w1 - w0) . f + (b1 - b0)``. It stays
one graph (two ``ReduceLogSumExp`` after a ``Gemm``) with two logits in the canonical label order.
Folding it into a single ``Linear`` would only be an approximation (log-sum-exp is not linear in
the features), so it is not folded. A temperature (calibration) folds in exactly: dividing
``prior_scale`` and the linear layer by ``T`` divides the logits by ``T`` (`scale_logits`).
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Iterator, Sequence

import torch
from torch import nn
from torchvision import models as tv

from harmscan.bundle import HARMFUL, LABELS

HARMFUL_INDEX = LABELS.index(HARMFUL)


def imagenet_categories() -> list[str]:
    """The 1000 ImageNet category names in output order (shipped with torchvision's code)."""
    return list(tv.MobileNet_V2_Weights.IMAGENET1K_V1.meta["categories"])


class PriorClassError(ValueError):
    """``train.prior_classes`` names no usable set of ImageNet categories (a settings error)."""


def imagenet_rows(names: Sequence[str], categories: Sequence[str] | None = None) -> list[int]:
    """Output rows of the ImageNet classifier for exact category names.

    Raises:
        PriorClassError: An unknown or repeated name (the message suggests close matches), or
            none at all.
    """
    categories = list(categories) if categories is not None else imagenet_categories()
    index = {name: row for row, name in enumerate(categories)}
    problems = []
    for name in names:
        if name not in index:
            close = difflib.get_close_matches(name, categories, n=3, cutoff=0.6)
            hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
            problems.append(f"{name!r}{hint}")
    if problems:
        raise PriorClassError(
            f"unknown ImageNet categories in train.prior_classes: {'; '.join(problems)}; names "
            "must match torchvision's MobileNet_V2_Weights.IMAGENET1K_V1.meta['categories']"
        )
    repeated = sorted({n for n in names if list(names).count(n) > 1})
    if repeated:
        raise PriorClassError(f"train.prior_classes names {repeated} more than once")
    if not names:
        raise PriorClassError("train.prior_classes is empty; the prior head needs harmful classes")
    return sorted(index[name] for name in names)


class PriorHead(nn.Module):
    """Two logits from pooled features: the ImageNet harmful-class mass plus a linear term.

    Args:
        imagenet: The pretrained 1000-class ``Linear`` (kept, and trainable like any head).
        harmful_rows: Its output rows that count as harmful.
        width: The features' width when tap columns follow the backbone's pooled features
            (`harmscan.taps`): the linear term reads every column, the ImageNet classifier the
            first ``imagenet.in_features``. None: ``imagenet.in_features``.
    """

    # Class-level: heads pickled before tap columns existed (registered models) read as 1280-d.
    base: int = 0
    width: int = 0

    def __init__(
        self, imagenet: nn.Linear, harmful_rows: Sequence[int], width: int | None = None
    ) -> None:
        super().__init__()
        rows = sorted(set(harmful_rows))
        if not rows or rows[0] < 0 or rows[-1] >= imagenet.out_features:
            raise ValueError(f"harmful rows must lie in [0, {imagenet.out_features}), got {rows}")
        self.base = int(imagenet.in_features)
        self.width = self.base if width is None else int(width)
        if self.width < self.base:
            raise ValueError(f"a head on {self.base}-d features cannot read {self.width} columns")
        others = [r for r in range(imagenet.out_features) if r not in set(rows)]
        self.imagenet = imagenet
        self.register_buffer("harmful_rows", torch.tensor(rows, dtype=torch.long))
        self.register_buffer("safe_rows", torch.tensor(others, dtype=torch.long))
        self.prior_scale = nn.Parameter(torch.ones(()))
        self.linear = nn.Linear(self.width, len(LABELS))
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def backbone_columns(self, features: torch.Tensor) -> torch.Tensor:
        """The backbone's pooled features: the first ``base`` columns (all without taps)."""
        return features if self.width <= self.base else features[:, : self.base]

    def prior_logits(self, features: torch.Tensor) -> torch.Tensor:
        """``[lse_safe, lse_harmful]``: softmax of it is the ImageNet class mass, exactly."""
        z = self.imagenet(self.backbone_columns(features))
        harmful = torch.logsumexp(z.index_select(1, self.harmful_rows), dim=1)
        safe = torch.logsumexp(z.index_select(1, self.safe_rows), dim=1)
        pair = (safe, harmful) if HARMFUL_INDEX == 1 else (harmful, safe)
        return torch.stack(pair, dim=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits in `LABELS` order."""
        return self.prior_scale * self.prior_logits(features) + self.linear(features)


class GatedPriorHead(nn.Module):
    """A photo-vs-drawing gate between two prior heads on the same pooled features.

    ``g = sigmoid(gate(f))`` is the probability that the image is a photo; the logits are
    ``g * photo(f) + (1 - g) * drawing(f)``, two `PriorHead` that share the ImageNet classifier
    (its 1000 logits are computed once). With the gate at 1 (0) it is exactly the photo
    (drawing) head, so each branch can carry its own mix of prior and probe. Still one graph with
    two logits in `LABELS` order; everything after the pooling is the head (kept float in int8).
    With tap columns after the backbone's pooled features (``prior.width`` wider than the
    ImageNet classifier's input, `harmscan.taps`), only the drawing branch's linear term reads
    them: the gate, the prior and the photo branch read the backbone's columns alone.

    Args:
        prior: The prior head to start both branches from (its ImageNet classifier is shared).
    """

    base: int = 0  # as in PriorHead: a head pickled before taps has no tap columns
    width: int = 0

    def __init__(self, prior: PriorHead) -> None:
        super().__init__()
        rows = [int(r) for r in torch.as_tensor(prior.harmful_rows).tolist()]
        self.base, self.width = prior.base, prior.width
        self.photo = prior if self.width == self.base else PriorHead(prior.imagenet, rows)
        self.drawing = PriorHead(prior.imagenet, rows, self.width)
        if self.photo is not prior:
            _copy_head(self.photo, prior)
        _copy_head(self.drawing, prior)
        self.gate = nn.Linear(self.base, 1)
        nn.init.zeros_(self.gate.weight)
        nn.init.zeros_(self.gate.bias)

    def backbone_columns(self, features: torch.Tensor) -> torch.Tensor:
        """The backbone's pooled features: the first ``base`` columns (all without taps)."""
        return features if self.width <= self.base else features[:, : self.base]

    def photo_probability(self, features: torch.Tensor) -> torch.Tensor:
        """``g``, shape ``(n, 1)``: how much of the photo branch each image gets."""
        return torch.sigmoid(self.gate(self.backbone_columns(features)))

    def branch_logits(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The photo and the drawing branch's logits, each ``(n, 2)`` in `LABELS` order."""
        narrow = self.backbone_columns(features)
        prior = self.photo.prior_logits(narrow)
        photo = self.photo.prior_scale * prior + self.photo.linear(narrow)
        drawing = self.drawing.prior_scale * prior + self.drawing.linear(features)
        return photo, drawing

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits in `LABELS` order."""
        photo, drawing = self.branch_logits(features)
        g = self.photo_probability(features)
        return g * photo + (1 - g) * drawing

    @torch.no_grad()
    def branch_log_odds(self, features: torch.Tensor) -> torch.Tensor:
        """``(n, 3)``: the gate's ``g``, the photo and the drawing branch's harmful log-odds."""
        photo, drawing = self.branch_logits(features)
        safe = 1 - HARMFUL_INDEX
        odds = [b[:, HARMFUL_INDEX] - b[:, safe] for b in (photo, drawing)]
        # not through self.gate: a forward hook on the gate would see every image twice
        narrow = self.backbone_columns(features)
        g = torch.sigmoid(nn.functional.linear(narrow, self.gate.weight, self.gate.bias))
        return torch.stack([g[:, 0], *odds], dim=1)


@torch.no_grad()
def _copy_head(dst: PriorHead, src: PriorHead) -> None:
    """``src``'s prior weight and linear term into ``dst`` (columns one has and the other not:
    zero)."""
    n = min(dst.width, src.width)
    dst.prior_scale.copy_(src.prior_scale)
    dst.linear.weight.zero_()
    dst.linear.weight[:, :n] = src.linear.weight[:, :n]
    dst.linear.bias.copy_(src.linear.bias)


def gated_head(model: nn.Module) -> GatedPriorHead | None:
    """The model's `GatedPriorHead`, or None when its head is not gated."""
    return next((m for m in model.modules() if isinstance(m, GatedPriorHead)), None)


@contextlib.contextmanager
def recording_branches(model: nn.Module) -> Iterator[list[torch.Tensor] | None]:
    """While open, every forward pass of the model's gated head appends its
    `GatedPriorHead.branch_log_odds` (one ``(batch, 3)`` CPU float64 tensor per call), in
    call order; yields None (records nothing) when the head is not gated."""
    head = gated_head(model)
    if head is None:
        yield None
        return
    seen: list[torch.Tensor] = []

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], _out: torch.Tensor) -> None:
        assert isinstance(module, GatedPriorHead)
        seen.append(module.branch_log_odds(inputs[0]).double().cpu())

    handle = head.register_forward_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


def _branches(layer: nn.Module) -> list[nn.Module]:
    """The heads whose logits a final layer mixes (itself unless it is gated)."""
    return [layer.photo, layer.drawing] if isinstance(layer, GatedPriorHead) else [layer]


def final_layer(model: nn.Module, arch: str) -> nn.Module:
    """The module that maps pooled features to the 2 logits (a ``Linear`` or a `PriorHead`)."""
    if arch == "mobilenet_v2":
        return model.get_submodule("classifier.1")
    if arch == "resnet50":
        return model.get_submodule("fc")
    raise ValueError(f"unknown architecture {arch!r}; valid: mobilenet_v2, resnet50")


def set_final_layer(model: nn.Module, arch: str, layer: nn.Module) -> None:
    """Replace the module returned by `final_layer`."""
    final_layer(model, arch)  # validates arch
    if arch == "mobilenet_v2":
        classifier = model.get_submodule("classifier")
        assert isinstance(classifier, nn.Sequential)
        classifier[1] = layer
    else:
        model.fc = layer


def linear_of(layer: nn.Module) -> nn.Linear:
    """The trainable 2-class linear part of a final layer."""
    linear = layer.linear if isinstance(layer, PriorHead) else layer
    if not isinstance(linear, nn.Linear):
        raise TypeError(f"unexpected final layer {type(layer).__name__}")
    return linear


@torch.no_grad()
def set_log_odds(layer: nn.Module, weight: torch.Tensor, bias: float, prior: float = 0.0) -> None:
    """Make the head compute harmful log-odds ``prior * logit(m) + weight . f + bias``.

    The safe logit is ``prior * lse_safe`` (0 for a linear head) and the harmful one adds the
    linear term, so the softmax over the two logits equals the sigmoid of those log-odds.
    """
    linear = linear_of(layer)
    linear.weight.zero_()
    linear.bias.zero_()
    linear.weight[HARMFUL_INDEX] = weight.to(linear.weight)
    linear.bias[HARMFUL_INDEX] = float(bias)
    if isinstance(layer, PriorHead):
        layer.prior_scale.fill_(prior)
    elif prior != 0.0:
        raise ValueError("a prior weight needs a PriorHead")


@torch.no_grad()
def shift_log_odds(layer: nn.Module, shift: float) -> None:
    """Add ``shift`` to the harmful log-odds of the final layer (exact: one bias entry per
    branch; a gated head's branch weights sum to 1)."""
    for branch in _branches(layer):
        linear_of(branch).bias[HARMFUL_INDEX] += float(shift)


@torch.no_grad()
def shift_branches(layer: nn.Module, photo: float, drawing: float) -> None:
    """Add ``photo`` to the photo branch's harmful log-odds and ``drawing`` to the drawing
    branch's (one bias entry each): the gate then blends logits that are already shifted, so
    an image routed fully to one branch gets exactly that branch's shift.

    Raises:
        TypeError: The layer is not a `GatedPriorHead`.
    """
    if not isinstance(layer, GatedPriorHead):
        raise TypeError(f"per-branch shifts need a gated head, got {type(layer).__name__}")
    for branch, shift in ((layer.photo, photo), (layer.drawing, drawing)):
        linear_of(branch).bias[HARMFUL_INDEX] += float(shift)


@torch.no_grad()
def scale_logits(layer: nn.Module, factor: float) -> None:
    """Multiply the final layer's logits by ``factor`` (exact; a temperature is 1 / factor)."""
    for branch in _branches(layer):
        linear = linear_of(branch)
        linear.weight.mul_(factor)
        linear.bias.mul_(factor)
        if isinstance(branch, PriorHead):
            branch.prior_scale.mul_(factor)
