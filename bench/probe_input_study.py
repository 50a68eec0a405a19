"""Does the drawing probe rank unseen vendors better on transformed features or style copies?

    nice -n 10 .venv/bin/python bench/probe_input_study.py --image-size 160

Two standard recipes against the ranking limit of the drawing branch (prior 0.25 + linear probe,
`harmscan.recipes.fit_probe`), on `bench/gate_study.py`'s cached pooled features:

- **feature transforms** that the probe reads instead of the 1280-d pooled features (the prior
  keeps reading them): the signed square root ("power normalisation", Perronnin, Sanchez and
  Mensink, ECCV 2010; the Hellinger kernel of RootSIFT, Arandjelovic and Zisserman, CVPR 2012),
  alone, L2-normalised or beside the features; L2 normalisation alone; ``log1p``.
- **style copies** of every training drawing added as extra probe rows: grayscale, a one-colour
  silhouette, inverted, posterised to 2 bits, an outline drawing; each, and in combinations.
  Each copy's features are extracted once (cached under ``--cache``).

The metric is the development metric of `bench/layer_study.py`: held-out-vendor AUC over the
10 sources of ``--pools`` (each source left out of the probe's rows, copies included, and scored
clean), pooled, with the vendor bootstrap of the gap to the plain probe
(`gate_study.vendor_bootstrap_gap`).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter, ImageOps
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gate_study
from gate_study import ARCH, Features, extract_all, vendor_bootstrap_gap
from recipe_bench import REPO, WEIGHTS, mirror_dataset

from conf.settings import TrainSettings
from harmscan.data import ManifestDataset, read_manifest
from harmscan.gateset import load_photo_set
from harmscan.heads import final_layer
from harmscan.models import resolve_weights
from harmscan.presets import TrainPreset
from harmscan.recipes import fit_probe, prior_log_odds
from harmscan.trainjob import build_recipe_model
from harmscan.trainsets import PoolDataset

Transform = Callable[[np.ndarray], np.ndarray]


def _root(x: np.ndarray) -> np.ndarray:
    return np.sqrt(np.clip(x, 0.0, None))


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-6)


TRANSFORMS: dict[str, Transform] = {
    "none": lambda x: x,
    "sqrt": _root,
    "sqrt-l2": lambda x: _unit(_root(x)),
    "l2": _unit,
    "both": lambda x: np.concatenate([x, _root(x)], axis=1),
    "log1p": lambda x: np.log1p(np.clip(x, 0.0, None) * 10),
}


def silhouette(image: Image.Image) -> Image.Image:
    """Black wherever a pixel differs from the corners' median colour (the background)."""
    rgb = np.asarray(image.convert("RGB")).astype(np.int16)
    corners = np.stack([rgb[0, 0], rgb[0, -1], rgb[-1, 0], rgb[-1, -1]])
    shape = np.abs(rgb - np.median(corners, axis=0)).sum(axis=2) > 60
    return Image.fromarray(np.where(shape, 0, 255).astype(np.uint8)).convert("RGB")


STYLES: dict[str, Callable[[Image.Image], Image.Image]] = {
    "gray": lambda im: ImageOps.grayscale(im.convert("RGB")).convert("RGB"),
    "mono": silhouette,
    "invert": lambda im: ImageOps.invert(im.convert("RGB")),
    "poster": lambda im: ImageOps.posterize(im.convert("RGB"), 2),
    "edges": lambda im: ImageOps.invert(
        ImageOps.grayscale(im.convert("RGB")).filter(ImageFilter.FIND_EDGES)
    ).convert("RGB"),
}


def style_features(size: int, pools: list[str], cache: Path) -> dict[str, np.ndarray]:
    """Per style: pooled features of the styled training rows (mirror train split, then each
    pool), in `held_out` order; cached by size, pools and each pool's version."""
    versions = "-".join(load_photo_set(REPO / p).version[:8] for p in pools)
    cfg = TrainSettings(image_size=size, num_workers=0, weights=WEIGHTS, head="prior")
    model = build_recipe_model(ARCH, resolve_weights(ARCH, WEIGHTS[ARCH]), cfg)
    preset = TrainPreset(image_size=size, augment=False).eval_preset
    out = {}
    for name, style in STYLES.items():
        path = cache / f"{ARCH}-{size}-style-{name}-{versions}.npz"
        if path.is_file():
            with np.load(path) as data:
                out[name] = data["x"]
            continue

        def styled(image: Image.Image, style: Callable = style) -> torch.Tensor:
            return preset(style(image))

        with tempfile.TemporaryDirectory(prefix="probe-input-") as tmp:
            dataset = mirror_dataset(Path(tmp))
            data = ManifestDataset(dataset, "train", styled, read_manifest(dataset))
            parts = [gate_study._features(model, data, [])["x"]]
        for pool in pools:
            data = PoolDataset(load_photo_set(REPO / pool), styled)
            parts.append(gate_study._features(model, data, [])["x"])
        out[name] = np.concatenate(parts)
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(path, x=out[name])
        print(f"{size} px {name}: {len(out[name])} styled images", flush=True)
    return out


