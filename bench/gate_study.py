"""Head configurations on cached features: the recipe bench's figures in seconds per row.

    nice -n 10 .venv/bin/python bench/gate_study.py --image-size 224 \
        --calibration-photos photopool \
        --configs "prior+probe%0.01,prior+probe+gate-branch%0.01/drawpool"

The probe recipes never move the backbone, so every head (prior, probe + prior, the gated
head, its per-branch operating point) is a function of the pooled features of each image. This
extracts them once per image size (the mirror's train / val / test subsets, every pool and the
gate set, cached under ``--cache``, keyed by size and each set's manifest) and then runs the real
code on them: `harmscan.transfer.train_recipe` and `tasks.recipes.calibrate_on_mix` on a model
whose backbone is the identity, so a row equals `bench/recipe_bench.py`'s for the same
configuration (configuration names as there, ``NAME~SET[+SET]`` too). ``--per-image`` prints,
for one configuration, each gate-set photo's gate, branch scores and verdict.

Every row also scores the held-out icon check set (``--iconcheck``, default ``iconcheck/``:
icon families no pool trains on; never used for a threshold): its AUC and the harmful icons
caught / safe icons flagged at the row's stored threshold (the ``icons`` columns).
"""

from __future__ import annotations

import argparse
import hashlib
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
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))

from recipe_bench import REPO, WEIGHTS, _calibrated_by, _paths, config, mirror_dataset

from conf.settings import TrainSettings
from harmscan.data import ManifestDataset, read_manifest, split_domains
from harmscan.gateset import load_photo_set
from harmscan.heads import final_layer
from harmscan.metrics import domain_metrics, expected_calibration_error
from harmscan.models import resolve_weights
from harmscan.presets import TrainPreset
from harmscan.probeviews import repeat_rows
from harmscan.recipes import extract_features, fit_probe, prior_log_odds
from harmscan.trainjob import build_recipe_model, training_loaders
from harmscan.trainsets import PoolDataset, resolve_training_sets
from harmscan.transfer import RecipeData, probe_features, train_recipe
from tasks.recipes import Scored, branch_scores, calibrate_on_mix, out_of_fold

ARCH = "mobilenet_v2"
POOLS = ("drawpool", "emojipool", "iconpool", "objectpool", "photopool")
# Pools that came after the cache key above was fixed: each cached on its own, by its version, so
# adding one does not extract the mirror again.
LATER_POOLS = ("glyphpool", "lifepool", "colourpool", "vendorpool")
Features = dict[str, dict[str, Any]]  # set name -> x, y, domain, (sha256, source, subject)


class FeatureModel(nn.Module):
    """MobileNetV2's classifier alone: its input is the pooled features (``classifier.1`` is
    the head, so `harmscan.heads.final_layer` and the recipes find it as in the full model)."""

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.classifier = nn.Sequential(nn.Dropout(0.2), head)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(features)


def _sets(gate: Path, check: Path | None = None) -> dict[str, Path]:
    held = {"iconcheck": check} if check else {}
    return {**{p: REPO / p for p in POOLS}, "gateset": gate, **held}


def _cache_key(size: int, gate: Path, check: Path | None = None) -> str:
    digest = hashlib.sha256((REPO / "mirror/expected.csv").read_bytes())
    for root in _sets(gate, check).values():
        digest.update((root / "manifest.csv").read_bytes())
    return f"{ARCH}-{size}-{digest.hexdigest()[:12]}"


