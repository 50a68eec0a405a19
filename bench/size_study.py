"""Input sizes side by side for the main job's model: the measurements of docs/image-size.md.

    nice -n 10 .venv/bin/python bench/size_study.py --sizes 160,192,224 --base 224 --timing 96

Below the table, the development metric per size: the drawing branch's pooled held-out-vendor AUC
(`gate_study.held_out_scores` over the probe's pools) with a vendor-bootstrap gap to ``--base``,
and the safe photos of `lifepool/` and `objectpool/` flagged at the stored threshold.

For every size, the main job's own train settings (conf/default.yaml and the local profile, only
``image_size`` changed) are fitted, calibrated and thresholded by the real code on the cached
pooled features of `bench/gate_study.py` (extracted on first use of a size: minutes), then scored
at the stored threshold on the gate set, the held-out icons (``iconcheck/``), ``lifepool/``'s
everyday safe photos and the mirror's test split. Every AUC is also given as a paired bootstrap
gap to ``--base`` (the same images, harmful and safe resampled separately; 90 % interval). The
untrained prior's gate-set photo AUC per size is printed as a reference.

``--timing N`` also times the size-dependent part of training, side by side in one run: decode,
preset and backbone of N mirror training images per size, the sizes interleaved over
``--rounds`` rounds (median wall and CPU seconds per 100 images and the ratios to ``--base``;
compare rows of one run). ``--timing-only`` skips the models.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from sklearn.metrics import roc_auc_score
from torch.utils.data import DataLoader, Subset

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gate_study import (
    ARCH,
    LATER_POOLS,
    Features,
    extract_all,
    held_out_scores,
    pool_features,
    run,
    study_settings,
    vendor_bootstrap_gap,
)
from gate_study_paired import paired_gap
from recipe_bench import REPO, WEIGHTS, mirror_dataset

from conf.loader import load_settings
from conf.settings import TrainSettings
from harmscan.data import ManifestDataset, read_manifest
from harmscan.heads import final_layer
from harmscan.models import resolve_weights
from harmscan.presets import EvalPreset, TrainPreset
from harmscan.recipes import extract_features, prior_log_odds
from harmscan.trainjob import build_recipe_model
from tasks.recipes import Scored

# The default's configuration in `recipe_bench.config`'s names; `default_base` checks that it
# changes none of the real defaults, so the rows are the main job's model.
DEFAULT = "prior+probe+gate-branch+mixpoint@1.0:0.25%0.01/drawpool/iconpool/glyphpool"
# The development metric's pools (their 10 vendors held out in turn) and the drawing branch's
# prior mix: those of DEFAULT (docs/operating-point.md, docs/colourpool.md).
DEV_POOLS = ("drawpool", "iconpool", "glyphpool")
DEV_MIX = 0.25


def default_base(size: int) -> dict[str, Any]:
    """The main job's train settings at ``size`` px (local profile, no environment)."""
    train = load_settings("local", env={}).train
    base = train.model_dump() | {"image_size": size, "num_workers": 0, "weights": WEIGHTS,
                                 "probe_view_engine": "torch"}  # fmt: skip
    named, real = study_settings(DEFAULT, base), TrainSettings(**base)
    if named != real:
        diff = {k for k in TrainSettings.model_fields if getattr(named, k) != getattr(real, k)}
        raise ValueError(f"{DEFAULT!r} differs from the default train settings in {sorted(diff)}")
    return base


def draft_decode(size: int) -> str:
    """The size Pillow's draft mode decodes a 1024x768 JPEG at for the preset of ``size``."""
    path = Path(tempfile.gettempdir()) / "size-study-1024x768.jpg"
    if not path.is_file():
        Image.new("RGB", (1024, 768), (90, 120, 150)).save(path, quality=90)
    with Image.open(path) as image:
        image.draft("RGB", EvalPreset(image_size=size).draft_size)
        return f"{image.size[0]}x{image.size[1]}"


def prior_photo_auc(feats: Features, size: int) -> float:
    """The untrained prior's (ImageNet harmful-class mass) AUC on the gate set's photos."""
    cfg = TrainSettings(head="prior", weights=WEIGHTS, image_size=size)
    head = final_layer(build_recipe_model(ARCH, resolve_weights(ARCH, WEIGHTS[ARCH]), cfg), ARCH)
    gate = feats["gateset"]
    photo = np.asarray(gate["domain"]) == "photo"
    return float(roc_auc_score(gate["y"][photo], prior_log_odds(head, gate["x"][photo])))


