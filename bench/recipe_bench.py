"""Training recipes side by side: time, ROC AUC per domain, recall and safe images flagged.

    nice -n 10 .venv/bin/python bench/recipe_bench.py --gate gateset [--dataset DIR]
        [--image-size 160] [--epochs 3] [--archs mobilenet_v2] [--configs prior,probe,...]
        [--calibration-photos photopool] [--also-calibrate-with emojipool]
        [--out results.json] [--plot roc.png]

Without ``--dataset`` the training data is the offline mirror itself (``mirror/expected.csv``:
its train / validation / test subsets, harmful and safe images only, domain ``illustration``),
which is what the main job trains on. Every configuration is trained with the same seed,
calibrated and thresholded on the dataset's validation split plus the calibration photos
(`tasks.recipes.calibrate_on_mix`) and scored at that threshold on the dataset's test split
and on the gate set (every row of its manifest, with its ``domain`` column).
``--calibration-photos`` takes one or more sets (comma-separated). ``--also-calibrate-with``
adds a second operating point per configuration, chosen on the same mix plus those sets (the
same trained model: only the temperature and threshold differ), to show what adding them to the
calibration mix changes.
A configuration ``NAME%C`` fits the probe with ``probe_c`` C (``prior+probe@0.4%0.01``).
A configuration ``NAME/drawpool`` also trains on the pool ``drawpool/`` (its images join the
training split with their domains; the gate set is refused as a pool). ``--holdout
drawpool:PKG,...`` keeps that pool's images from those packages out of training and scores every
configuration on them too (styles no configuration has seen).
A configuration ``NAME~SET[+SET]`` is calibrated on those sets instead of
``--calibration-photos`` (``prior+probe%0.01~photopool``), so one run compares calibration sets.
Timings depend on what else runs on the machine: compare the rows of one run, not runs.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from conf.settings import TrainSettings
from harmscan.calibration import (
    OperatingPoint,
    apply_temperature,
    choose_operating_point,
    log_odds,
    sigmoid,
)
from harmscan.data import ManifestDataset, read_manifest, split_domains
from harmscan.engine import evaluate, seed_everything
from harmscan.gateset import PhotoSet, load_photo_set
from harmscan.heads import GatedPriorHead, final_layer
from harmscan.metrics import binary_metrics, domain_metrics
from harmscan.models import resolve_weights
from harmscan.presets import TrainPreset
from harmscan.trainjob import build_recipe_model
from harmscan.trainsets import (
    PoolDataset,
    class_weights_of,
    gate_pool,
    resolve_training_sets,
    training_split,
)
from harmscan.transfer import RecipeData, train_recipe
from tasks.recipes import Scored, branch_scores, calibrate_on_mix, out_of_fold, score_photo_set

REPO = Path(__file__).resolve().parents[1]
CONFIGS: dict[str, dict[str, Any]] = {
    "prior": {"recipe": "prior", "head": "prior"},
    "finetune": {"recipe": "finetune"},
    "probe": {"recipe": "probe"},
    "prior+probe@0.25": {"recipe": "probe", "head": "prior", "prior_mix": 0.25},
    "prior+probe": {"recipe": "probe", "head": "prior", "prior_mix": 0.5},
    "prior+probe@0.75": {"recipe": "probe", "head": "prior", "prior_mix": 0.75},
    "prior+probe-temperature": {
        "recipe": "probe",
        "head": "prior",
        "prior_mix": 0.5,
        "calibration": "temperature",
    },
    "prior+probe-joint": {"recipe": "probe", "head": "prior", "prior_mix": None},
    "lp-ft": {"recipe": "lp-ft"},
    "lp-ft+prior": {"recipe": "lp-ft", "head": "prior", "prior_mix": 0.5},
    "lp-ft+prior+wise": {"recipe": "lp-ft", "head": "prior", "prior_mix": 0.5, "wise_alpha": 0.5},
    "finetune+wise": {"recipe": "finetune", "wise_alpha": 0.5},
    # domain-gated: photo-like images get mix 0.8, drawings 0.25 (NAME@P:D sets the two); the
    # gate's boundary lets 2 % of training drawings through as photos (-fitted: none moved, 5: 5 %)
    "prior+probe+gate": {"recipe": "probe", "head": "prior-gated"},
    "prior+probe+gate-fitted": {
        "recipe": "probe",
        "head": "prior-gated",
        "gate_drawings_as_photos": None,
    },
    "prior+probe+gate+drawgate": {
        "recipe": "probe",
        "head": "prior-gated",
        "gate_drawings": ["drawpool"],
    },
    "prior+probe+gate+drawgate-sharp": {
        "recipe": "probe",
        "head": "prior-gated",
        "gate_drawings": ["drawpool"],
        "gate_sharpness": 4.0,
    },
    # the same with one threshold per branch (photo: on the calibration photos; drawing: on
    # validation), folded into the branches (harmscan.branchpoint)
    "prior+probe+gate-branch": {
        "recipe": "probe",
        "head": "prior-gated",
        "gate_operating_point": "per-branch",
    },
    # the same, the photo branch's threshold chosen on the whole calibration mix (scored by the
    # photo branch: the harmful drawings' recall and the cap on every safe image)
    "prior+probe+gate-branch+mixpoint": {
        "recipe": "probe",
        "head": "prior-gated",
        "gate_operating_point": "per-branch",
        "gate_photo_threshold_on": "mix",
    },
    # the same with the drawing branch's threshold also on out-of-fold training drawings
    # (train.cross_fit: each pool vendor held out in turn, the mirror in 5 folds; or 5 folds)
    "prior+probe+gate-branch+mixpoint+oof": {
        "recipe": "probe",
        "head": "prior-gated",
        "gate_operating_point": "per-branch",
        "gate_photo_threshold_on": "mix",
        "cross_fit": "sources",
    },
    "prior+probe+gate-branch+mixpoint+oof-folds": {
        "recipe": "probe",
        "head": "prior-gated",
        "gate_operating_point": "per-branch",
        "gate_photo_threshold_on": "mix",
        "cross_fit": "folds",
    },
    # ... and Platt scaling again after the shifts are folded (train.branch_recalibration)
    "prior+probe+gate-branch+mixpoint+recal": {
        "recipe": "probe",
        "head": "prior-gated",
        "gate_operating_point": "per-branch",
        "gate_photo_threshold_on": "mix",
        "branch_recalibration": "platt",
    },
    "prior+probe+gate-branch+mixpoint+oof+recal": {
        "recipe": "probe",
        "head": "prior-gated",
        "gate_operating_point": "per-branch",
        "gate_photo_threshold_on": "mix",
        "cross_fit": "sources",
        "branch_recalibration": "platt",
    },
    # the same, the gate also learning "photo" from objectpool's objects, people and cut-outs
    "prior+probe+gate-branch+objects": {
        "recipe": "probe",
        "head": "prior-gated",
        "gate_operating_point": "per-branch",
        "gate_photos": ["photopool", "objectpool"],
    },
    # the default's head, the gate also learning "photo" from lifepool's everyday photos
    "prior+probe+gate-branch+mixpoint+life": {
        "recipe": "probe",
        "head": "prior-gated",
        "gate_operating_point": "per-branch",
        "gate_photo_threshold_on": "mix",
        "gate_photos": ["photopool", "lifepool"],
    },
    "prior+probe+gate5": {
        "recipe": "probe",
        "head": "prior-gated",
        "gate_drawings_as_photos": 0.05,
    },
}
DOMAINS = ("photo", "emoji", "illustration")
HELD_METRICS = ("auc", "recall", "safe_flagged")


CONFIG_FORM = "NAME[@MIX or @PHOTO:DRAWING][%C][/POOL]"


def config(name: str) -> dict[str, Any]:
    """A named configuration; ``NAME@MIX`` is NAME with ``prior_mix`` set to MIX, ``NAME%C``
    sets the probe's ``probe_c`` to C (e.g. ``prior+probe@0.4%0.01``), and
    ``NAME/POOL[/POOL]`` also trains on those pools (``train.extra_train_sets``)."""
    full = name
    name, *pools = name.split("/")
    extra: dict[str, Any] = {"extra_train_sets": pools} if pools else {}
    name, percent, c = name.partition("%")
    base, _, mix = name.partition("@")
    if name in CONFIGS:
        cfg = dict(CONFIGS[name])
    elif base not in CONFIGS or not mix:
        valid = f"{', '.join(CONFIGS)} as {CONFIG_FORM}"
        raise ValueError(f"unknown configuration {full!r}; valid: {valid}")
    elif CONFIGS[base].get("head") == "prior-gated":
        photo, _, drawing = mix.partition(":")
        cfg = {**CONFIGS[base], "gate_photo_mix": _number(photo, full),
               "gate_drawing_mix": _number(drawing or photo, full)}  # fmt: skip
    else:
        cfg = {**CONFIGS[base], "prior_mix": _number(mix, full)}
    if percent:
        if cfg["recipe"] not in ("probe", "lp-ft"):
            raise ValueError(
                f"configuration {full!r}: %C sets the probe's C, and {cfg['recipe']!r} fits no "
                "probe; valid with the probe and lp-ft recipes"
            )
        extra["probe_c"] = _number(c, full, positive=True)
    return {**cfg, **extra}


def _number(text: str, full: str, *, positive: bool = False) -> float:
    """``text`` as a float (a positive one if ``positive``), or an error naming the form."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not np.isfinite(value) or (positive and value <= 0):
        kind = "a positive number" if positive else "a number"
        raise ValueError(
            f"configuration {full!r}: {text!r} is not {kind}; valid: {CONFIG_FORM}, "
            "e.g. prior+probe@0.4%0.01"
        )
    return value