def held_out(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, prior: np.ndarray, *,
    transform: Transform, copies: list[tuple[np.ndarray, np.ndarray]], c: float,
) -> np.ndarray:  # fmt: skip
    """Held-out-vendor log-odds: each source in turn left out of the probe's rows (its
    ``copies``: (features, prior log-odds) per style, too) and its clean images scored."""
    tx = transform(np.concatenate([x, *(f for f, _ in copies)]))
    ty, tg = np.tile(y, 1 + len(copies)), np.tile(groups, 1 + len(copies))
    tp = np.concatenate([prior, *(p for _, p in copies)])
    scores = np.full(len(y), np.nan)
    for g in sorted(set(groups) - {"-"}):
        keep, held = tg != g, groups == g
        fit = fit_probe(tx[keep], ty[keep], c=c, prior=tp[keep], prior_mix=0.25)
        scores[held] = fit.log_odds(tx[: len(y)][held], prior[held])
    return scores


def report(name: str, y: np.ndarray, groups: np.ndarray, scores: np.ndarray,
           base: np.ndarray | None, resamples: int) -> str:  # fmt: skip
    """One line: pooled, mean and worst per-vendor AUC, and the gap to ``base``."""
    scored = ~np.isnan(scores)
    aucs = [roc_auc_score(y[groups == g], scores[groups == g]) for g in sorted(set(groups) - {"-"})]
    line = (f"{name}: pooled {roc_auc_score(y[scored], scores[scored]):.4f}, "
            f"mean / min of {len(aucs)} vendors {np.mean(aucs):.4f} / {min(aucs):.4f}")  # fmt: skip
    if base is not None:
        gap, low, high, share = vendor_bootstrap_gap(y, groups, base, scores, resamples)
        line += f" | gap {gap:+.4f} (90 % {low:+.4f} … {high:+.4f}), better in {share:.0%}"
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=160)
    parser.add_argument("--pools", default="drawpool,iconpool,glyphpool", help="the probe's pools")
    parser.add_argument("--c", type=float, default=0.01, help="probe_c")
    parser.add_argument("--resamples", type=int, default=2000, help="vendor bootstrap of gaps")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "gate-study")
    args = parser.parse_args()
    torch.set_num_threads(2)
    size, pools = args.image_size, [p for p in args.pools.split(",") if p]
    feats: Features = extract_all(
        size, (REPO / "gateset").resolve(), args.cache, REPO / "iconcheck"
    )
    feats.update(
        {p: gate_study.pool_features(size, p, args.cache) for p in pools if p not in feats}
    )
    clean = [feats["train"], *(feats[p] for p in pools)]
    x, y = np.concatenate([p["x"] for p in clean]), np.concatenate([p["y"] for p in clean])
    groups = np.array(["-"] * len(feats["train"]["y"])
                      + [f"{p}:{s}" for p in pools for s in feats[p]["source"]])  # fmt: skip
    cfg = TrainSettings(head="prior", weights=WEIGHTS)
    head = final_layer(build_recipe_model(ARCH, resolve_weights(ARCH, WEIGHTS[ARCH]), cfg), ARCH)
    prior = prior_log_odds(head, x)
    base = held_out(x, y, groups, prior, transform=TRANSFORMS["none"], copies=[], c=args.c)
    print(f"{size} px, probe_c {args.c}, the probe's rows: {len(y)}; feature transforms:")
    for name, transform in TRANSFORMS.items():
        scores = held_out(x, y, groups, prior, transform=transform, copies=[], c=args.c)
        print("  " + report(name, y, groups, scores, None if name == "none" else base,
                            args.resamples), flush=True)  # fmt: skip
    styled = style_features(size, pools, args.cache)
    copies = {k: (v, prior_log_odds(head, v)) for k, v in styled.items()}
    combos = [[k] for k in STYLES] + [["gray", "mono"], ["gray", "mono", "invert"], list(STYLES)]
    print("style copies added to the probe's rows:")
    for combo in combos:
        scores = held_out(x, y, groups, prior, transform=TRANSFORMS["none"],
                          copies=[copies[k] for k in combo], c=args.c)  # fmt: skip
        print("  " + report("+".join(combo), y, groups, scores, base, args.resamples), flush=True)


if __name__ == "__main__":
    main()