def study(size: int, cache: Path) -> dict[str, Any]:
    """The default's model at ``size``: its scored sets and stored threshold."""
    feats = extract_all(size, REPO / "gateset", cache, REPO / "iconcheck")
    feats.update({p: pool_features(size, p, cache) for p in LATER_POOLS})
    base = default_base(size)
    calibration = [Path(base["calibration_photos"]).name] if base["calibration_photos"] else []
    r = run(DEFAULT, feats, calibration, base, also=("lifepool", "objectpool", "test"))
    r["prior_photo"] = prior_photo_auc(feats, size)
    # The development metric: the drawing branch's held-out-vendor scores over the probe's pools.
    r["dev"] = held_out_scores(feats, None, list(DEV_POOLS), "0", c=base["probe_c"],
                               mix=DEV_MIX)  # fmt: skip
    return r


def dev_row(size: int, r: dict[str, Any], base: dict[str, Any] | None, resamples: int) -> str:
    """Pooled held-out-vendor AUC (gap to ``base`` with a vendor bootstrap) and the everyday safe
    photos flagged at the stored threshold: lifepool's 64, objectpool's 63 (not trained on)."""
    y, groups, scores = r["dev"]
    held = ~np.isnan(scores)
    cells = [str(size), f"{roc_auc_score(y[held], scores[held]):.3f}"]
    if base is None:
        cells.append("—")
    else:
        by, bg, bs = base["dev"]
        if not (np.array_equal(by, y) and np.array_equal(bg, groups)):
            raise ValueError("the sizes' development rows differ: not the same images")
        gap, low, high, share = vendor_bootstrap_gap(y, groups, bs, scores, resamples)
        cells.append(f"{gap:+.3f} ({low:+.3f} … {high:+.3f}, better in {share:.0%})")
    _, life = flagged(r["also"]["lifepool"], r["point"].threshold)
    _, objects = flagged(r["also"]["objectpool"], r["point"].threshold)
    cells += [str(life), str(objects)]
    return "| " + " | ".join(cells) + " |"


def sets(r: dict[str, Any]) -> dict[str, tuple[Scored, np.ndarray]]:
    """The AUCs compared: gate set all / photo / emoji, icons, mirror test (scores, mask)."""
    gate: Scored = r["gate_scored"]
    d = np.asarray(gate.domains)
    every = np.ones(len(d), dtype=bool)
    icons, test = r["icons"], r["also"]["test"]
    return {
        "all": (gate, every),
        "photo": (gate, d == "photo"),
        "emoji": (gate, d == "emoji"),
        "icons": (icons, np.ones(len(icons.y), dtype=bool)),
        "mirror test": (test, np.ones(len(test.y), dtype=bool)),
    }


def auc_cells(r: dict[str, Any], base: dict[str, Any] | None, resamples: int) -> list[str]:
    cells = []
    for key, (s, mask) in sets(r).items():
        auc = roc_auc_score(s.y[mask], s.p[mask])
        if base is None:
            cells.append(f"{auc:.3f}")
            continue
        b, _ = sets(base)[key]
        gap, low, high, _ = paired_gap(s.y[mask], b.p[mask], s.p[mask], resamples)
        cells.append(f"{auc:.3f} ({gap:+.3f}, {low:+.3f} … {high:+.3f})")
    return cells


def flagged(s: Scored, threshold: float, mask: np.ndarray | None = None) -> tuple[int, int]:
    """Harmful caught and safe flagged at ``threshold`` among ``mask``."""
    keep = np.ones(len(s.y), dtype=bool) if mask is None else mask
    hit = (s.p >= threshold) & keep
    return int((hit & (s.y == 1)).sum()), int((hit & (s.y == 0)).sum())


def safe_photo_flags(r: dict[str, Any]) -> np.ndarray:
    """Which of the everyday safe photos (the gate set's, then lifepool's) the model flags."""
    thr = r["point"].threshold
    gate: Scored = r["gate_scored"]
    life: Scored = r["also"]["lifepool"]
    keep = (np.asarray(gate.domains) == "photo") & (gate.y == 0)
    return np.r_[gate.p[keep] >= thr, life.p[life.y == 0] >= thr]


def discordant(r: dict[str, Any], base: dict[str, Any]) -> str:
    """Safe photos flagged by one model only (this, base) and the exact two-sided McNemar p."""
    from scipy.stats import binomtest

    mine, theirs = safe_photo_flags(r), safe_photo_flags(base)
    only_mine, only_theirs = int((mine & ~theirs).sum()), int((theirs & ~mine).sum())
    n = only_mine + only_theirs
    p = binomtest(only_mine, n, 0.5).pvalue if n else 1.0
    return f"{only_mine} / {only_theirs} (p {p:.3f})"


