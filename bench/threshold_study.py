"""Where the drawing branch's threshold should sit: rules judged by leaving one vendor out.

``score`` trains the main job's model as `train_and_register` does (``prepare_job``, the recipe;
the local profile's settings with ``train.cross_fit: sources`` so that every pool image is also
scored by a probe fitted without its source package; the cross-fit changes no weight of the
model) on an ETL dataset folder at each ``--image-sizes``, then scores with the uncalibrated
model the calibration mix (validation split + ``train.calibration_photos``), the gate set and
the held-out icons, recording each image's gate and branch log-odds; all of it is saved to
``--cache`` (the model is deterministic: only thresholds change afterwards).

``study`` then chooses the drawing threshold by each rule (`RULES`; the photo branch's is
today's) and prints, per rule and size: the development metric — every source package held out
in turn, the threshold chosen by the rule on what remains (the calibration mix and the other
sources' out-of-fold scores), the held-out package's harmful recall and safe false-alarm rate at
that threshold (mean, worst, pooled) — and, to confirm only, the gate set's and the held-out
icons' caught / flagged at the stored threshold (overall, photo, emoji) and their ROC AUC.

    nice -n 10 .venv/bin/python bench/threshold_study.py score --dataset <dataset> \
        --cache /tmp/threshold-study --image-sizes 160,224
    .venv/bin/python bench/threshold_study.py study --cache /tmp/threshold-study
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

ARCH = "mobilenet_v2"
SETS = ("mix", "gate", "icons")


def score(dataset: Path, cache: Path, size: int) -> Path:
    """Train at ``size`` px and save every set's labels, domains and branch log-odds."""
    from conf.loader import load_settings
    from harmscan.gateset import resolve_photo_set
    from harmscan.presets import EvalPreset
    from harmscan.trainjob import prepare_job
    from harmscan.transfer import train_recipe
    from tasks.recipes import score_photo_set
    from tasks.training import _scored, default_domain

    out = cache / f"{ARCH}-{size}.npz"
    if out.is_file():
        return out
    overrides = {"train.image_size": size, "train.epochs": 3, "train.num_workers": 0,
                 "train.cross_fit": "sources"}  # fmt: skip
    settings = load_settings("local", overrides)
    job = prepare_job(settings, ARCH, dataset)
    outcome = train_recipe(job.model, ARCH, job.data, job.settings.train, device=job.device,
                           class_weights=job.class_weights)  # fmt: skip
    cfg = job.settings.train
    preset = EvalPreset(image_size=cfg.image_size)
    kw = {"preset": preset, "batch_size": cfg.batch_size, "device": job.device}
    val = _scored(job.model, job.dataset, "val", job.frame, default_domain(job.settings), **kw)
    photos = score_photo_set(job.model, resolve_photo_set(cfg.calibration_photos), preset)
    sets = {
        "mix": val + photos,
        "gate": score_photo_set(job.model, resolve_photo_set("gateset"), preset),
        "icons": score_photo_set(job.model, resolve_photo_set("iconcheck"), preset),
    }
    assert outcome.out_of_fold is not None
    oof_y, oof_branches = outcome.out_of_fold
    groups = job.data.groups or [None] * len(oof_y)
    arrays: dict[str, Any] = {
        "oof_y": oof_y,
        "oof_branches": oof_branches,
        "oof_domains": np.asarray(job.train_domains),
        "oof_groups": np.asarray(["" if g is None else g for g in groups]),
        "mix_n_val": len(val.y),
    }
    for name, s in sets.items():
        arrays |= {f"{name}_y": s.y, f"{name}_p": s.p, f"{name}_domains": np.asarray(s.domains),
                   f"{name}_branches": s.branches}  # fmt: skip
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(out, **arrays)
    return out


# --- the study: pure numpy on the saved scores ------------------------------------------------

Rule = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], float]


def _rules() -> dict[str, Rule]:
    """name: f(val drawings' y, calibrated drawing log-odds, out-of-fold drawings' y, log-odds)
    -> the drawing threshold in calibrated log-odds."""
    from harmscan.branchpoint import branch_threshold, false_alarm_threshold

    def recall(y: np.ndarray, z: np.ndarray) -> float:
        return branch_threshold(y, z, target_recall=0.90, max_safe_flagged=0.10)

    def rate(a: float) -> Rule:
        return lambda vy, vz, oy, oz: false_alarm_threshold(np.r_[vy, oy], np.r_[vz, oz], rate=a)

    return {
        "R0 recall 0.90 on val (today)": lambda vy, vz, oy, oz: recall(vy, vz),
        "R1 recall 0.90 on val + out-of-fold (cross_fit sources)": lambda vy, vz, oy, oz: recall(
            np.r_[vy, oy], np.r_[vz, oz]
        ),
        "R3 recall 0.90 on out-of-fold only": lambda vy, vz, oy, oz: recall(oy, oz),
        "R2 false-alarm 0.10 (val + out-of-fold safe)": rate(0.10),
        "R2 false-alarm 0.075": rate(0.075),
        "R2 false-alarm 0.05": rate(0.05),
    }


