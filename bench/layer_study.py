"""Does the drawing probe rank better on intermediate blocks' features beside the last layer's?

    nice -n 10 .venv/bin/python bench/layer_study.py --image-size 160 \
        --variants "last,b13,b13m,b13+b16,b13m+b16m" --c 0.01 --gate-variants "last,b13m,b13m+b16m"

MobileNetV2's pooled 1280-d features are ImageNet-semantic; blocks before the last 1x1
convolution (``features[13]`` 96 channels, ``features[16]`` 160, ``features[17]`` 320) may keep
shape information that drawings of an unseen vendor need. One forward pass per image collects,
through forward hooks, the global average (``bN``) and maximum (``bNm``: average and maximum) of
those blocks beside the last layer's pooled features (`bench/gate_study.py`'s extraction, whose
features it reproduces; cached under ``--cache``). A variant appends those columns to the 1280-d
for the **drawing probe only**: the ImageNet prior and the photo gate keep the 1280-d (the
probe standardises every column, `harmscan.recipes.fit_probe`).

First the development metric, held-out-vendor AUC of the drawing branch (prior 0.25 + probe)
over the pools' sources (`gate_study.held_out_scores`), per variant and ``probe_c``; then, for
``--gate-variants``, the main job's recipe on cached features (`gate_study.run`: gate, per-branch
thresholds chosen as the main job chooses them) on the gate set and the held-out icons, as
`bench/gate_study.py`'s rows.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gate_study
from gate_study import (
    ARCH,
    HEADER,
    Features,
    extract_all,
    held_out_scores,
    row,
    run,
    vendor_bootstrap_gap,
)
from recipe_bench import REPO, WEIGHTS, _calibrated_by, _paths, mirror_dataset

from conf.settings import TrainSettings
from harmscan import transfer
from harmscan.data import ManifestDataset, read_manifest
from harmscan.gateset import load_photo_set
from harmscan.heads import GatedPriorHead, PriorHead, final_layer
from harmscan.models import resolve_weights
from harmscan.presets import TrainPreset
from harmscan.recipes import LinearFit
from harmscan.trainjob import build_recipe_model
from harmscan.trainsets import PoolDataset

BLOCKS = (13, 16, 17)
SETS = ("train", "val", "test", "drawpool", "iconpool", "photopool", "gateset", "iconcheck")
LATER = ("glyphpool",)  # a later pool of gate_study's (cached on its own): the default's
LAST = 1280


def _pooled_blocks(model: nn.Module, blocks: tuple[int, ...]) -> tuple[list[Any], list[Any]]:
    """Forward hooks on ``model.features[b]`` that append each batch's (average, maximum)."""
    seen: list[list[np.ndarray]] = [[] for _ in blocks]
    handles = []
    for k, b in enumerate(blocks):

        def hook(_m: nn.Module, _i: Any, out: torch.Tensor, k: int = k) -> None:
            avg, top = out.mean(dim=(2, 3)), out.amax(dim=(2, 3))
            seen[k].append(torch.cat([avg, top], dim=1).float().cpu().numpy())

        handles.append(model.get_submodule("features")[b].register_forward_hook(hook))
    return seen, handles


def _block_pass(model: nn.Module, data: Any, last: np.ndarray, name: str) -> np.ndarray:
    """One forward pass over ``data``: its pooled block features; the last layer's features of
    the same pass must equal ``last`` (`bench/gate_study.py`'s, same images in the same order)."""
    seen, handles = _pooled_blocks(model, BLOCKS)
    try:
        x = gate_study._features(model, data, [""] * len(data))["x"]
    finally:
        for h in handles:
            h.remove()
    if not np.allclose(x, last, atol=1e-4):
        raise ValueError(f"{name}: last-layer features differ from gate_study's cache")
    print(f"{name}: {len(x)} images", flush=True)
    return np.concatenate([np.concatenate(s) for s in seen], axis=1)


