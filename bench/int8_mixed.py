"""int8 of a demo-style trained model, side by side: accuracy as registration judges it, and speed.

Used by ``bench/int8_configs.py --trained DIR``. Every configuration goes through
`harmscan.precision.Int8Plan` as registration does (calibration on the train split, plus
``photopool/`` when asked; mixed precision with ``float_nodes: auto``); each int8 graph is scored
with the float one on the validation split and the gate set (the AUC change per group is what the
check compares with ``int8.tolerance``), then every graph is timed on one batch of served pixels,
round-robin, on 1 and on 2 threads.
"""

from __future__ import annotations

import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from int8_configs import session, time_round_robin
from int8_trained import trained_model

from harmscan.checksets import pooled
from harmscan.int8check import check_int8
from harmscan.pixelscore import p_harmful_each, pixel_batches
from harmscan.precision import Int8Plan
from harmscan.presets import EvalPreset
from harmscan.quantize import QuantizeOptions

# name: (QuantizeOptions fields, calibration photo pools)
CONFIGS: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "minmax (all int8 but the head)": ({}, ()),
    "minmax + photopool calibration": ({}, ("photopool",)),
    "percentile 99.999": ({"method": "percentile"}, ()),
    "percentile 99.999 + photopool": ({"method": "percentile"}, ("photopool",)),
    "minmax, float_nodes auto (<= 9)": ({"float_nodes": "auto"}, ()),
    "minmax, float_nodes auto (<= 3)": ({"float_nodes": "auto", "max_float_nodes": 3}, ()),
    "minmax, float_nodes auto + photopool": ({"float_nodes": "auto"}, ("photopool",)),
}
GROUPS = ("all", "val", "gate/photo", "gate/emoji")


def trained_table(
    cache: Path, *, rounds: int, seconds: float, batch: int, only: list[str] | None = None
) -> None:
    """Build, judge and time every configuration (or those in ``only``); print one table."""
    configs = {n: c for n, c in CONFIGS.items() if not only or n in only}
    warnings.simplefilter("ignore")
    float_onnx, spec, dataset = trained_model(cache)
    base = Int8Plan.for_dataset(dataset)
    checks = base.checks
    paths, labels, groups = pooled(checks)
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="int8-mixed-") as tmp:
        graphs: dict[str, Path] = {}
        for i, (name, (fields, photos)) in enumerate(configs.items()):
            plan = Int8Plan.for_dataset(
                dataset, options=QuantizeOptions(**fields), calibration_photos=photos
            )
            folder = Path(tmp) / f"c{i}"
            folder.mkdir()
            (folder / "model.onnx").symlink_to(float_onnx)
            start = time.perf_counter()
            # the plan's own check runs too (as registration would): its seconds are counted
            served = plan.build(folder / "model.onnx", folder, spec)
            rows[name] = {
                "seconds": time.perf_counter() - start,
                "float_nodes": len(served.check.float_nodes),
                "approved": served.check.approved,
            }
            graphs.setdefault("float", served.files[0])
            graphs[name] = served.files[1]
            print(f"built {name}: {served.check.reason}", flush=True)
        scores = dict(zip(graphs, p_harmful_each(list(graphs.values()), spec, paths), strict=True))
        for name in configs:
            check = check_int8(labels, scores["float"], scores[name], groups)
            rows[name]["delta"] = {g: check.int8_auc[g] - check.float_auc[g] for g in GROUPS}
        preset = EvalPreset.from_spec(spec, normalize_in_model=True)
        pixels = next(pixel_batches(paths, preset, batch))[1]
        speed = {}
        for threads in (1, 2):
            sessions = {name: session(path, threads) for name, path in graphs.items()}
            speed[threads] = time_round_robin(sessions, pixels, rounds, seconds)
    load = os.getloadavg()
    print(
        f"\n{spec.arch} {spec.image_size} px, probe + prior; batch {batch}, best of {rounds} "
        f"turns of {seconds:.0f} s; load average {load[0]:.1f} / {load[1]:.1f} (2 cores, shared)"
    )
    print("float AUC:", {g: round(v, 4) for g, v in check.float_auc.items() if g in GROUPS})
    print("| int8 configuration | ΔAUC all | val | gate photo | gate emoji | check | float "
          "nodes | × float 1 thread | × float 2 threads | build s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, row in rows.items():
        d = row["delta"]
        ratios = [speed[t][name][0] / speed[t]["float"][0] for t in (1, 2)]
        print(f"| {name} | {d['all']:+.4f} | {d['val']:+.4f} | {d['gate/photo']:+.4f} | "
              f"{d['gate/emoji']:+.4f} | {'pass' if row['approved'] else 'fail'} | "
              f"{row['float_nodes']} | {ratios[0]:.2f} | {ratios[1]:.2f} | "
              f"{row['seconds']:.0f} |")  # fmt: skip