def _margin(branches: np.ndarray, t: float, b: float, photo: float, drawing: float) -> np.ndarray:
    """The folded model's served log-odds minus the stored threshold's: the gate-blended margins
    to each branch's threshold (flagged at >= 0; the branch shifts also move the ranking)."""
    g, p, d = branches[:, 0], branches[:, 1], branches[:, 2]
    return g * (p / t + b - photo) + (1 - g) * (d / t + b - drawing)


def _flagged(branches: np.ndarray, t: float, b: float, photo: float, drawing: float) -> np.ndarray:
    """The folded model's verdicts at the stored threshold."""
    return _margin(branches, t, b, photo, drawing) >= 0


def study(cache: Path, sizes: list[int], rules: dict[str, Rule] | None = None) -> None:
    """Print the development metric and the confirming sets per rule and size."""
    from harmscan.branchpoint import choose_branch_point
    from harmscan.calibration import choose_operating_point, log_odds
    from harmscan.metrics import binary_metrics

    rules = rules or _rules()
    from conf.loader import load_settings

    cfg = load_settings("local", {}).train
    print("| px | rule | drawing thr (prob) | dev: held-out sources' recall mean / worst / pooled "
          "| dev: safe flagged mean / worst / pooled | gate caught (emoji, photo) | gate flagged "
          "(emoji, photo) | gate AUC (served) | icons caught | icons flagged |")  # fmt: skip
    print("|---" * 10 + "|")
    for size in sizes:
        a = np.load(cache / f"{ARCH}-{size}.npz")
        my, mp, md, mb = a["mix_y"], a["mix_p"], list(a["mix_domains"]), a["mix_branches"]
        point = choose_operating_point(
            my, mp, md, photo_share=cfg.calibration_photo_share, target_recall=cfg.target_recall,
            band=cfg.review_band, method=cfg.calibration, max_safe_flagged=cfg.max_safe_flagged,
        )  # fmt: skip
        base = choose_branch_point(
            my, mb, md, point, target_recall=cfg.target_recall,
            max_safe_flagged=cfg.max_safe_flagged, photo_threshold_on=cfg.gate_photo_threshold_on,
            photo_share=cfg.calibration_photo_share,
        )  # fmt: skip
        t, b = point.temperature, point.bias
        photo = float(log_odds(base.photo_threshold))
        drawn = np.array([d != "photo" for d in md])
        vy, vz = my[drawn], mb[drawn, 2] / t + b
        oy, ob = a["oof_y"], a["oof_branches"]
        ok = ~np.isnan(ob).any(axis=1) & (a["oof_domains"] != "photo")
        groups = a["oof_groups"]
        oz = ob[:, 2] / t + b
        sources = sorted({str(g) for g in groups[ok] if g})
        print(f"<!-- {size} px: T {t:.3f} bias {b:+.3f} stored {point.threshold:.4f} photo thr "
              f"{base.photo_threshold:.4f} R0 drawing thr {base.drawing_threshold:.4f}; "
              f"{len(sources)} sources, {int(ok.sum())} out-of-fold drawings -->")  # fmt: skip
        kept: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name, rule in rules.items():
            drawing = rule(vy, vz, oy[ok], oz[ok])
            rec, far, hit, nh, fl, ns = [], [], 0, 0, 0, 0
            counts = []  # per source: caught, harmful, flagged, safe
            for s in sources:
                rest, held = ok & (groups != s), ok & (groups == s)
                thr = rule(vy, vz, oy[rest], oz[rest])
                f = _flagged(ob[held], t, b, photo, thr)
                yh = oy[held]
                if (yh == 1).any():
                    rec.append(f[yh == 1].mean())
                if (yh == 0).any():
                    far.append(f[yh == 0].mean())
                hit, nh = hit + int(f[yh == 1].sum()), nh + int((yh == 1).sum())
                fl, ns = fl + int(f[yh == 0].sum()), ns + int((yh == 0).sum())
                counts.append(
                    (f[yh == 1].sum(), (yh == 1).sum(), f[yh == 0].sum(), (yh == 0).sum())
                )
            gate_f = _flagged(a["gate_branches"], t, b, photo, drawing)
            kept[name] = (np.asarray(counts, dtype=np.float64), gate_f)
            cells = []
            for key in ("gate", "icons"):
                y, br, dom = a[f"{key}_y"], a[f"{key}_branches"], a[f"{key}_domains"]
                f = _flagged(br, t, b, photo, drawing)
                per = {
                    d: (int(f[(y == 1) & (dom == d)].sum()), int(f[(y == 0) & (dom == d)].sum()))
                    for d in sorted(set(dom))
                }
                caught = f"{int(f[y == 1].sum())}/{int((y == 1).sum())}"
                flagged = f"{int(f[y == 0].sum())}/{int((y == 0).sum())}"
                if key == "gate":
                    served = 1 / (1 + np.exp(-_margin(br, t, b, photo, drawing)))
                    auc = binary_metrics(y, served)["auc"]
                    cells += [
                        f"{caught} ({', '.join(str(v[0]) for v in per.values())})",
                        f"{flagged} ({', '.join(str(v[1]) for v in per.values())})",
                        f"{auc:.4f}",
                    ]
                else:
                    cells += [caught, flagged]
            print(
                f"| {size} | {name} | {1 / (1 + np.exp(-drawing)):.4f} | "
                f"{np.mean(rec):.3f} / {np.min(rec):.3f} / {hit}/{nh} | "
                f"{np.mean(far):.3f} / {np.max(far):.3f} / {fl}/{ns} | " + " | ".join(cells) + " |",
                flush=True,
            )
        print(f"<!-- sources: {', '.join(sources)} -->")
        for line in _paired(kept, a["gate_y"], size):
            print(line)
        print(
            f"<!-- {size} px, diagnostic only (chooses nothing): {_reachable(a, t, b, photo)} -->"
        )


