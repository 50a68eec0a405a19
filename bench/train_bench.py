"""Training and evaluation throughput (images/s) of both architectures on the CPU.

    .venv/bin/python bench/train_bench.py [--image-size 224] [--batch 16] [--steps 5] [--threads 2]

Measures one optimizer step (forward + backward + AdamW) on random tensors, evaluation
(forward under inference_mode), and the data pipeline (decode + TrainPreset / EvalPreset) on
synthetic JPEGs, then prints figures and the ResNet50 / MobileNetV2 ratios. Numbers depend on
what else runs on the machine: run it on a quiet one.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import time

import numpy as np
import torch
from PIL import Image
from torch import nn

from harmscan.imageio import decode_image
from harmscan.models import WeightsSource, build_model
from harmscan.presets import EvalPreset, TrainPreset

ARCHS = ("mobilenet_v2", "resnet50")


def _rate(fn, images_per_call: int, steps: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return images_per_call * steps / (time.perf_counter() - start)


def bench_model(arch: str, image_size: int, batch: int, steps: int) -> dict[str, float]:
    logging.getLogger("harmscan.models").disabled = True  # the from-scratch warning is no news
    model = build_model(arch, WeightsSource("none"))
    x = torch.randn(batch, 3, image_size, image_size)
    y = torch.randint(0, 2, (batch,))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    criterion = nn.CrossEntropyLoss()

    def train_step() -> None:
        model.train()
        optimizer.zero_grad(set_to_none=True)
        criterion(model(x), y).backward()
        optimizer.step()

    @torch.inference_mode()
    def eval_step() -> None:
        model.eval()
        model(x2)

    x2 = torch.randn(batch * 2, 3, image_size, image_size)
    return {
        "train": _rate(train_step, batch, steps),
        "eval": _rate(eval_step, batch * 2, steps),
    }


def bench_pipeline(image_size: int, n: int = 32) -> dict[str, float]:
    rng = np.random.default_rng(0)
    blobs = []
    for _ in range(n):
        buffer = io.BytesIO()
        pixels = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
        blobs.append(buffer.getvalue())
    train, evalp = TrainPreset(image_size=image_size), EvalPreset(image_size=image_size)
    return {
        "decode+train_preset": _rate(lambda: [train(decode_image(b)) for b in blobs], n, 2),
        "decode+eval_preset": _rate(lambda: [evalp(evalp.decode(b)) for b in blobs], n, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"CPU, {args.threads} threads, {args.image_size}px, batch {args.batch} (eval 2x)")
    print(f"load average before: {load} on {os.cpu_count()} cores (others slow these figures)")
    results = {arch: bench_model(arch, args.image_size, args.batch, args.steps) for arch in ARCHS}
    for arch, r in results.items():
        print(f"{arch:13s} train {r['train']:7.1f} img/s   eval {r['eval']:7.1f} img/s")
    for kind in ("train", "eval"):
        ratio = results["mobilenet_v2"][kind] / results["resnet50"][kind]
        print(f"mobilenet_v2 / resnet50 {kind} speed ratio: {ratio:.2f}x")
    for name, rate in bench_pipeline(args.image_size).items():
        print(f"data pipeline {name:20s} {rate:7.1f} img/s (one process, 640x480 JPEG)")


if __name__ == "__main__":
    main()
