"""``train.probe_layers`` through the main job's code: [] against taps, side by side in one run.

    nice -n 10 .venv/bin/python bench/probe_layers_bench.py --image-size 160 \
        --variants ",13,13+16" --out /tmp/probe-layers-160.json
    .venv/bin/python bench/probe_layers_bench.py --report /tmp/probe-layers-160.json
    nice -n 10 .venv/bin/python bench/probe_layers_bench.py --image-size 160 --timing 3

Every variant is the default's configuration (`DEFAULT`: prior-gated head, per-branch operating
point with the photo branch's threshold on the mix, photo mix 1.0, drawing mix 0.25, probe C
0.01, drawpool + iconpool + glyphpool, calibrated with photopool) trained by
`recipe_bench.run_config` (the real model, `harmscan.transfer.train_recipe`,
`tasks.recipes.calibrate_on_mix`), with ``train.probe_layers`` set to the variant's blocks. Per
variant: the gate set (AUC all / photo / emoji, caught / flagged of 42 / 325 at the stored
threshold), the held-out icons (``iconcheck``), the mirror's test split, the seconds from the
model's build to its calibration, and the development metric of `bench/layer_study.py`: the
pooled held-out-vendor AUC of the drawing branch (prior 0.25 + probe, each pool vendor left out
in turn) on the features the real model computed for its probe. Against the first variant:
paired bootstraps of the gate set's and the icons' AUC (images resampled per class) and a
vendor bootstrap of the development metric, and the gate-set images each variant newly catches /
misses and flags / clears at its stored threshold (exact McNemar test). ``--timing N`` times, side
by side and interleaved N times, what the taps add: the backbone pass and the head's fits. The
machine may be shared: compare rows of one run.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gate_study import vendor_bootstrap_gap
from gate_study_paired import paired_gap
from recipe_bench import REPO, WEIGHTS, config, mirror_dataset, run_config

from conf.settings import TrainSettings
from harmscan import transfer
from harmscan.gateset import load_photo_set
from harmscan.heads import GatedPriorHead, final_layer
from harmscan.recipes import fit_probe, prior_log_odds
from harmscan.trainsets import PoolDataset

DEFAULT = "prior+probe+gate-branch+mixpoint@1.0:0.25%0.01/drawpool/iconpool/glyphpool"
ARCH = "mobilenet_v2"


class ProbeCapture:
    """While installed, keeps the probe's features and the gated fit's sources (``groups``)."""

    def __init__(self) -> None:
        self.features: np.ndarray | None = None
        self.y: np.ndarray | None = None
        self.groups: list[str | None] | None = None
        self.head: GatedPriorHead | None = None
        self._probe, self._fit = transfer.probe_features, transfer.fit_gated_head

    def __enter__(self) -> ProbeCapture:
        def probe(*args: Any, **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
            self.features, self.y = self._probe(*args, **kwargs)
            return self.features, self.y

        def fit(model: Any, arch: str, *args: Any, **kwargs: Any) -> Any:
            self.groups = args[5] if len(args) > 5 else kwargs.get("groups")
            head = final_layer(model, arch)
            assert isinstance(head, GatedPriorHead)
            self.head = head
            return self._fit(model, arch, *args, **kwargs)

        transfer.probe_features, transfer.fit_gated_head = probe, fit
        return self

    def __exit__(self, *_: object) -> None:
        transfer.probe_features, transfer.fit_gated_head = self._probe, self._fit


def held_out_vendors(capture: ProbeCapture, c: float, mix: float) -> dict[str, Any]:
    """The drawing branch's log-odds of each pool vendor's images with that vendor left out."""
    x, y, head, sources = capture.features, capture.y, capture.head, capture.groups
    if x is None or y is None or head is None or sources is None:
        raise RuntimeError("the run fitted no gated probe (train.head must be prior-gated)")
    groups = np.array([g or "-" for g in sources])
    prior = prior_log_odds(head.photo, x)  # the untrained prior: the 1280-d's ImageNet mass
    pooled = np.full(len(y), np.nan)
    for g in sorted(set(groups) - {"-"}):
        keep, held = groups != g, groups == g
        fit = fit_probe(x[keep], y[keep], c=c, prior=prior[keep], prior_mix=mix)
        pooled[held] = fit.log_odds(x[held], prior[held])
    scored = ~np.isnan(pooled)
    return {
        "y": y.tolist(),
        "groups": groups.tolist(),
        "scores": pooled.tolist(),
        "pooled_auc": float(roc_auc_score(y[scored], pooled[scored])),
        "width": int(x.shape[1]),
    }


def run_variant(layers: list[int], size: int, dataset: Path) -> dict[str, Any]:
    base = {"image_size": size, "num_workers": 0, "weights": WEIGHTS, "probe_layers": layers}
    with ProbeCapture() as capture:
        r = run_config(
            DEFAULT, ARCH, dataset, REPO / "gateset", [REPO / "photopool"], base,
            checks=[REPO / "iconcheck"],
        )  # fmt: skip
    r["variant"] = "+".join(map(str, layers)) or "[]"
    r["image_size"] = size
    r["development"] = held_out_vendors(capture, c=0.01, mix=0.25)
    return r


def timing(size: int, dataset: Path, repeats: int) -> str:
    """Side by side, interleaved ``repeats`` times: the backbone pass of the probe's images
    (plain against [13, 16]) and the head's fits (gate, gated probe) on the first 1280 / 1472 /
    1792 columns of the [13, 16] features ([] / [13] / [13, 16]: the taps' layout nests)."""
    from torch.utils.data import DataLoader

    from harmscan.data import read_manifest
    from harmscan.models import resolve_weights
    from harmscan.presets import EvalPreset
    from harmscan.recipes import extract_features, fit_gate, fit_gated_probe
    from harmscan.trainjob import build_recipe_model
    from harmscan.trainsets import resolve_training_sets, training_split

    cfg = TrainSettings(image_size=size, num_workers=0, weights=WEIGHTS, **config(DEFAULT))
    preset, frame = EvalPreset(image_size=size), read_manifest(dataset)
    pools = resolve_training_sets(cfg.extra_train_sets, REPO / "gateset")
    split = training_split(dataset, frame, preset, pools, default_domain="illustration")
    photos = DataLoader(PoolDataset(load_photo_set(REPO / "photopool"), preset), batch_size=32)
    probe = DataLoader(split.dataset, batch_size=32)
    source = resolve_weights(ARCH, WEIGHTS[ARCH])
    models = {
        name: build_recipe_model(ARCH, source, cfg.model_copy(update={"probe_layers": layers}))
        for name, layers in (("[]", []), ("13+16", [13, 16]))
    }
    seconds: dict[str, list[float]] = {}
    cpu = torch.device("cpu")
    for _ in range(repeats):
        for name, model in models.items():
            start = time.perf_counter()
            x, y = extract_features(model, ARCH, probe, cpu)
            seconds.setdefault(f"backbone pass {name}", []).append(time.perf_counter() - start)
        photo_x = extract_features(models["[]"], ARCH, photos, cpu)[0]
        head = final_layer(models["[]"], ARCH)
        assert isinstance(head, GatedPriorHead)
        prior = prior_log_odds(head.photo, x)
        for name, width in (("[]", 1280), ("13", 1472), ("13+16", 1792)):
            start = time.perf_counter()
            gate = fit_gate(x[:, :1280], photo_x, c=cfg.gate_c, drawings_as_photos=0.02)
            g = 1 / (1 + np.exp(-gate.log_odds(x)))
            fit_gated_probe(x[:, :width], y, c=cfg.probe_c, prior=prior, photo_probability=g,
                            mixes=(1.0, 0.25), photo_width=1280)  # fmt: skip
            seconds.setdefault(f"head fits {name}", []).append(time.perf_counter() - start)
    n = len(split.dataset)
    return "\n".join(
        f"{size} px {k} ({n} images): median {np.median(v):.1f} s of {len(v)}"
        for k, v in seconds.items()
    )


def _counts(y: np.ndarray, p: np.ndarray, threshold: float) -> str:
    hit = p >= threshold
    return f"{int((hit & (y == 1)).sum())}/{int((hit & (y == 0)).sum())}"


def table(results: list[dict[str, Any]], size: int) -> str:
    lines = [
        "| px | probe_layers | width | dev. AUC (held-out vendors) | gate AUC all | photo | "
        "emoji | caught/flagged (42/325) | photos c/f (7/85) | emoji c/f (35/240) | icons AUC | "
        "icons c/f (19/101) | test AUC | test recall/flagged | seconds |",
        "|---" * 15 + "|",
    ]
    for r in results:
        g, t, thr = r["gate"], r["test"], r["threshold"]
        gy, gp = np.asarray(r["gate_scores"]["y"]), np.asarray(r["gate_scores"]["p"])
        gd = np.asarray(r["gate_scores"]["domain"])
        icons = r["checks"]["iconcheck"]
        iy, ip = np.asarray(icons["scores"]["y"]), np.asarray(icons["scores"]["p"])
        cells = [
            str(size), r["variant"], str(r["development"]["width"]),
            f"{r['development']['pooled_auc']:.3f}",
            *(f"{g[f'{k}_auc']:.3f}" for k in ("all", "photo", "emoji")),
            _counts(gy, gp, thr),
            *(_counts(gy[gd == k], gp[gd == k], thr) for k in ("photo", "emoji")),
            f"{icons['all_auc']:.3f}", _counts(iy, ip, thr),
            f"{t['all_auc']:.3f}", f"{t['all_recall']:.2f}/{t['all_safe_flagged']:.2f}",
            f"{r['train_seconds']:.0f}",
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def gaps(results: list[dict[str, Any]], resamples: int) -> str:
    """Each variant against the first: paired bootstraps (90 % intervals, share >= 0)."""
    base = results[0]
    lines = []
    for r in results[1:]:
        dev_b, dev_r = base["development"], r["development"]
        y, groups = np.asarray(dev_b["y"]), np.asarray(dev_b["groups"])
        gap = vendor_bootstrap_gap(
            y, groups, np.asarray(dev_b["scores"]), np.asarray(dev_r["scores"]), resamples
        )
        lines.append(_gap_line(r["variant"], "development (vendors resampled)", gap))
        gy, gd = np.asarray(base["gate_scores"]["y"]), np.asarray(base["gate_scores"]["domain"])
        bp, rp = np.asarray(base["gate_scores"]["p"]), np.asarray(r["gate_scores"]["p"])
        for name, mask in (("gate all", gd == gd), ("gate photo", gd == "photo"),
                           ("gate emoji", gd == "emoji")):  # fmt: skip
            lines.append(_gap_line(r["variant"], name, paired_gap(gy[mask], bp[mask], rp[mask],
                                                                  resamples)))  # fmt: skip
        bi, ri = base["checks"]["iconcheck"]["scores"], r["checks"]["iconcheck"]["scores"]
        icons = paired_gap(np.asarray(bi["y"]), np.asarray(bi["p"]), np.asarray(ri["p"]), resamples)
        lines.append(_gap_line(r["variant"], "icons", icons))
    return "\n".join(lines)


def flips(results: list[dict[str, Any]]) -> str:
    """Each variant against the first at their stored thresholds: gate-set images newly caught /
    missed (harmful) and newly flagged / cleared (safe), with the exact two-sided McNemar p."""
    from scipy.stats import binomtest

    base = results[0]
    y = np.asarray(base["gate_scores"]["y"])
    hit_b = np.asarray(base["gate_scores"]["p"]) >= base["threshold"]
    lines = []
    for r in results[1:]:
        hit_r = np.asarray(r["gate_scores"]["p"]) >= r["threshold"]
        for label, what in ((1, "harmful caught"), (0, "safe flagged")):
            gained = int((hit_r & ~hit_b & (y == label)).sum())
            lost = int((hit_b & ~hit_r & (y == label)).sum())
            p = binomtest(gained, gained + lost).pvalue if gained + lost else 1.0
            lines.append(
                f"{r['variant']} vs []: {what} +{gained} / -{lost} images (McNemar p = {p:.2f})"
            )
    return "\n".join(lines)


def _gap_line(variant: str, what: str, gap: tuple[float, float, float, float]) -> str:
    d, low, high, share = gap
    return (
        f"{variant} vs []: {what} AUC {d:+.3f} (90 % {low:+.3f} … {high:+.3f}, >= 0 in {share:.0%})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=160)
    parser.add_argument("--variants", default=",13,13+16", help="'' is [], blocks joined by +")
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--report", type=Path, default=None, help="a saved --out: print only")
    parser.add_argument("--timing", type=int, default=0, help="N: only the side-by-side timing")
    args = parser.parse_args()
    if args.report:
        saved = json.loads(args.report.read_text())
        size = int(saved[0].get("image_size", args.image_size))
        print(table(saved, size), gaps(saved, args.resamples), flips(saved), sep="\n")
        return
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(2)
    variants = [[int(b) for b in v.split("+") if b] for v in args.variants.split(",")]
    results = []
    with tempfile.TemporaryDirectory(prefix="probe-layers-") as tmp:
        dataset = mirror_dataset(Path(tmp))
        if args.timing:
            print(timing(args.image_size, dataset, args.timing))
            return
        for layers in variants:
            results.append(run_variant(layers, args.image_size, dataset))
            print(table(results[-1:], args.image_size), flush=True)
            if args.out:
                args.out.write_text(json.dumps(results))
    print(table(results, args.image_size), gaps(results, args.resamples), flips(results), sep="\n")


if __name__ == "__main__":
    main()
