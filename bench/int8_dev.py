"""int8 configurations of the main job's gated model judged on development data, not the checks.

The development metric and the adoption rule are in docs/int8-development.md (written before
this ran): each drawing pool (and each photo pool) is split in two halves by sha256 within each
label; the even halves may calibrate a candidate, the odd halves and the dataset's test split are
the development set of every candidate. Per domain it prints the served score's ΔAUC int8 - float
with a paired bootstrap 95 % interval, the decisions flipped at the stored threshold and the
median |Δ log-odds|; then every graph's speed against float (pixel input, batch 16, one thread,
round-robin in one run). The validation split and the gate set are not read.

    nice -n 10 .venv/bin/python bench/int8_dev.py --dataset <dataset folder> \
        --cache /tmp/int8-dev --image-size 160
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import logging
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

DRAWING_POOLS = ("drawpool", "iconpool", "glyphpool", "emojipool")
PHOTO_POOLS = ("lifepool", "objectpool")  # safe only; photopool (24) may calibrate, never judge
CALIBRATION_ONLY = ("photopool",)


@dataclass(frozen=True)
class Image:
    path: Path
    harmful: int
    domain: str
    source: str


def halves(pool: str) -> tuple[list[Image], list[Image]]:
    """(calibration half, development half) of a pool: within each label, sorted by sha256,
    alternately (the same split for every candidate)."""
    folder = REPO / pool
    with (folder / "manifest.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    cal: list[Image] = []
    dev: list[Image] = []
    for label in ("harmful", "safe"):
        chosen = sorted((r for r in rows if r["label"] == label), key=lambda r: r["sha256"])
        for i, row in enumerate(chosen):
            image = Image(folder / row["file"], int(label == "harmful"), row["domain"], pool)
            (cal if i % 2 == 0 else dev).append(image)
    return cal, dev


def test_split(dataset: Path) -> list[Image]:
    from harmscan.checksets import CheckSet

    test = CheckSet.from_manifest(dataset, split="test", name="test")
    domains = test.domains or ("illustration",) * len(test.paths)
    return [
        Image(p, int(y), d, "test")
        for p, y, d in zip(test.paths, test.harmful, domains, strict=True)
    ]


@dataclass(frozen=True)
class Candidate:
    """One int8 configuration: `QuantizeOptions` fields, float blocks, calibration mix, and
    extra ONNX Runtime quantization options."""

    options: dict[str, Any] = field(default_factory=dict)
    blocks: str = ""
    calibration: str = "train"  # train | train+drawings | stratified | stratified-large
    extra: dict[str, Any] = field(default_factory=dict)


CANDIDATES: dict[str, Candidate] = {
    "minmax, train (today)": Candidate(),
    "minmax, train + drawings": Candidate(calibration="train+drawings"),
    "minmax, stratified": Candidate(calibration="stratified"),
    "minmax, stratified large": Candidate(calibration="stratified-large"),
    "minmax, symmetric activations": Candidate(extra={"ActivationSymmetric": True}),
    "percentile 99.99, train": Candidate({"method": "percentile", "percentile": 99.99}),
    "percentile 99.9, train": Candidate({"method": "percentile", "percentile": 99.9}),
    "percentile 99.999, stratified": Candidate({"method": "percentile"}, calibration="stratified"),
    "percentile 99.999, blocks 0-3 float": Candidate({"method": "percentile"}, blocks="0,1,2,3"),
    "percentile 99.999, stratified, blocks 0-3 float": Candidate(
        {"method": "percentile"}, blocks="0,1,2,3", calibration="stratified"
    ),
    "minmax, stratified, blocks 0-3 float": Candidate(blocks="0,1,2,3", calibration="stratified"),
    "minmax, blocks 0-3 float": Candidate(blocks="0,1,2,3"),
    "minmax, stratified, blocks 0-1 float": Candidate(blocks="0,1", calibration="stratified"),
    "percentile 99.999, blocks 0-6 float": Candidate(
        {"method": "percentile"}, blocks="0,1,2,3,4,5,6"
    ),
    "percentile 99.995, blocks 0-3 float": Candidate(
        {"method": "percentile", "percentile": 99.995}, blocks="0,1,2,3"
    ),
    "percentile 99.999, stratified large, blocks 0-3 float": Candidate(
        {"method": "percentile"}, blocks="0,1,2,3", calibration="stratified-large"
    ),
    "percentile 99.999, stratified large, blocks 0-6 float": Candidate(
        {"method": "percentile"}, blocks="0,1,2,3,4,5,6", calibration="stratified-large"
    ),
}


def calibration_paths(how: str, train: list[Path], cal: dict[str, list[Image]]) -> list[Path]:
    """Today's sample (64 training images, seed 0, as registration draws it) plus, by ``how``,
    the calibration halves of the drawing pools and photos, the same number from each pool."""
    from harmscan.pixelscore import sample_paths

    large = how == "stratified-large"
    paths = sample_paths(train, 128 if large else 64, seed=0)
    if how == "train":
        return paths
    per_pool = 32 if large else 16
    for pool in DRAWING_POOLS:
        paths += sample_paths([i.path for i in cal[pool]], per_pool, seed=0)
    if how.startswith("stratified"):
        photos = [i.path for pool in (*PHOTO_POOLS, *CALIBRATION_ONLY) for i in cal[pool]]
        paths += sample_paths(photos, per_pool * 2, seed=0)
    return paths


@contextlib.contextmanager
def ort_extra(extra: dict[str, Any]) -> Iterator[None]:
    """ONNX Runtime's ``quantize_static`` with ``extra`` merged into its extra options."""
    import onnxruntime.quantization as q

    original = q.quantize_static

    def patched(*args: Any, **kwargs: Any) -> Any:
        kwargs["extra_options"] = {**kwargs.get("extra_options", {}), **extra}
        return original(*args, **kwargs)

    q.quantize_static = patched
    try:
        yield
    finally:
        q.quantize_static = original


