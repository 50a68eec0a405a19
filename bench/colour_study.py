"""Does a colour pool rank unseen vendors' drawings better? Held-out-vendor AUC with and without it.

The development metric of docs/colourpool.md: the drawing branch (ImageNet prior ``--mix`` +
the linear probe, `gate_study.held_out_scores`, no views) scored on each vendor of the base pools
left out in turn, once trained on the base pools and once with the candidate pool added. The
candidate's families are held out **with their kin** (`scripts/colour_pool.py` ``KIN``: the
Streamline colour styles with Streamline Emojis, ``emojione-v1`` with EmojiOne 2.2), so no fold
counts a vendor as unseen while its other style trains. Both arms are scored on the same images,
the base pools'; the candidate pool's own held-out AUC is printed beside, not judged. The gap
comes with a vendor bootstrap (`gate_study.vendor_bootstrap_gap`). Features are gate_study's
cache (``--cache``), so a second run takes seconds::

    nice -n 10 .venv/bin/python bench/colour_study.py --image-size 160
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from colour_pool import KIN
from draw_icons import ICON_SETS
from gate_study import (
    LATER_POOLS,
    REPO,
    extract_all,
    held_out_scores,
    pool_features,
    vendor_bootstrap_gap,
)
from gateset_build.sources import SOURCES


def kin_groups(feats: dict, base: list[str], candidate: str) -> dict[str, str]:
    """``<candidate>:<source>`` -> the base pools' ``<pool>:<source>`` of its vendor's kin."""
    by_source = {s: f"{p}:{s}" for p in base for s in set(feats[p]["source"])}
    out = {}
    for family, kin in KIN.items():
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=160)
    parser.add_argument("--base", default="drawpool,iconpool,glyphpool")
    parser.add_argument("--candidate", default="colourpool")
    parser.add_argument("--mix", type=float, default=0.25, help="the drawing branch's prior")
    parser.add_argument("--resamples", type=int, default=2000, help="vendor bootstrap")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "gate-study")
    args = parser.parse_args()
    size, base = args.image_size, args.base.split(",")
    feats = extract_all(size, (REPO / "gateset").resolve(), args.cache, REPO / "iconcheck")
    feats.update({p: pool_features(size, p, args.cache) for p in LATER_POOLS})
    y0, g0, s0 = held_out_scores(feats, None, base, "0", c=0.01, mix=args.mix)
    kin = kin_groups(feats, base, args.candidate)
    y1, g1, s1 = held_out_scores(feats, None, [*base, args.candidate], "0", c=0.01,
                                 mix=args.mix, kin=kin)  # fmt: skip
    n = len(y0)  # the base pools' rows come first in both arms, in the same order
    assert np.array_equal(y1[:n], y0)
    assert np.array_equal(g1[:n], g0)
    for name, scores in (("base", s0), (f"+ {args.candidate}", s1[:n])):
        aucs = per_vendor(y0, g0, scores)
        held = ~np.isnan(scores)
        cells = " ".join(f"{short(g)}={a:.3f}" for g, a in aucs.items())
        print(f"{size} px {name}: mean {np.mean(list(aucs.values())):.3f} min "
              f"{min(aucs.values()):.3f} pooled {roc_auc_score(y0[held], scores[held]):.3f} | "
              f"{cells}", flush=True)  # fmt: skip
    gap, low, high, share = vendor_bootstrap_gap(y0, g0, s0, s1[:n], args.resamples)
    print(f"  pooled gap {gap:+.3f} (vendors resampled: 90 % {low:+.3f} … {high:+.3f}, "
          f"better in {share:.0%})")  # fmt: skip
    own_y, own_g, own_s = y1[n:], np.array([kin[g] for g in g1[n:]]), s1[n:]
    cells = " ".join(f"{short(g)}={roc_auc_score(own_y[own_g == g], own_s[own_g == g]):.3f}"
                     for g in sorted(set(own_g)))  # fmt: skip
    print(f"  {args.candidate} held out with its kin: pooled "
          f"{roc_auc_score(own_y, own_s):.3f} | {cells}")  # fmt: skip


if __name__ == "__main__":
    main()