WEIGHTS = {"mobilenet_v2": "weights/mobilenet_v2_imagenet.pth", "resnet50": "imagenet"}


def mirror_dataset(root: Path) -> Path:
    """The mirror's harmful and safe images as a dataset folder (manifest + images)."""
    split = {"train": "train", "validation": "val", "test": "test"}
    rows = []
    with (REPO / "mirror" / "expected.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["Expected"] not in ("harmful", "safe") or row["Defect"]:
                continue
            rel = f"{split[row['Subset']]}/{row['Expected']}/{row['ImageID']}.jpg"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(
                REPO / "mirror/images" / row["Subset"] / f"{row['ImageID']}.jpg", root / rel
            )
            rows.append(
                {
                    "image_id": row["ImageID"],
                    "label": row["Expected"],
                    "split": split[row["Subset"]],
                    "path": rel,
                    "sha256": "",
                    "domain": "illustration",
                }
            )
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    return root


def _predict(model: torch.nn.Module, data: Dataset, batch: int) -> tuple[np.ndarray, np.ndarray]:
    loader = DataLoader(data, batch_size=batch)
    preds = evaluate(model, loader, torch.device("cpu"), description="eval")
    return preds.y_true, preds.p_harmful


def _scored(model: torch.nn.Module, data: Dataset, batch: int, domains: list[str]) -> Scored:
    """Predictions with each image's branch scores when the head is gated."""
    with branch_scores(model) as branches:
        y, p = _predict(model, data, batch)
    return Scored(y, p, domains, branches())


def _score_sets(model: torch.nn.Module, roots: list[Path], preset: Any) -> Scored | None:
    scored = [score_photo_set(model, root, preset) for root in roots]
    return sum(scored[1:], scored[0]) if scored else None


def _alt_point(mix: Scored, cfg: TrainSettings) -> OperatingPoint:
    """The operating point `calibrate_on_mix` would choose on ``mix`` (nothing folded in)."""
    return choose_operating_point(
        mix.y,
        mix.p,
        mix.domains,
        photo_share=cfg.calibration_photo_share,
        target_recall=cfg.target_recall,
        band=cfg.review_band,
        method=cfg.calibration,
        max_safe_flagged=cfg.max_safe_flagged,
    )


def _at_point(scored: Scored, folded: OperatingPoint, other: OperatingPoint) -> dict[str, float]:
    """Metrics of scores calibrated by ``folded`` as if ``other`` had been chosen instead."""
    if folded.branches is not None:
        raise ValueError(
            "--also-calibrate-with cannot re-choose a per-branch operating point; run it with "
            "configurations whose gate_operating_point is mix"
        )
    raw = sigmoid((log_odds(scored.p) - folded.bias) * folded.temperature)
    p = apply_temperature(raw, other.temperature, other.bias)
    return domain_metrics(scored.y, p, scored.domains, other.threshold)


def run_config(
    name: str,
    arch: str,
    dataset: Path,
    gate: Path | None,
    calibration: list[Path],
    base: dict[str, Any],
    also_calibrate: list[Path] | None = None,
    holdout: tuple[Path, list[str]] | None = None,
    checks: list[Path] | None = None,
) -> dict[str, Any]:
    """Train, calibrate and score one configuration; return its figures and scores.

    ``holdout`` is a pool and package names: its images from those packages train no
    configuration and every configuration is scored on them (``result["holdout"]``).
    ``checks``: held-out check sets (e.g. iconcheck) scored at the stored threshold too
    (``result["checks"][name]``: metrics and scores).
    """
    cfg = TrainSettings(**{**base, **config(name)})
    seed_everything(cfg.seed)
    frame = read_manifest(dataset)
    train_preset = TrainPreset(image_size=cfg.image_size, augment=cfg.augment)
    eval_preset = train_preset.eval_preset
    pools = resolve_training_sets(cfg.extra_train_sets, gate)
    held = _held_out(holdout)
    if held is not None:
        pools = [_without(pool, held) for pool in pools]
    train = training_split(dataset, frame, train_preset, pools, default_domain="illustration")
    data = RecipeData(
        train=DataLoader(
            train.dataset,
            batch_size=cfg.batch_size,
            shuffle=True,
            generator=torch.Generator().manual_seed(cfg.seed),
        ),
        probe=DataLoader(
            training_split(dataset, frame, eval_preset, pools).dataset, batch_size=cfg.batch_size
        ),
        val=DataLoader(
            ManifestDataset(dataset, "val", eval_preset, frame), batch_size=cfg.batch_size
        ),
        groups=train.groups,
    )
    if cfg.head == "prior-gated":
        photos = gate_pool(cfg.gate_photos, eval_preset, gate)
        data.photos = DataLoader(photos, batch_size=cfg.batch_size)
        if cfg.gate_drawings:
            drawings = gate_pool(cfg.gate_drawings, eval_preset, gate)
            data.gate_drawings = DataLoader(drawings, batch_size=cfg.batch_size)
    start = time.perf_counter()
    model = build_recipe_model(arch, resolve_weights(arch, cfg.weights[arch]), cfg)

    def val_auc(m: torch.nn.Module) -> float:
        return binary_metrics(*_predict(m, data.val.dataset, cfg.batch_size))["auc"]

    outcome = train_recipe(
        model,
        arch,
        data,
        cfg,
        device=torch.device("cpu"),
        class_weights=class_weights_of(train.targets) if cfg.class_weighting else None,
        wise_score=val_auc,
    )
    val = _scored(
        model, data.val.dataset, cfg.batch_size, split_domains(frame, "val", "illustration")
    )
    photos = _score_sets(model, calibration, eval_preset)
    extra = _score_sets(model, also_calibrate or [], eval_preset)
    alt = None
    if extra is not None:
        alt = _alt_point(val + photos + extra if photos is not None else val + extra, cfg)
    point = calibrate_on_mix(model, arch, val, photos, cfg, out_of_fold(outcome, train.domains))
    seconds = time.perf_counter() - start
    test = ManifestDataset(dataset, "test", eval_preset, frame)
    y_test, p_test = _predict(model, test, cfg.batch_size)
    result: dict[str, Any] = {
        "config": name,
        "arch": arch,
        "train_seconds": round(seconds, 1),
        "epochs_run": outcome.state.epoch,
        "train_images": {d: train.domains.count(d) for d in sorted(set(train.domains))},
        "temperature": point.temperature,
        "bias": point.bias,
        "threshold": point.threshold,
        "ece_before": point.ece_before,
        "ece_after": point.ece_after,
        "branches": dataclasses.asdict(point.branches) if point.branches else None,
        "test": domain_metrics(y_test, p_test, split_domains(frame, "test"), point.threshold),
        "test_scores": {"y": y_test.tolist(), "p": p_test.tolist()},
    }
    test = Scored(y_test, p_test, split_domains(frame, "test"))
    if alt is not None:
        result["alt"] = {"threshold": alt.threshold, "test": _at_point(test, point, alt)}
    if held is not None:
        y_held, p_held = _predict(model, PoolDataset(held, eval_preset), cfg.batch_size)
        result["holdout"] = domain_metrics(y_held, p_held, list(held.manifest["domain"]),
                                           point.threshold)  # fmt: skip
    for root in checks or []:
        c = score_photo_set(model, root, eval_preset)
        result.setdefault("checks", {})[root.name] = {
            **domain_metrics(c.y, c.p, c.domains, point.threshold),
            "scores": {"y": c.y.tolist(), "p": c.p.tolist(), "domain": c.domains},
        }
    if gate is not None:
        with _gate_watch(model, arch) as photo_like:
            g = score_photo_set(model, gate, eval_preset)
        if photo_like:
            result["gate_photo_like"] = _photo_like(photo_like, g.domains)
        result["gate"] = domain_metrics(g.y, g.p, g.domains, point.threshold)
        result["gate_scores"] = {"y": g.y.tolist(), "p": g.p.tolist(), "domain": g.domains}
        if alt is not None:
            result["alt"]["gate"] = _at_point(g, point, alt)
    return result


@contextlib.contextmanager
def _gate_watch(model: torch.nn.Module, arch: str) -> Iterator[list[bool]]:
    """Collects, per scored image, whether a gated head's gate calls it a photo."""
    seen: list[bool] = []
    head = final_layer(model, arch)
    if not isinstance(head, GatedPriorHead):
        yield seen
        return

    def hook(_m: Any, _i: Any, out: torch.Tensor) -> None:
        seen.extend(bool(v) for v in (out.ravel() > 0).tolist())

    handle = head.gate.register_forward_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


def _photo_like(seen: list[bool], domains: list[str]) -> dict[str, str]:
    """``k/n`` images per domain that the gate calls photos."""
    out = {}
    for d in sorted(set(domains)):
        picks = [s for s, dd in zip(seen, domains, strict=True) if dd == d]
        out[d] = f"{sum(picks)}/{len(picks)}"
    return out


def _held_out(holdout: tuple[Path, list[str]] | None) -> PhotoSet | None:
    """The images of the pool ``holdout[0]`` whose source package is one of ``holdout[1]``."""
    if holdout is None:
        return None
    pool = load_photo_set(holdout[0])
    package = pool.manifest["source"].str.rpartition("@")[0]
    manifest = pool.manifest[package.isin(holdout[1])].reset_index(drop=True)
    if manifest.empty:
        raise ValueError(f"no image of {holdout[0]} comes from {holdout[1]}")
    return dataclasses.replace(pool, manifest=manifest)


def _without(pool: PhotoSet, held: PhotoSet) -> PhotoSet:
    """``pool`` less the held-out images (by sha256)."""
    keep = ~pool.manifest["sha256"].isin(set(held.manifest["sha256"]))
    return dataclasses.replace(pool, manifest=pool.manifest[keep].reset_index(drop=True))


def _by_domain(r: dict[str, Any], metric: str, key: str = "") -> dict[str, float]:
    """``metric`` per domain: photo and emoji from the gate set, illustration from the test."""
    src = r[key] if key else r
    nan = float("nan")
    return {
        "all": src.get("gate", {}).get(f"all_{metric}", nan),
        "photo": src.get("gate", {}).get(f"photo_{metric}", nan),
        "emoji": src.get("gate", {}).get(f"emoji_{metric}", nan),
        "illustration": src["test"].get(f"all_{metric}", nan),
    }


def print_table(results: list[dict[str, Any]]) -> None:
    """One markdown row per configuration.

    AUC "all" is the gate set's photos and emoji together; illustration is the dataset's test
    split. Recall and safe flagged are at the stored threshold (photo / emoji / illustration);
    with ``--also-calibrate-with``, a second pair of columns at the other operating point.
    """
    alt = any("alt" in r for r in results)
    head = (
        "| recipe | arch | train s | AUC all | photo | emoji | illustration | min | "
        "recall p/e/i | safe flagged p/e/i | ECE before→after |"
    )
    if alt:
        head += " recall p/e/i, +pool | safe flagged p/e/i, +pool |"
    held = any("holdout" in r for r in results)
    if held:
        head += " held-out AUC | recall | flagged |"
    print(head)
    print("|---" * (head.count("|") - 1) + "|")
    for r in results:
        auc = _by_domain(r, "auc")
        cells = [
            r["config"],
            r["arch"],
            f"{r['train_seconds']:.0f}",
            *(f"{auc[d]:.3f}" for d in ("all", *DOMAINS)),
            f"{min(auc[d] for d in DOMAINS):.3f}",
        ]
        for key in ("", "alt") if "alt" in r else ("",):
            for metric in ("recall", "safe_flagged"):
                values = _by_domain(r, metric, key)
                cells.append(" / ".join(f"{values[d]:.2f}" for d in DOMAINS))
            if not key:
                cells.append(f"{r['ece_before']:.3f}→{r['ece_after']:.3f}")
        if held:
            h = r.get("holdout", {})
            cells += [f"{h.get(f'all_{m}', float('nan')):.3f}" for m in HELD_METRICS]
        print("| " + " | ".join(cells) + " |")
    for r in results:
        if "gate_photo_like" in r:
            print(f"{r['config']}: the gate calls photos {r['gate_photo_like']}")
        if r.get("branches"):
            b = r["branches"]
            print(
                f"{r['config']}: threshold {r['threshold']:.4f}; per branch photo "
                f"{b['photo_threshold']:.4f}, drawing {b['drawing_threshold']:.4f}"
            )


def plot_roc(results: list[dict[str, Any]], path: Path) -> None:
    """ROC curves on the gate set, one panel per domain, one line per configuration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_auc_score, roc_curve

    panels = ("all", "photo", "emoji", "illustration")
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.6))
    for ax, domain in zip(axes, panels, strict=True):
        for r in results:
            s = r["test_scores"] if domain == "illustration" else r.get("gate_scores")
            if not s:
                continue
            y, p = np.asarray(s["y"]), np.asarray(s["p"])
            d = np.asarray(s.get("domain", [domain] * len(y)))
            mask = np.ones_like(y, dtype=bool) if domain in ("all", "illustration") else d == domain
            if len(np.unique(y[mask])) < 2:
                continue
            fpr, tpr, _ = roc_curve(y[mask], p[mask])
            auc = roc_auc_score(y[mask], p[mask])
            ax.plot(fpr, tpr, label=f"{r['config']} ({auc:.3f})")
        ax.plot([0, 1], [0, 1], ":", color="grey")
        where = "test split" if domain == "illustration" else "gate set"
        ax.set(title=f"{where}: {domain}", xlabel="safe images flagged", ylabel="harmful recall")
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def _holdout(value: str) -> tuple[Path, list[str]] | None:
    if not value:
        return None
    pool, _, packages = value.partition(":")
    return Path(pool), packages.split(",")


def _calibrated_by(name: str, default: list[Path]) -> tuple[str, list[Path]]:
    """``NAME~SET[+SET]``: the configuration NAME and its calibration sets (else ``default``)."""
    name, tilde, sets = name.partition("~")
    return name, _paths(sets.replace("+", ",")) if tilde else default


def _configs(text: str) -> str:
    """``--configs``, each name checked before the dataset is built (argparse type)."""
    for name in text.split(","):
        try:
            config(_calibrated_by(name, [])[0])
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _paths(value: str) -> list[Path]:
    return [Path(v) for v in value.split(",") if v]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=None)
    parser.add_argument("--gate", type=Path, default=None)
    parser.add_argument("--calibration-photos", default="", help="photo sets, comma-separated")
    parser.add_argument("--also-calibrate-with", default="", help="sets, comma-separated")
    parser.add_argument(
        "--holdout",
        default="",
        help="POOL:PKG[,PKG]: that pool's images from those packages train nothing; "
        "every configuration is scored on them",
    )
    parser.add_argument("--image-size", type=int, default=160)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--archs", default="mobilenet_v2")
    parser.add_argument("--configs", default=",".join(CONFIGS), type=_configs)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    base = {
        "image_size": args.image_size,
        "epochs": args.epochs,
        "num_workers": 0,
        "weights": WEIGHTS,
    }
    names = args.configs.split(",")
    for name in names:
        config(_calibrated_by(name, [])[0])  # every name is checked before the first one trains
    results = []
    with tempfile.TemporaryDirectory(prefix="recipe-bench-") as tmp:
        dataset = args.dataset or mirror_dataset(Path(tmp))
        for arch in args.archs.split(","):
            for full in names:
                name, calibration = _calibrated_by(full, _paths(args.calibration_photos))
                results.append(
                    run_config(
                        name,
                        arch,
                        dataset,
                        args.gate,
                        calibration,
                        base,
                        _paths(args.also_calibrate_with),
                        _holdout(args.holdout),
                    )
                )
                results[-1]["config"] = full
                print_table(results[-1:])
    print_table(results)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    if args.plot:
        plot_roc(results, args.plot)


if __name__ == "__main__":
    main()
