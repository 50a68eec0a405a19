"""The layer study's premises: the block taps are the channels it assumes, and widening the
features moves only the drawing probe (the prior, the photo branch and the gate see 1280-d)."""

from __future__ import annotations

import numpy as np
import torch

from bench.layer_study import (
    BLOCKS,
    LAST,
    _columns,
    _pooled_blocks,
    narrow_prior_and_gate,
    wide_model_builder,
)
from bench.recipe_bench import WEIGHTS as BENCH_WEIGHTS
from conf.settings import TrainSettings
from harmscan import transfer
from harmscan.heads import final_layer
from harmscan.models import resolve_weights
from harmscan.recipes import fit_gate
from harmscan.trainjob import build_recipe_model

CHANNELS = {13: 96, 16: 160, 17: 320}


def _source() -> object:
    return resolve_weights("mobilenet_v2", BENCH_WEIGHTS["mobilenet_v2"])


def test_block_hooks_pool_the_channels_the_columns_assume() -> None:
    cfg = TrainSettings(head="prior")
    model = build_recipe_model("mobilenet_v2", _source(), cfg).eval()
    seen, handles = _pooled_blocks(model, BLOCKS)
    with torch.no_grad():
        model(torch.randn(2, 3, 64, 64))
    for h in handles:
        h.remove()
    assert [s[0].shape for s in seen] == [(2, 2 * CHANNELS[b]) for b in BLOCKS]
    width = sum(2 * c for c in CHANNELS.values())
    assert len(np.unique(_columns("b13m+b16m+b17m", CHANNELS))) == width
    assert _columns("b16", CHANNELS).tolist() == list(range(192, 352))  # after b13's avg + max
    assert _columns("last", CHANNELS).size == 0


def test_the_widened_head_keeps_the_prior_and_the_photo_branch() -> None:
    torch.manual_seed(0)
    cfg = TrainSettings(recipe="probe", head="prior-gated")
    narrow = final_layer(build_recipe_model("mobilenet_v2", _source(), cfg), "mobilenet_v2")
    wide = final_layer(wide_model_builder(LAST + 7)("mobilenet_v2", _source(), cfg), "mobilenet_v2")
    x = torch.randn(4, LAST + 7)
    with torch.no_grad():
        wide.drawing.linear.weight[:, LAST:].normal_(0, 1)  # the probe's block columns
        photo, drawing = wide.branch_logits(x)
        narrow_photo, narrow_drawing = narrow.branch_logits(x[:, :LAST])
    torch.testing.assert_close(photo, narrow_photo)
    assert not torch.allclose(drawing, narrow_drawing)  # the block columns reach drawings only


def test_the_gate_is_fitted_on_the_last_layer_alone_and_restored() -> None:
    rng = np.random.default_rng(0)
    drawings, photos = rng.normal(size=(20, LAST + 3)), rng.normal(1, 1, size=(20, LAST + 3))
    with narrow_prior_and_gate():
        gate = transfer.fit_gate(drawings, photos, c=0.1)
    assert transfer.fit_gate is fit_gate
    assert gate.weight.shape == (LAST + 3,)
    assert not gate.weight[LAST:].any()
    np.testing.assert_allclose(
        gate.weight[:LAST], fit_gate(drawings[:, :LAST], photos[:, :LAST], c=0.1).weight
    )