def extract_all(size: int, gate: Path, cache: Path, check: Path | None = None) -> Features:
    """Pooled features of every image the study scores, from ``cache`` when present."""
    path = cache / f"{_cache_key(size, gate, check)}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=True) as data:
            return json.loads(str(data["meta"]), object_hook=_arrays_of(data))
    cfg = TrainSettings(image_size=size, num_workers=0, weights=WEIGHTS)
    model = build_recipe_model(ARCH, resolve_weights(ARCH, WEIGHTS[ARCH]), cfg.model_copy(
        update={"head": "prior"}))  # fmt: skip
    preset = TrainPreset(image_size=size, augment=False).eval_preset
    out: Features = {}
    with tempfile.TemporaryDirectory(prefix="gate-study-") as tmp:
        dataset = mirror_dataset(Path(tmp))
        frame = read_manifest(dataset)
        for split in ("train", "val", "test"):
            data = ManifestDataset(dataset, split, preset, frame)
            out[split] = _features(model, data, split_domains(frame, split, "illustration"))
    for name, root in _sets(gate, check).items():
        photo_set = load_photo_set(root)
        data = PoolDataset(photo_set, preset)
        out[name] = _features(model, data, data.domains)
        for column in ("sha256", "source", "subject"):
            out[name][column] = [str(v) for v in photo_set.manifest[column]]
    cache.mkdir(parents=True, exist_ok=True)
    arrays = {f"{k}.{c}": v[c] for k, v in out.items() for c in ("x", "y")}
    meta = {k: {c: (f"@{k}.{c}" if c in ("x", "y") else v[c]) for c in v} for k, v in out.items()}
    np.savez(path, meta=json.dumps(meta), **arrays)
    return out


def pool_features(size: int, name: str, cache: Path) -> dict[str, Any]:
    """Pooled features of one of `LATER_POOLS`, from ``cache`` when present (keyed by version)."""
    photo_set = load_photo_set(REPO / name)
    path = cache / f"{ARCH}-{size}-{name}-{photo_set.version}.npz"
    columns = ("sha256", "source", "subject")
    if path.is_file():
        with np.load(path, allow_pickle=True) as data:
            meta = json.loads(str(data["meta"]))
            return {"x": data["x"], "y": data["y"], **meta}
    cfg = TrainSettings(image_size=size, num_workers=0, weights=WEIGHTS)
    model = build_recipe_model(ARCH, resolve_weights(ARCH, WEIGHTS[ARCH]), cfg.model_copy(
        update={"head": "prior"}))  # fmt: skip
    data = PoolDataset(photo_set, TrainPreset(image_size=size, augment=False).eval_preset)
    out = _features(model, data, data.domains)
    out.update({c: [str(v) for v in photo_set.manifest[c]] for c in columns})
    cache.mkdir(parents=True, exist_ok=True)
    meta = {k: out[k] for k in ("domain", *columns)}
    np.savez(path, meta=json.dumps(meta), x=out["x"], y=out["y"])
    return out


def view_features(
    size: int, pools: list[str], views: int, seed: int, cache: Path, engine: str = "onnx"
) -> dict[str, np.ndarray]:
    """Pooled features of the probe's ``views`` augmented views of the mirror's training split
    and ``pools`` (``train.probe_views``), through the main job's own probe loader
    (`harmscan.trainjob.training_loaders`: the same rows, order and per-row seeds), cached.

    ``engine``: ``train.probe_view_engine`` (torch's caches keep their names from before).
    Returns ``x`` (view-major rows), ``y`` and ``seconds`` (the extraction's wall time).
    """
    digest = hashlib.sha256((REPO / "mirror/expected.csv").read_bytes())
    for pool in pools:
        digest.update((REPO / pool / "manifest.csv").read_bytes())
    name = f"{ARCH}-{size}-views{views}-seed{seed}-{'+'.join(pools)}-{digest.hexdigest()[:12]}"
    name += "" if engine == "torch" else f"-{engine}"
    path = cache / f"{name}.npz"
    if path.is_file():
        with np.load(path) as data:
            return {k: data[k] for k in data.files}
    cfg = TrainSettings(image_size=size, num_workers=0, weights=WEIGHTS, probe_views=views,
                        seed=seed, extra_train_sets=pools, batch_size=32,
                        probe_view_engine=engine)  # fmt: skip
    model = build_recipe_model(ARCH, resolve_weights(ARCH, WEIGHTS[ARCH]), cfg.model_copy(
        update={"head": "prior"}))  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="gate-study-") as tmp:
        dataset = mirror_dataset(Path(tmp))
        frame = read_manifest(dataset)
        resolved = resolve_training_sets(pools, None)
        data = training_loaders(dataset, cfg, frame, resolved, "illustration")
        start = time.perf_counter()
        x, y = probe_features(model, ARCH, data.probe, cfg, torch.device("cpu"))
        seconds = time.perf_counter() - start
    out = {"x": x, "y": y, "seconds": np.array(seconds)}
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, **out)
    return out