def extract_blocks(size: int, feats: Features, cache: Path) -> dict[str, np.ndarray]:
    """Per set in `SETS` and `LATER`: ``(n, 2 * sum(channels))`` pooled block features (per
    block: average columns then maximum), cached (`LATER` each on its own, by version)."""
    cfg = TrainSettings(image_size=size, num_workers=0, weights=WEIGHTS, head="prior")
    model = build_recipe_model(ARCH, resolve_weights(ARCH, WEIGHTS[ARCH]), cfg)
    preset = TrainPreset(image_size=size, augment=False).eval_preset
    tag = f"blocks{'-'.join(map(str, BLOCKS))}"
    key = gate_study._cache_key(size, REPO / "gateset", REPO / "iconcheck")
    path = cache / f"{key}-{tag}.npz"
    out: dict[str, np.ndarray] = {}
    if path.is_file():
        with np.load(path) as data:
            out = {k: data[k] for k in data.files}
    else:
        with tempfile.TemporaryDirectory(prefix="layer-study-") as tmp:
            dataset = mirror_dataset(Path(tmp))
            frame = read_manifest(dataset)
            for name in SETS:
                if name in ("train", "val", "test"):
                    data: Any = ManifestDataset(dataset, name, preset, frame)
                else:
                    data = PoolDataset(load_photo_set(REPO / name), preset)
                out[name] = _block_pass(model, data, feats[name]["x"], f"{size} px {name}")
        np.savez(path, **out)
    for name in LATER:
        photo_set = load_photo_set(REPO / name)
        later = cache / f"{ARCH}-{size}-{name}-{photo_set.version}-{tag}.npz"
        if later.is_file():
            with np.load(later) as data:
                out[name] = data["x"]
            continue
        data = PoolDataset(photo_set, preset)
        out[name] = _block_pass(model, data, feats[name]["x"], f"{size} px {name}")
        np.savez(later, x=out[name])
    return out


def _columns(spec: str, channels: dict[int, int]) -> np.ndarray:
    """Column indices of the block features for a variant ``last`` or ``bN[m][+bN[m]...]``."""
    if spec == "last":
        return np.zeros(0, dtype=int)
    start, offsets = 0, {}
    for b in BLOCKS:
        offsets[b] = start
        start += 2 * channels[b]
    cols = []
    for part in spec.split("+"):
        b = int(part[1:].rstrip("m"))
        avg = np.arange(offsets[b], offsets[b] + channels[b])
        cols.append(avg)
        if part.endswith("m"):
            cols.append(avg + channels[b])
    return np.concatenate(cols)


def widened(feats: Features, blocks: dict[str, np.ndarray], spec: str) -> Features:
    """``feats`` with the variant's block columns after the 1280-d of every set in `SETS`."""
    channels = {13: 96, 16: 160, 17: 320}
    cols = _columns(spec, channels)
    return {
        name: {**part, "x": np.concatenate([part["x"], blocks[name][:, cols]], axis=1)}
        for name, part in feats.items()
        if name in (*SETS, *LATER)
    }


class LastLayer(nn.Module):
    """The ImageNet classifier on the first 1280 columns of widened features: the prior (and
    so the photo branch) sees what it always saw, while `PriorHead.linear` (the probe) and the
    gate are sized for every column."""

    def __init__(self, imagenet: nn.Linear, width: int) -> None:
        super().__init__()
        self.imagenet = imagenet
        self.in_features, self.out_features = width, imagenet.out_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.imagenet(features[:, :LAST])


@contextlib.contextmanager
def narrow_prior_and_gate() -> Iterator[None]:
    """While open, the prior log-odds read the first 1280 columns
    (`gate_study.held_out_scores`) and the photo gate is fitted on them alone (zero weight on
    the block columns)."""
    prior_of, gate_of = gate_study.prior_log_odds, transfer.fit_gate

    def prior(head: PriorHead, x: np.ndarray) -> np.ndarray:
        return prior_of(head, x[:, :LAST])

    def gate(drawings: np.ndarray, photos: np.ndarray, **kw: Any) -> LinearFit:
        fit = gate_of(drawings[:, :LAST], photos[:, :LAST], **kw)
        extra = np.zeros(drawings.shape[1] - LAST)
        return LinearFit(np.r_[fit.weight, extra], fit.bias, fit.prior)

    gate_study.prior_log_odds, transfer.fit_gate = prior, gate
    try:
        yield
    finally:
        gate_study.prior_log_odds, transfer.fit_gate = prior_of, gate_of