def build(name: str, onnx_path: Path, spec: Any, batches: list[np.ndarray], work: Path) -> Path:
    """The pixel-input int8 graph of one candidate."""
    import onnx
    from int8_gated import float_nodes
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from harmscan.onnx_export import write_pixel_model
    from harmscan.presets import EvalPreset
    from harmscan.quantize import QuantizeOptions, quantize_int8

    candidate = CANDIDATES[name]
    fields = dict(candidate.options)
    if candidate.blocks:
        quant_pre_process(str(onnx_path), str(work / "pre.onnx"))
        fields["float_nodes"] = float_nodes(onnx.load(str(work / "pre.onnx")),
                                            f"blocks:{candidate.blocks}")  # fmt: skip
    with ort_extra(candidate.extra):
        nchw = quantize_int8(onnx_path, work / "q.onnx", batches, QuantizeOptions(**fields))
    slug = "".join(c if c.isalnum() else "_" for c in name)
    return write_pixel_model(nchw, work / f"{slug}.onnx", preset=EvalPreset.from_spec(spec))


def log_odds(graph: Path, spec: Any, decoded: list[tuple[list[int], np.ndarray]], n: int) -> Any:
    from int8_configs import session

    from harmscan.bundle import HARMFUL

    s = session(graph, 1)
    harmful = spec.labels.index(HARMFUL)
    out = np.full(n, np.nan)
    for indices, batch in decoded:
        logits = np.asarray(s.run(None, {s.get_inputs()[0].name: batch})[0], dtype=np.float64)
        out[indices] = logits[:, harmful] - logits[:, 1 - harmful]
    return out


def auc(y: np.ndarray, s: np.ndarray) -> float:
    """Mann-Whitney AUC (ties half)."""
    from scipy.stats import rankdata

    pos = y == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    ranks = rankdata(s)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def bootstrap(y: np.ndarray, f: np.ndarray, q: np.ndarray, rounds: int = 2000) -> Any:
    """95 % interval of ΔAUC and the share of resamples below 0 (resampled within label)."""
    rng = np.random.default_rng(0)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    deltas = np.empty(rounds)
    for r in range(rounds):
        idx = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
        deltas[r] = auc(y[idx], q[idx]) - auc(y[idx], f[idx])
    lo, hi = np.percentile(deltas, [2.5, 97.5])
    return lo, hi, float(np.mean(deltas < 0))