def _view_rows(
    views: dict[str, np.ndarray] | None, clean: list[dict[str, Any]], n: int
) -> dict[str, Any]:
    """The first ``n`` view blocks of ``views`` (the rows of ``clean``, view-major)."""
    rows = sum(len(part["y"]) for part in clean)
    if views is None or len(views["y"]) < n * rows:
        have = 0 if views is None else len(views["y"]) // rows
        raise ValueError(f"{n} probe views asked, {have} cached (--views)")
    y = np.concatenate([part["y"] for part in clean])
    if not np.array_equal(views["y"][:rows], y):
        raise ValueError("the cached views are not of these training sets (--views-pools)")
    return {"x": views["x"][: n * rows], "y": views["y"][: n * rows]}


def held_out_scores(
    feats: Features, views: dict[str, np.ndarray] | None, pools: list[str], variant: str,
    *, c: float, mix: float, kin: dict[str, str] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Held-out-vendor log-odds of the drawing branch (prior ``mix`` + probe, `fit_probe`): each
    pool source in turn is left out of the probe's rows (all of its views) and its images are
    scored un-augmented. ``variant``: N (N views), ``cN`` (the clean view and N views).
    ``kin``: group (``<pool>:<source>``) -> the group it is left out with (another style of the
    same vendor, so that no fold counts a vendor as unseen while its other style trains).

    Returns labels, sources (``-`` for the mirror's rows, never held out) and scores (NaN for
    the mirror's rows), in the clean rows' order.
    """
    clean = [feats["train"], *(feats[p] for p in pools)]
    x = np.concatenate([part["x"] for part in clean])
    y = np.concatenate([part["y"] for part in clean])
    groups = np.array(["-"] * len(feats["train"]["y"])
                      + [f"{p}:{s}" for p in pools for s in feats[p]["source"]])  # fmt: skip
    folds = np.array([(kin or {}).get(g, g) for g in groups])
    n = int(variant.lstrip("c"))
    if n:
        aug = _view_rows(views, clean, n)
        tx, ty, tg = aug["x"], aug["y"], np.tile(folds, n)
        if variant.startswith("c"):
            tx, ty, tg = np.concatenate([x, tx]), np.r_[y, ty], np.r_[folds, tg]
    else:
        tx, ty, tg = x, y, folds
    cfg = TrainSettings(head="prior", weights=WEIGHTS)
    head = final_layer(build_recipe_model(ARCH, resolve_weights(ARCH, WEIGHTS[ARCH]), cfg), ARCH)
    prior_t, prior_x = prior_log_odds(head, tx), prior_log_odds(head, x)
    pooled = np.full(len(y), np.nan)
    for g in sorted(set(folds) - {"-"}):
        keep, held = tg != g, folds == g
        fit = fit_probe(tx[keep], ty[keep], c=c, prior=prior_t[keep], prior_mix=mix)
        pooled[held] = fit.log_odds(x[held], prior_x[held])
    return y, groups, pooled


def vendor_bootstrap_gap(
    y: np.ndarray, groups: np.ndarray, base: np.ndarray, candidate: np.ndarray,
    resamples: int, seed: int = 0,
) -> tuple[float, float, float, float]:  # fmt: skip
    """Pooled held-out AUC(candidate) - AUC(base), resampling whole vendors with replacement.

    The held-out rows (base not NaN) are grouped by source; each resample draws as many
    sources as there are, with replacement, and takes all their images for both models (one
    vendor with a few harmful images is what moves the per-vendor mean, so it is the unit of
    resampling). Returns the gap, its 5 % and 95 % quantiles and the share of resamples in
    which the candidate is better (gap > 0); resamples with one class only are skipped.
    """
    keep = ~np.isnan(base)
    vendors = sorted(set(groups[keep]))
    rows = [np.flatnonzero(keep & (groups == v)) for v in vendors]
    rng = np.random.default_rng(seed)
    gaps = []
    for _ in range(resamples):
        pick = np.concatenate([rows[i] for i in rng.integers(len(rows), size=len(rows))])
        if len(np.unique(y[pick])) < 2:
            continue
        gaps.append(roc_auc_score(y[pick], candidate[pick]) - roc_auc_score(y[pick], base[pick]))
    gap = roc_auc_score(y[keep], candidate[keep]) - roc_auc_score(y[keep], base[keep])
    low, high = np.quantile(gaps, [0.05, 0.95])
    return float(gap), float(low), float(high), float((np.asarray(gaps) > 0).mean())


def _arrays_of(data: Any) -> Any:
    def hook(obj: dict[str, Any]) -> dict[str, Any]:
        return {k: data[v[1:]] if isinstance(v, str) and v.startswith("@") else v
                for k, v in obj.items()}  # fmt: skip

    return hook


def _features(model: nn.Module, data: Dataset, domains: list[str]) -> dict[str, Any]:
    x, y = extract_features(model, ARCH, DataLoader(data, batch_size=32), torch.device("cpu"))
    return {"x": x, "y": y, "domain": list(domains)}


def _loader(*parts: dict[str, Any]) -> DataLoader:
    x = torch.from_numpy(np.concatenate([p["x"] for p in parts]))
    y = torch.from_numpy(np.concatenate([p["y"] for p in parts])).long()
    return DataLoader(TensorDataset(x, y), batch_size=64)


def _score(model: nn.Module, *parts: dict[str, Any]) -> Scored:
    from harmscan.engine import evaluate

    with branch_scores(model) as branches:
        preds = evaluate(model, _loader(*parts), torch.device("cpu"), description="score")
    return Scored(preds.y_true, preds.p_harmful, [d for p in parts for d in p["domain"]],
                  branches())  # fmt: skip


def study_settings(name: str, base: dict[str, Any]) -> TrainSettings:
    """The train settings of configuration ``NAME[*N]`` (N: ``train.probe_views``). The views
    are cached pooled features here, so their engine is torch: the onnx engine would export the
    feature-space model and feed it features as images."""
    name, star, n = name.partition("*")
    views = {"probe_views": int(n) if star else 0, "probe_view_engine": "torch"}
    return TrainSettings(**{**base, **config(name), **views})


def run(
    name: str,
    feats: Features,
    calibration: list[str],
    base: dict[str, Any],
    views: dict[str, np.ndarray] | None = None,
    also: tuple[str, ...] = (),
) -> dict:
    """Fit, calibrate and score one configuration on cached features (as `recipe_bench`).

    ``also``: more sets of ``feats`` to score (``result["also"][name]``, e.g. ``lifepool``).

    ``NAME*N`` sets ``train.probe_views`` to N: the probe trains on the first N view blocks of
    ``views`` (`view_features`, whose rows are seeded per row, so N views are a prefix).
    """
    cfg = study_settings(name, base)
    resolve_training_sets(cfg.extra_train_sets, None)  # the gate-set checks of the real code
    pools = [Path(p).name for p in cfg.extra_train_sets]
    train = [feats["train"], *(feats[p] for p in pools)]
    groups = [None] * len(feats["train"]["y"]) + [
        f"{p}:{source}" for p in pools for source in feats[p]["source"]
    ]
    probe = _loader(*train)
    if cfg.probe_views:
        probe = _loader(_view_rows(views, train, cfg.probe_views))
        groups = repeat_rows(groups, cfg.probe_views)
    data = RecipeData(train=_loader(*train), probe=probe, val=_loader(feats["val"]), groups=groups)
    if cfg.probe_views:
        data.gate_side = _loader(*train)  # the gate learns the un-augmented drawings
    if cfg.head == "prior-gated":
        data.photos = _loader(*(feats[Path(p).name] for p in cfg.gate_photos))
        if cfg.gate_drawings:
            data.gate_drawings = _loader(*(feats[Path(p).name] for p in cfg.gate_drawings))
    full = build_recipe_model(ARCH, resolve_weights(ARCH, WEIGHTS[ARCH]), cfg)
    model = FeatureModel(final_layer(full, ARCH))
    outcome = train_recipe(model, ARCH, data, cfg, device=torch.device("cpu"))
    val = _score(model, feats["val"])
    photos = _score(model, *(feats[c] for c in calibration)) if calibration else None
    held = out_of_fold(outcome, [d for part in train for d in part["domain"]])
    point = calibrate_on_mix(model, ARCH, val, photos, cfg, held)
    gate = _score(model, feats["gateset"])
    test = _score(model, feats["test"])
    icons = _score(model, feats["iconcheck"]) if "iconcheck" in feats else None
    return {
        "icons": icons,
        "config": name,
        "point": point,
        "gate": domain_metrics(gate.y, gate.p, gate.domains, point.threshold),
        "test": domain_metrics(test.y, test.p, test.domains, point.threshold),
        "gate_scored": gate,
        "also": {name: _score(model, feats[name]) for name in also},
    }


def counts(y: np.ndarray, p: np.ndarray, mask: np.ndarray, threshold: float) -> str:
    """``caught/flagged`` at the threshold among ``mask``."""
    hit = p >= threshold
    return f"{int((hit & (y == 1) & mask).sum())}/{int((hit & (y == 0) & mask).sum())}"


def row(r: dict[str, Any], size: int) -> str:
    g, t, point = r["gate"], r["test"], r["point"]
    s: Scored = r["gate_scored"]
    d = np.asarray(s.domains)
    cells = [str(size), r["config"]]
    cells += [f"{g[f'{k}_auc']:.3f}" for k in ("all", "photo", "emoji")]
    cells.append(f"{t['all_auc']:.3f}")
    cells += [counts(s.y, s.p, d == k, point.threshold) for k in ("photo", "emoji")]
    cells.append(f"{t['all_recall']:.2f}/{t['all_safe_flagged']:.2f}")
    icons: Scored | None = r["icons"]
    if icons is not None:
        m = domain_metrics(icons.y, icons.p, icons.domains, point.threshold)
        every = np.ones(len(icons.y), dtype=bool)
        cells += [f"{m['all_auc']:.3f}", counts(icons.y, icons.p, every, point.threshold)]
    else:
        cells += ["—", "—"]
    cells.append(counts(s.y, s.p, np.ones(len(s.y), dtype=bool), point.threshold))
    cells.append(f"{point.ece_before:.3f}→{point.ece_after:.3f}")
    cells.append("/".join(f"{expected_calibration_error(s.y[d == k], s.p[d == k]):.3f}"
                          for k in ("photo", "emoji")))  # fmt: skip
    b = point.branches
    cells.append(f"{b.photo_threshold:.3f}/{b.drawing_threshold:.3f}" if b else "—")
    if s.gate is not None:
        cells.append("/".join(f"{int((s.gate[d == k] > 0.5).sum())}" for k in ("photo", "emoji")))
    else:
        cells.append("—")
    return "| " + " | ".join(cells) + " |"


HEADER = (
    "| px | config | AUC all | photo | emoji | illus. | photos caught/flagged (7/85) | "
    "emoji (35/240) | illus. recall/flagged | icons AUC | icons caught/flagged (19/101) | "
    "gate set caught/flagged (42/325) | ECE mix before→after | gate-set ECE photo/emoji | "
    "thr photo/drawing | gate: photos (92) / emoji (275) |\n" + "|---" * 16 + "|"
)


def per_image(r: dict[str, Any], feats: Features) -> None:
    """Every gate-set photo: label, gate, branch log-odds, served score, subject."""
    s: Scored = r["gate_scored"]
    meta = feats["gateset"]
    print(f"threshold {r['point'].threshold:.4f}")
    order = np.argsort(-s.p)
    for i in order:
        if meta["domain"][i] != "photo":
            continue
        b = s.branches[i] if s.branches is not None else (np.nan, np.nan, np.nan)
        flag = "*" if s.p[i] >= r["point"].threshold else " "
        label = "H" if s.y[i] else "s"
        print(
            f"{flag} {label} p={s.p[i]:.3f} g={b[0]:.2f} photo={b[1]:+.2f} draw={b[2]:+.2f} "
            f"{meta['source'][i]}: {meta['subject'][i]}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gate", type=Path, default=REPO / "gateset")
    parser.add_argument("--image-size", type=int, default=160)
    parser.add_argument("--calibration-photos", default="photopool")
    parser.add_argument("--configs", default="", help="NAME[*VIEWS], comma-separated")
    parser.add_argument("--views", type=int, default=0, help="augmented views to extract/cache")
    parser.add_argument("--views-pools", default="drawpool,iconpool")
    parser.add_argument("--views-seed", type=int, default=1234, help="train.seed of the views")
    parser.add_argument("--views-engine", default="onnx", choices=("onnx", "torch"))
    parser.add_argument(
        "--loso", default="", help="held-out-vendor AUC of N or cN views, e.g. 0,4,c4"
    )
    parser.add_argument(
        "--loso-resamples", type=int, default=2000, help="vendor bootstrap of the gap to 0 views"
    )
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "gate-study")
    parser.add_argument("--per-image", default="", help="a configuration to list photo by photo")
    parser.add_argument(
        "--iconcheck",
        default=str(REPO / "iconcheck"),
        help="the held-out icon check set scored in the icons columns ('' for none)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(2)
    check = Path(args.iconcheck).resolve() if args.iconcheck else None
    feats = extract_all(args.image_size, args.gate.resolve(), args.cache, check)
    feats.update({p: pool_features(args.image_size, p, args.cache) for p in LATER_POOLS})
    base = {"image_size": args.image_size, "num_workers": 0, "weights": WEIGHTS}
    pools = [p for p in args.views_pools.split(",") if p]
    views = None
    if args.views:
        views = view_features(args.image_size, pools, args.views, args.views_seed, args.cache,
                              args.views_engine)  # fmt: skip
        print(f"{args.views} views of {len(views['y']) // args.views} training images: "
              f"{float(views['seconds']):.0f} s to extract with {args.views_engine} "
              "(machine shared)")  # fmt: skip
    scores = {}
    for variant in [v for v in args.loso.split(",") if v]:
        y, groups, scores[variant] = held_out_scores(feats, views, pools, variant, c=0.01,
                                                     mix=0.25)  # fmt: skip
        aucs = {g: float(roc_auc_score(y[groups == g], scores[variant][groups == g]))
                for g in sorted(set(groups) - {"-"})}  # fmt: skip
        scored = ~np.isnan(scores[variant])
        pooled = roc_auc_score(y[scored], scores[variant][scored])
        cells = " ".join(f"{g.split(':')[1].split('@')[-2][-14:]}={a:.3f}" for g, a in aucs.items())
        print(
            f"loso {args.image_size} views={variant}: mean {np.mean(list(aucs.values())):.3f} "
            f"min {min(aucs.values()):.3f} pooled {pooled:.3f} | {cells}",
            flush=True,
        )
        if variant != "0" and "0" in scores:
            gap, low, high, share = vendor_bootstrap_gap(
                y, groups, scores["0"], scores[variant], args.loso_resamples
            )
            print(f"  pooled gap to 0 views {gap:+.3f} (vendors resampled: 90 % {low:+.3f} … "
                  f"{high:+.3f}, better in {share:.0%})", flush=True)  # fmt: skip
    if not args.configs:
        return
    print(HEADER)
    for full in args.configs.split(","):
        name, calibration = _calibrated_by(full, _paths(args.calibration_photos))
        r = run(name, feats, [p.name for p in calibration], base, views)
        r["config"] = full
        print(row(r, args.image_size), flush=True)
        if full == args.per_image:
            per_image(r, feats)


if __name__ == "__main__":
    main()