def wide_model_builder(width: int) -> Any:
    """`build_recipe_model` whose gated head takes ``width`` columns (`LastLayer`)."""
    build = gate_study.build_recipe_model

    def build_wide(arch: str, source: Any, cfg: TrainSettings) -> nn.Module:
        model = build(arch, source, cfg)
        head = final_layer(model, arch)
        if width == LAST or not isinstance(head, GatedPriorHead):
            return model
        rows = [int(r) for r in head.photo.harmful_rows.tolist()]
        wide = GatedPriorHead(PriorHead(LastLayer(head.photo.imagenet, width), rows))
        model.get_submodule("classifier")[1] = wide
        return model

    return build_wide


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=160)
    parser.add_argument("--variants", default="last,b17,b16,b13+b16")
    parser.add_argument("--pools", default="drawpool,iconpool,glyphpool", help="the probe's pools")
    parser.add_argument("--resamples", type=int, default=2000, help="vendor bootstrap of gaps")
    parser.add_argument("--c", default="0.01", help="probe_c values for the development metric")
    parser.add_argument("--gate-variants", default="", help="VARIANT[%%C], comma-separated")
    parser.add_argument(
        "--config",
        default="prior+probe+gate-branch+mixpoint@1.0:0.25%0.01/drawpool/iconpool/glyphpool",
    )
    parser.add_argument("--calibration-photos", default="photopool")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "gate-study")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(2)
    size = args.image_size
    feats = extract_all(size, (REPO / "gateset").resolve(), args.cache, (REPO / "iconcheck"))
    feats.update({p: gate_study.pool_features(size, p, args.cache) for p in LATER})
    blocks = extract_blocks(size, feats, args.cache)
    pools = [p for p in args.pools.split(",") if p]
    scores: dict[float, dict[str, np.ndarray]] = {}
    with narrow_prior_and_gate():
        for spec in [v for v in args.variants.split(",") if v]:
            wide = widened(feats, blocks, spec)
            for c in [float(v) for v in args.c.split(",") if v]:
                y, groups, held = held_out_scores(wide, None, pools, "0", c=c, mix=0.25)
                scores.setdefault(c, {})[spec] = held
                aucs = {g: float(roc_auc_score(y[groups == g], held[groups == g]))
                        for g in sorted(set(groups) - {"-"})}  # fmt: skip
                scored = ~np.isnan(held)
                pooled = roc_auc_score(y[scored], held[scored])
                cells = " ".join(f"{g.split(':')[1][-14:]}={a:.3f}" for g, a in aucs.items())
                seven = [a for g, a in aucs.items() if not g.startswith(LATER)]
                print(
                    f"loso {size} {spec} ({wide['train']['x'].shape[1]}-d) c={c}: mean / min "
                    f"of the 7 {np.mean(seven):.3f} / {min(seven):.3f}, of all "
                    f"{np.mean(list(aucs.values())):.3f} / {min(aucs.values()):.3f}, "
                    f"pooled {pooled:.3f} | {cells}",
                    flush=True,
                )
                if spec != "last" and "last" in scores[c]:
                    gap, low, high, share = vendor_bootstrap_gap(
                        y, groups, scores[c]["last"], held, args.resamples
                    )
                    print(
                        f"  pooled gap to the last layer {gap:+.3f} (vendors resampled: 90 % "
                        f"{low:+.3f} … {high:+.3f}, better in {share:.0%})",
                        flush=True,
                    )
        if not args.gate_variants:
            return
        print(HEADER)
        base = {"image_size": size, "num_workers": 0, "weights": WEIGHTS}
        name, calibration = _calibrated_by(args.config, _paths(args.calibration_photos))
        for item in args.gate_variants.split(","):
            spec, _, c = item.partition("%")
            wide = widened(feats, blocks, spec)
            config = name if not c else f"{name.split('%')[0]}%{c}/{name.partition('/')[2]}"
            gate_study.build_recipe_model = wide_model_builder(wide["train"]["x"].shape[1])
            try:
                r = run(config, wide, [p.name for p in calibration], base)
            finally:
                gate_study.build_recipe_model = recipes_build
            r["config"] = f"{spec} %{c or '(config)'}"
            print(row(r, size), flush=True)


recipes_build = gate_study.build_recipe_model

if __name__ == "__main__":
    main()
