"""Does a candidate pool rank unseen vendors' drawings better? Held-out-vendor AUC with and without.

The development metric of docs/colourpool.md and docs/vendorpool.md: the drawing branch (ImageNet
prior ``--mix`` + the linear probe, `gate_study.held_out_scores`, no views) scored on each vendor
left out in turn, once trained on the base pools and once with the candidate pool added. The
candidate's families are held out **with their kin** (``KIN`` of its catalogue module,
`gateset_build.attribution.CATALOGUES`: ``colour_pool`` holds the Streamline colour styles out
with Streamline Emojis and ``emojione-v1`` with EmojiOne 2.2; ``vendor_pool``'s vendors have no
kin), so no fold counts a vendor as unseen while its other style trains.

Judged: the base pools' images, the same in both arms (pooled gap with a vendor bootstrap,
`gate_study.vendor_bootstrap_gap`, and the per-vendor mean). Beside it, all vendors (base and
candidate): without the candidate in training its images are scored by the probe trained on all
base pools (unseen by construction for a candidate without kin). Features are gate_study's cache
(``--cache``), so a second run takes seconds::

    nice -n 10 .venv/bin/python bench/pool_study.py --image-size 160 --candidate vendorpool
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from draw_icons import ICON_SETS
from gate_study import (
    LATER_POOLS,
    REPO,
    extract_all,
    held_out_scores,
    pool_features,
    vendor_bootstrap_gap,
)
from gateset_build.attribution import CATALOGUES
from gateset_build.sources import SOURCES


def kin_groups(feats: dict, base: list[str], candidate: str) -> dict[str, str]:
    """``<candidate>:<source>`` -> the base pools' ``<pool>:<source>`` of its vendor's kin."""
    if candidate not in CATALOGUES:
        raise ValueError(f"no catalogue module for {candidate!r}; valid: {sorted(CATALOGUES)}")
    kin_of = importlib.import_module(CATALOGUES[candidate]).KIN
    by_source = {s: f"{p}:{s}" for p in base for s in set(feats[p]["source"])}
    out = {}
    for family, kin in kin_of.items():
        mine = SOURCES[ICON_SETS[family][0]].label
        theirs = SOURCES[ICON_SETS[kin][0] if kin in ICON_SETS else kin].label
        if theirs not in by_source:
            raise ValueError(f"{family}'s kin {kin} ({theirs}) is in none of the pools {base}")
        out[f"{candidate}:{mine}"] = by_source[theirs]
    return out


def per_vendor(y: np.ndarray, groups: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """Held-out AUC per group (the mirror's rows, ``-``, are never held out)."""
    return {g: float(roc_auc_score(y[groups == g], scores[groups == g]))
            for g in sorted(set(groups) - {"-"})}  # fmt: skip


def short(group: str) -> str:
    """``pool:@scope/name@1.2`` -> ``name``."""
    return group.split(":", 1)[1].rsplit("@", 1)[0].split("/")[-1]


def summary(label: str, y: np.ndarray, groups: np.ndarray, scores: np.ndarray) -> str:
    """``label: mean, min, pooled | per vendor`` over the rows with a score."""
    held = ~np.isnan(scores)
    aucs = per_vendor(y[held], groups[held], scores[held])
    cells = " ".join(f"{short(g)}={a:.3f}" for g, a in aucs.items())
    return (f"{label}: mean {np.mean(list(aucs.values())):.3f} min {min(aucs.values()):.3f} "
            f"pooled {roc_auc_score(y[held], scores[held]):.3f} | {cells}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=160)
    parser.add_argument("--base", default="drawpool,iconpool,glyphpool")
    parser.add_argument("--candidate", default="colourpool", choices=sorted(CATALOGUES))
    parser.add_argument("--mix", type=float, default=0.25, help="the drawing branch's prior")
    parser.add_argument("--resamples", type=int, default=2000, help="vendor bootstrap")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "gate-study")
    args = parser.parse_args()
    size, base, cand = args.image_size, args.base.split(","), args.candidate
    feats = extract_all(size, (REPO / "gateset").resolve(), args.cache, REPO / "iconcheck")
    feats.update({p: pool_features(size, p, args.cache) for p in LATER_POOLS})
    pools = [*base, cand]
    y0, g0, s0 = held_out_scores(feats, None, base, "0", c=0.01, mix=args.mix)
    kin = kin_groups(feats, base, cand)
    y1, g1, s1 = held_out_scores(feats, None, pools, "0", c=0.01, mix=args.mix, kin=kin)
    # the candidate's rows scored without it in training: one fold holds all of them out
    unseen = {f"{cand}:{s}": f"{cand}:*" for s in set(feats[cand]["source"])}
    _, _, s_out = held_out_scores(feats, None, pools, "0", c=0.01, mix=args.mix, kin=unseen)
    n = len(y0)  # the base pools' rows come first in both arms, in the same order
    assert np.array_equal(y1[:n], y0)
    assert np.array_equal(g1[:n], g0)
    print(summary(f"{size} px base vendors, base", y0, g0, s0), flush=True)
    print(summary(f"{size} px base vendors, + {cand}", y0, g0, s1[:n]), flush=True)
    gap, low, high, share = vendor_bootstrap_gap(y0, g0, s0, s1[:n], args.resamples)
    print(f"  pooled gap {gap:+.3f} (vendors resampled: 90 % {low:+.3f} … {high:+.3f}, "
          f"better in {share:.0%})")  # fmt: skip
    folds = np.array([kin.get(g, g) for g in g1])  # the candidate's rows grouped with their kin
    both = np.r_[s0, s_out[n:]]
    print(summary(f"{size} px all vendors, base", y1, folds, both), flush=True)
    print(summary(f"{size} px all vendors, + {cand}", y1, folds, s1), flush=True)
    gap, low, high, share = vendor_bootstrap_gap(y1, folds, both, s1, args.resamples)
    print(f"  pooled gap {gap:+.3f} (vendors resampled: 90 % {low:+.3f} … {high:+.3f}, "
          f"better in {share:.0%})")  # fmt: skip
    own = slice(n, None)
    print(summary(f"  {cand}'s own drawings, + {cand} (held out with kin)", y1[own],
                  folds[own], s1[own]))  # fmt: skip


if __name__ == "__main__":
    main()