def row(size: int, r: dict[str, Any], base: dict[str, Any] | None, resamples: int) -> str:
    thr = r["point"].threshold
    gate: Scored = r["gate_scored"]
    photo = np.asarray(gate.domains) == "photo"
    caught, false = flagged(gate, thr)
    _, photos = flagged(gate, thr, photo)
    _, life = flagged(r["also"]["lifepool"], thr)
    test = r["test"]
    cells = [str(size), draft_decode(size), *auc_cells(r, base, resamples)]
    cells += [f"{caught}/{false}", f"{photos} + {life} = {photos + life}",
              f"{test['all_recall']:.2f}/{test['all_safe_flagged']:.2f}",
              f"{r['prior_photo']:.3f}", "—" if base is None else discordant(r, base)]  # fmt: skip
    return "| " + " | ".join(cells) + " |"


HEADER = (
    "| px | 1024x768 decodes at | AUC all (gap to base, 90 %) | photo | emoji | icons | "
    "mirror test | caught/flagged of 42/325 | safe photos flagged gate + lifepool (85 + 64) | "
    "mirror test recall/flagged | prior photo AUC | safe photos flagged by this / base only |\n"
    + "|---" * 12
    + "|"
)


def timing(sizes: list[int], count: int, rounds: int) -> dict[int, tuple[float, float]]:
    """Median wall and CPU seconds (this process, all threads) per 100 mirror training images
    (decode, preset, backbone) per size; CPU is what a shared machine distorts least."""
    cfg = TrainSettings(head="prior", weights=WEIGHTS)
    model = build_recipe_model(ARCH, resolve_weights(ARCH, WEIGHTS[ARCH]), cfg)
    seconds: dict[int, list[tuple[float, float]]] = {s: [] for s in sizes}
    with tempfile.TemporaryDirectory(prefix="size-study-") as tmp:
        dataset = mirror_dataset(Path(tmp))
        frame = read_manifest(dataset)
        for _ in range(rounds):
            for size in sizes:
                preset = TrainPreset(image_size=size, augment=False).eval_preset
                data = ManifestDataset(dataset, "train", preset, frame)
                loader = DataLoader(Subset(data, range(count)), batch_size=32)
                wall, cpu = time.perf_counter(), time.process_time()
                extract_features(model, ARCH, loader, torch.device("cpu"))
                seconds[size].append(((time.perf_counter() - wall) * 100 / count,
                                      (time.process_time() - cpu) * 100 / count))  # fmt: skip
    return {s: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
            for s, v in seconds.items()}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="160,192,224")
    parser.add_argument("--base", type=int, default=224, help="the size the gaps are against")
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--timing", type=int, default=0, help="images per size to time (0: none)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timing-only", action="store_true", help="no models, --timing alone")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "gate-study")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(2)
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.base not in sizes:
        raise SystemExit(f"--base {args.base} is not one of --sizes {args.sizes}")
    if not args.timing_only:
        results = {size: study(size, args.cache) for size in sizes}
        print(f"the main job's default ({DEFAULT}) per size; gaps: size minus {args.base} px, "
              f"{args.resamples} paired resamples")  # fmt: skip
        print(HEADER)
        for size in sizes:
            base = None if size == args.base else results[args.base]
            print(row(size, results[size], base, args.resamples), flush=True)
        print(f"\ndevelopment metric: the drawing branch's pooled held-out-vendor AUC over "
              f"{', '.join(DEV_POOLS)} (gap to {args.base} px, vendors resampled, 90 %), and "
              "the safe photos flagged of lifepool's 64 and objectpool's 63")  # fmt: skip
        print("| px | held-out-vendor AUC | gap | lifepool flagged | objectpool flagged |\n"
              "|---|---|---|---|---|")  # fmt: skip
        for size in sizes:
            base = None if size == args.base else results[args.base]
            print(dev_row(size, results[size], base, args.resamples), flush=True)
    count = args.timing or (128 if args.timing_only else 0)
    if count:
        per = timing(sizes, count, args.rounds)
        print(f"training features, {count} mirror images x {args.rounds} rounds "
              "(machine shared):")  # fmt: skip
        (wall, cpu) = per[args.base]
        for size in sizes:
            print(
                f"  {size} px: {per[size][0]:.2f} s wall, {per[size][1]:.2f} s CPU per 100 "
                f"images: {per[size][0] / wall:.2f}x / {per[size][1] / cpu:.2f}x {args.base} px"
            )


if __name__ == "__main__":
    main()
