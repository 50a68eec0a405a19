"""A demo-style trained model for the int8 measurements: probe + prior on the offline mirror.

The main job's recipe (``train.recipe: probe``, ``head: prior``, ``prior_mix: 0.5``, the frozen
ImageNet MobileNetV2), trained on the mirror's harmful and safe images at 160 px (as `./dev demo`
does), calibrated on validation plus ``photopool/`` (the local profile), exported to ONNX. The
export, its serving spec and the dataset folder are cached in ``--cache`` so that the int8
benchmarks can be rerun without training again.

    nice -n 10 .venv/bin/python bench/int8_trained.py --cache /tmp/harmscan-trained
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from harmscan.bundle import ServingSpec  # noqa: E402

WEIGHTS = {"mobilenet_v2": "weights/mobilenet_v2_imagenet.pth", "resnet50": "imagenet"}


def trained_model(
    cache: Path, *, image_size: int = 160, arch: str = "mobilenet_v2"
) -> tuple[Path, ServingSpec, Path]:
    """(float ONNX export, serving spec, dataset folder) of the demo-style model, cached."""
    onnx_path, spec_path, dataset = cache / "model.onnx", cache / "spec.json", cache / "data"
    if onnx_path.is_file() and spec_path.is_file():
        return onnx_path, ServingSpec(**_spec_fields(json.loads(spec_path.read_text()))), dataset
    import torch
    from recipe_bench import mirror_dataset
    from torch.utils.data import DataLoader

    from conf.settings import TrainSettings
    from harmscan.data import ManifestDataset, read_manifest, split_domains
    from harmscan.engine import evaluate, seed_everything
    from harmscan.models import export_onnx, resolve_weights
    from harmscan.presets import TrainPreset
    from harmscan.trainjob import build_recipe_model
    from harmscan.transfer import RecipeData, train_recipe
    from tasks.recipes import Scored, calibrate_on_mix, score_photo_set

    cache.mkdir(parents=True, exist_ok=True)
    mirror_dataset(dataset)
    cfg = TrainSettings(image_size=image_size, epochs=3, num_workers=0, weights=WEIGHTS,
                        recipe="probe", head="prior", prior_mix=0.5)  # fmt: skip
    seed_everything(cfg.seed)
    frame = read_manifest(dataset)
    preset = TrainPreset(image_size=cfg.image_size, augment=cfg.augment).eval_preset

    def loader(split: str) -> DataLoader:  # type: ignore[type-arg]
        return DataLoader(ManifestDataset(dataset, split, preset, frame), batch_size=32)

    data = RecipeData(train=loader("train"), probe=loader("train"), val=loader("val"))
    model = build_recipe_model(arch, resolve_weights(arch, cfg.weights[arch]), cfg)
    train_recipe(model, arch, data, cfg, device=torch.device("cpu"))
    preds = evaluate(model, data.val, torch.device("cpu"), description="val")
    val = Scored(preds.y_true, preds.p_harmful, split_domains(frame, "val", "illustration"))
    photos = score_photo_set(model, REPO / "photopool", preset)
    point = calibrate_on_mix(model, arch, val, photos, cfg)
    export_onnx(model, onnx_path, image_size)
    spec = ServingSpec(arch=arch, threshold=point.threshold, review_low=point.threshold,
                       review_high=point.threshold, image_size=preset.image_size,
                       resize_size=preset.resize)  # fmt: skip
    spec_path.write_text(json.dumps(dataclasses.asdict(spec)))
    return onnx_path, spec, dataset


def _spec_fields(raw: dict) -> dict:  # type: ignore[type-arg]
    return {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--image-size", type=int, default=160, help="the demo's; --full: 224")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    onnx_path, spec, dataset = trained_model(args.cache, image_size=args.image_size)
    print(onnx_path, spec, dataset)


if __name__ == "__main__":
    main()
