"""The ONNX export's parity check: relative to the logits' scale, yet strict on a real mismatch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from harmscan.models import export_onnx
from registry.bundles import ONNX_ATOL, ONNX_RTOL, Parity, onnx_parity
from registry.client import RegistryError

SIZE = 32


def _logits(scale: float) -> np.ndarray:
    return np.random.default_rng(0).normal(0, scale, (4, 2)).astype(np.float32)


@pytest.mark.parametrize(
    ("scale", "error", "ok"),
    [
        (1.0, 5e-4, True),  # small logits: the absolute part
        (1.0, 5e-3, False),
        (2000.0, 2000.0 * 2e-5, True),  # large logits, float32 rounding grown with them
        (2000.0, 2000.0 * 1e-2, False),  # large logits, 1 % off: a real mismatch
        (2000.0, 2000.0 * 1e-3, False),
    ],
)
def test_limit_grows_with_the_logits_scale_only(scale: float, error: float, ok: bool) -> None:
    expected = _logits(scale)
    got = expected.copy()
    got[1, 0] += error
    parity = Parity.of(expected, got)
    assert parity.max_abs_diff == pytest.approx(error, rel=1e-3)
    assert parity.logit_scale == pytest.approx(np.abs(expected).max())
    assert parity.limit == pytest.approx(ONNX_ATOL + ONNX_RTOL * parity.logit_scale)
    assert parity.ok is ok


def test_nan_and_shape_mismatch_fail() -> None:
    expected = _logits(1.0)
    got = expected.copy()
    got[0, 0] = np.nan
    assert not Parity.of(expected, got).ok
    with pytest.raises(RegistryError, match=r"shape \(4, 1\), torch's \(4, 2\)"):
        Parity.of(expected, expected[:, :1])


def test_check_names_the_limit_and_its_parts() -> None:
    expected = _logits(100.0)
    Parity.of(expected, expected * (1 + 1e-6)).check()
    with pytest.raises(RegistryError, match=r"by 1\.\d+ > 0\.0\d+ \(= 0\.001 \+ 0\.0001 x"):
        Parity.of(expected, expected * 1.01).check()


class _Tiny(nn.Module):
    """A small conv net whose head is scaled so its logits are large (as a probe can grow)."""

    def __init__(self, head_scale: float) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1)
        )
        self.head = nn.Linear(8, 2)
        with torch.no_grad():
            self.head.weight.mul_(head_scale)
            self.head.bias.mul_(head_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


@pytest.fixture
def exported(tmp_path: Path) -> tuple[nn.Module, Path]:
    torch.manual_seed(0)
    model = _Tiny(head_scale=1e5).eval()  # |logits| ~3e4: one float32 step there is 2e-3
    return model, export_onnx(model, tmp_path / "model.onnx", SIZE)


def test_a_large_scale_export_that_computes_the_model_passes(
    exported: tuple[nn.Module, Path],
) -> None:
    model, path = exported
    parity = onnx_parity(model, path, SIZE)
    assert parity.logit_scale > 16384  # where an absolute 1e-3 is below one float32 step
    assert parity.ok
    parity.check()


def test_an_export_of_other_weights_fails_at_the_same_scale(
    exported: tuple[nn.Module, Path],
) -> None:
    model, path = exported
    with torch.no_grad():
        model.features[0].weight.mul_(1.02)  # the torch model moves on; the graph does not
    parity = onnx_parity(model, path, SIZE)
    assert parity.logit_scale > 16384
    assert not parity.ok
    with pytest.raises(RegistryError, match="does not compute the trained model"):
        parity.check()