def _paired(
    kept: dict[str, tuple[np.ndarray, np.ndarray]], y: np.ndarray, size: int, reps: int = 2000
) -> list[str]:
    """Each rule against the first (today's), paired 95 % bootstrap intervals: held-out pooled
    recall and false alarms resampling the sources (a cluster bootstrap), and the gate set's
    caught and flagged shares resampling its images within each label."""
    rng = np.random.default_rng(0)
    names = list(kept)
    base_counts, base_gate = kept[names[0]]
    n_src = base_counts.shape[0]
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    picks = [rng.integers(0, n_src, n_src) for _ in range(reps)]
    gate_picks = [(rng.choice(pos, pos.size), rng.choice(neg, neg.size)) for _ in range(reps)]
    out = []
    for name in names[1:]:
        counts, gate = kept[name]
        dev = np.array(
            [
                [
                    (counts[i, 0].sum() - base_counts[i, 0].sum()) / max(counts[i, 1].sum(), 1),
                    (counts[i, 2].sum() - base_counts[i, 2].sum()) / max(counts[i, 3].sum(), 1),
                ]
                for i in picks
            ]
        )
        gd = np.array(
            [
                [
                    gate[p].mean() - base_gate[p].mean(),
                    gate[n].mean() - base_gate[n].mean(),
                ]
                for p, n in gate_picks
            ]
        )
        lo, hi = np.percentile(dev, [2.5, 97.5], axis=0)
        glo, ghi = np.percentile(gd, [2.5, 97.5], axis=0)
        out.append(
            f"| {size} | {name} | recall [{lo[0]:+.3f}, {hi[0]:+.3f}] | false alarms "
            f"[{lo[1]:+.3f}, {hi[1]:+.3f}] | gate caught [{glo[0]:+.3f}, {ghi[0]:+.3f}] | "
            f"gate flagged [{glo[1]:+.3f}, {ghi[1]:+.3f}] |"
        )
    return out


def _reachable(a: Any, t: float, b: float, photo: float, need: int = 36) -> str:
    """The fewest gate-set safe images flagged by any drawing threshold (the photo branch's as
    chosen) that catches ``need`` harmful ones: whether a threshold alone can meet the target."""
    y, br = a["gate_y"], a["gate_branches"]
    best = None
    for d in np.sort(br[:, 2] / t + b):
        f = _flagged(br, t, b, photo, float(d))
        if int(f[y == 1].sum()) >= need:
            best = int(f[y == 0].sum())
    if best is None:
        return f"no drawing threshold catches {need} gate-set harmful images"
    return f"catching {need}/{int((y == 1).sum())} gate-set harmful needs >= {best} safe flagged"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("score", "study"))
    parser.add_argument("--dataset", type=Path)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--image-sizes", default="160,224")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    logging.basicConfig(level=logging.WARNING)
    sizes = [int(s) for s in args.image_sizes.split(",")]
    if args.what == "score":
        import torch

        torch.set_num_threads(2)
        for size in sizes:
            print(score(args.dataset.resolve(), args.cache, size), flush=True)
    else:
        study(args.cache, sizes)


if __name__ == "__main__":
    main()