def rows(name: str, images: list[Image], f: np.ndarray, q: np.ndarray, cut: float) -> list[str]:
    """One table row per domain (and all)."""
    y = np.asarray([i.harmful for i in images])
    domains = np.asarray([i.domain for i in images])
    out = []
    for domain in ("all", *sorted(set(domains))):
        m = np.ones(len(y), bool) if domain == "all" else domains == domain
        m &= ~np.isnan(f) & ~np.isnan(q)
        yy, ff, qq = y[m], f[m], q[m]
        fc, qc = ff > cut, qq > cut
        lost = int(np.sum(fc & ~qc & (yy == 1)))
        gained = int(np.sum(~fc & qc & (yy == 1)))
        flagged = int(np.sum(~fc & qc & (yy == 0)))
        unflagged = int(np.sum(fc & ~qc & (yy == 0)))
        n_h, n_s = int(yy.sum()), int((1 - yy).sum())
        if n_h and n_s:
            fa, qa = auc(yy, ff), auc(yy, qq)
            lo, hi, below = bootstrap(yy, ff, qq)
            delta = f"{fa:.4f} | {qa - fa:+.4f} [{lo:+.4f}, {hi:+.4f}] {below:.1%}"
        else:
            delta = "– | –"
        out.append(
            f"| {name} | {domain} | {n_h}/{n_s} | {delta} | {lost}/{gained} | "
            f"{flagged}/{unflagged} | {np.median(np.abs(qq - ff)):.3f} |"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--image-size", type=int, default=160)
    parser.add_argument("--candidates", default=";".join(CANDIDATES), help="names, ; apart")
    parser.add_argument("--rounds", type=int, default=8, help="speed turns (0: no timing)")
    parser.add_argument("--speed-only", action="store_true", help="build and time, no scores")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    logging.basicConfig(level=logging.WARNING)
    import torch
    from int8_configs import session, time_round_robin
    from int8_gated import trained
    from scipy.special import logit

    from harmscan.checksets import CheckSet
    from harmscan.onnx_export import write_pixel_model
    from harmscan.pixelscore import normalized_batches, pixel_batches
    from harmscan.presets import EvalPreset

    torch.set_num_threads(1)
    dataset = args.dataset.resolve()
    onnx_path, spec = trained(args.cache, dataset, args.image_size)
    cut = float(logit(spec.threshold))
    print(f"## {args.image_size} px, threshold {spec.threshold:.4f}", flush=True)
    cal: dict[str, list[Image]] = {}
    dev: list[Image] = []
    for pool in (*DRAWING_POOLS, *PHOTO_POOLS, *CALIBRATION_ONLY):
        cal[pool], held = halves(pool)
        if pool not in CALIBRATION_ONLY:
            dev += held
    dev += test_split(dataset)
    pixels = EvalPreset.from_spec(spec, normalize_in_model=True)
    decoded = list(pixel_batches([i.path for i in dev], pixels))
    train = list(CheckSet.from_manifest(dataset, split="train").paths)
    print("| candidate | domain | harmful/safe | AUC float | ΔAUC [95 %] share < 0 | harmful "
          "lost/gained | safe flagged/unflagged | median abs Δ log-odds |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|", flush=True)
    with tempfile.TemporaryDirectory(prefix="int8-dev-") as tmp:
        work = Path(tmp)
        graphs = {"float": write_pixel_model(onnx_path, work / "float.onnx",
                                             preset=EvalPreset.from_spec(spec))}  # fmt: skip
        f = log_odds(graphs["float"], spec, decoded, len(dev))
        batches_of: dict[str, list[np.ndarray]] = {}
        for name in (n for n in args.candidates.split(";") if n):
            how = CANDIDATES[name].calibration
            if how not in batches_of:
                batches_of[how] = normalized_batches(calibration_paths(how, train, cal), spec)
            graphs[name] = build(name, onnx_path, spec, batches_of[how], work)
            if args.speed_only:
                continue
            q = log_odds(graphs[name], spec, decoded, len(dev))
            calibrated = sum(len(b) for b in batches_of[how])
            for row in rows(f"{name} ({calibrated} cal.)", dev, f, q, cut):
                print(row, flush=True)
        if args.rounds < 1:
            return
        batch = decoded[0][1]
        sessions = {name: session(path, 1) for name, path in graphs.items()}
        timed = time_round_robin(sessions, batch, args.rounds, 1.0)
        best_f, median_f = timed["float"]
        for name, (best, median) in timed.items():
            print(f"speed | {name} | {best:.1f} img/s best ({best / best_f:.2f}x float) | "
                  f"{median:.1f} median ({median / median_f:.2f}x)", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
