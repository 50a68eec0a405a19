"""The probe views' feature pass side by side: torch against ONNX Runtime, one run.

    nice -n 10 .venv/bin/python bench/probe_views_bench.py --image-size 224 --views 1 --rounds 2

Builds the main job's probe loader (`harmscan.trainjob.training_loaders` with
``train.probe_views``: the mirror's training split and the pools, seeded per row), takes its
first ``--rows`` rows, and times in alternating rounds: the loader alone (decode + augment), then
the loader plus each engine's feature pass (`harmscan.recipes.extract_features`,
`harmscan.featurepass.onnx_features`). Prints wall and CPU seconds per 1000 rows (minimum and
median over rounds), the ratios, and the largest feature difference between the engines.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

sys.path.insert(0, str(Path(__file__).resolve().parent))

from recipe_bench import WEIGHTS, mirror_dataset

from conf.settings import TrainSettings
from harmscan.data import read_manifest
from harmscan.featurepass import onnx_features
from harmscan.models import resolve_weights
from harmscan.recipes import extract_features
from harmscan.trainjob import build_recipe_model, training_loaders
from harmscan.trainsets import resolve_training_sets

ARCH = "mobilenet_v2"


def _timed(work: Callable[[], object]) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = work()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--views", type=int, default=1)
    parser.add_argument("--rows", type=int, default=256, help="first rows of the views timed")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pools", default="drawpool,iconpool")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pools = [p for p in args.pools.split(",") if p]
    cfg = TrainSettings(image_size=args.image_size, num_workers=0, weights=WEIGHTS,
                        probe_views=args.views, extra_train_sets=pools,
                        batch_size=args.batch_size)  # fmt: skip
    model = build_recipe_model(ARCH, resolve_weights(ARCH, WEIGHTS[ARCH]), cfg.model_copy(
        update={"head": "prior"}))  # fmt: skip
    cpu = torch.device("cpu")
    with tempfile.TemporaryDirectory(prefix="views-bench-") as tmp:
        dataset = mirror_dataset(Path(tmp))
        frame = read_manifest(dataset)
        data = training_loaders(dataset, cfg, frame, resolve_training_sets(pools, None), "x")
        rows = Subset(data.probe.dataset, range(min(args.rows, len(data.probe.dataset))))
        loader = DataLoader(rows, batch_size=args.batch_size)
        work: dict[str, Callable[[], object]] = {
            "loader alone": lambda: [len(y) for _, y in loader],
            "torch": lambda: extract_features(model, ARCH, loader, cpu)[0],
            "onnx": lambda: onnx_features(model, ARCH, loader, threads=args.threads)[0],
        }
        times: dict[str, list[tuple[float, float]]] = {k: [] for k in work}
        features: dict[str, np.ndarray] = {}
        for _ in range(args.rounds):
            for name, job in work.items():
                wall, used, out = _timed(job)
                times[name].append((wall, used))
                if isinstance(out, np.ndarray):
                    features[name] = out
    n = len(rows)
    print(f"{n} rows of {args.views} view(s) at {args.image_size} px, batch {args.batch_size}, "
          f"{args.threads} threads, {args.rounds} rounds (machine shared)")  # fmt: skip
    for name, pairs in times.items():
        walls, cpus = [1000 * w / n for w, _ in pairs], [1000 * c / n for _, c in pairs]
        print(f"{name:>12}: wall s/1000 rows min {min(walls):.1f} median "
              f"{statistics.median(walls):.1f}; CPU min {min(cpus):.1f} median "
              f"{statistics.median(cpus):.1f}")  # fmt: skip
    best = {k: min(w for w, _ in v) for k, v in times.items()}
    best_cpu = {k: min(c for _, c in v) for k, v in times.items()}
    print(f"onnx / torch: wall {best['onnx'] / best['torch']:.2f}x, "
          f"CPU {best_cpu['onnx'] / best_cpu['torch']:.2f}x (loader included)")  # fmt: skip
    diff = float(np.abs(features["onnx"] - features["torch"]).max())
    print(f"largest feature difference {diff:.2e} (features up to "
          f"{float(np.abs(features['torch']).max()):.1f})")  # fmt: skip


if __name__ == "__main__":
    main()
