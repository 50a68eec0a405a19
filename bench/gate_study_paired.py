"""Two configurations of `bench/gate_study.py` side by side: paired bootstrap of their AUC gap.

    nice -n 10 .venv/bin/python bench/gate_study_paired.py --image-size 224 \
        --base "prior+probe+gate-branch+mixpoint@1.0:0.25%0.01/drawpool/iconpool" \
        --candidate "prior+probe+gate-branch+mixpoint@1.0:0.25%0.01/drawpool/iconpool/glyphpool"

Both rows are fitted, calibrated and scored exactly as the gate study's (same cached features);
then the gate set (all, per domain) and the held-out icons are resampled ``--resamples`` times,
harmful and safe images separately (so every resample has both), the same images for both
models, and the candidate's AUC minus the base's is reported with its 90 % interval and the share
of resamples in which the candidate is not worse.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gate_study import LATER_POOLS, extract_all, pool_features, run
from recipe_bench import REPO, WEIGHTS, _calibrated_by, _paths


def paired_gap(
    y: np.ndarray, base: np.ndarray, candidate: np.ndarray, resamples: int, seed: int = 0
) -> tuple[float, float, float, float]:
    """AUC(candidate) - AUC(base), its 5 % and 95 % bootstrap quantiles, P(gap >= 0)."""
    rng = np.random.default_rng(seed)
    harmful, safe = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    gaps = np.empty(resamples)
    for i in range(resamples):
        rows = np.r_[rng.choice(harmful, len(harmful)), rng.choice(safe, len(safe))]
        gaps[i] = roc_auc_score(y[rows], candidate[rows]) - roc_auc_score(y[rows], base[rows])
    gap = roc_auc_score(y, candidate) - roc_auc_score(y, base)
    low, high = np.quantile(gaps, [0.05, 0.95])
    return float(gap), float(low), float(high), float((gaps >= 0).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=160)
    parser.add_argument("--calibration-photos", default="photopool")
    parser.add_argument("--base", required=True)
    parser.add_argument("--candidate", required=True)
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "gate-study")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(2)
    feats = extract_all(args.image_size, REPO / "gateset", args.cache, REPO / "iconcheck")
    feats.update({p: pool_features(args.image_size, p, args.cache) for p in LATER_POOLS})
    base = {"image_size": args.image_size, "num_workers": 0, "weights": WEIGHTS}
    scored = []
    for full in (args.base, args.candidate):
        name, calibration = _calibrated_by(full, _paths(args.calibration_photos))
        scored.append(run(name, feats, [p.name for p in calibration], base))
    gate = [r["gate_scored"] for r in scored]
    domains = np.asarray(gate[0].domains)
    sets = {k: (gate, domains == k) for k in ("photo", "emoji")}
    sets = {"all": (gate, np.ones(len(domains), dtype=bool)), **sets}
    sets["icons"] = ([r["icons"] for r in scored], np.ones(len(scored[0]["icons"].y), dtype=bool))
    print(f"{args.image_size} px, {args.resamples} resamples: {args.candidate} minus {args.base}")
    for key, (pair, mask) in sets.items():
        y = pair[0].y[mask]
        gap, low, high, share = paired_gap(y, pair[0].p[mask], pair[1].p[mask], args.resamples)
        print(f"  {key}: AUC gap {gap:+.3f} (90 % {low:+.3f} … {high:+.3f}; not worse in "
              f"{share:.0%} of resamples)")  # fmt: skip


if __name__ == "__main__":
    main()
