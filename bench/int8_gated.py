"""Why int8 of the main job's gated champion is refused, and which remedy makes it pass.

Trains the main job's model as `train_and_register` does (``prepare_job``, the recipe, the
calibration and the per-branch operating point; default settings of the local profile, without
a tracking server) on an ETL dataset folder, at each ``--image-sizes``, and caches the float
export and its serving spec in ``--cache``. Then every int8 configuration (``--configs``) is made
by `harmscan.precision.build_served_models` as registration makes it and judged as registration
judges it; for each it prints, per check group, the images of each label, the AUC of float and
int8, the pairs that changed order, the verdicts at the stored threshold (harmful caught / safe
flagged, float and int8, and the images whose verdict flipped), the gate's decisions that flipped
(photo branch vs drawing branch, g = 0.5) and how far the harmful log-odds moved; and the speed
of the int8 graph against float (one batch of 16 pixel inputs, 1 thread, round-robin).
``--refit-head`` also refits the head (gate, probe, calibration, per-branch thresholds) on each
int8 backbone's own features and judges that int8 model too (``int8.refit_head``).

    nice -n 10 .venv/bin/python bench/int8_gated.py --dataset ~/.harmscan/data/datasets/<v> \
        --cache /tmp/int8-gated --image-sizes 160,224
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from harmscan.bundle import ServingSpec  # noqa: E402

ARCH = "mobilenet_v2"


class _NoRun:
    """Stands in for a tracking run: the training code logs into it, nothing is kept."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


def train_overrides(image_size: int) -> dict[str, Any]:
    """The settings the model is trained with here (the local profile's otherwise)."""
    return {"train.image_size": image_size, "train.epochs": 3, "train.num_workers": 0}


def trained(cache: Path, dataset: Path, image_size: int) -> tuple[Path, ServingSpec]:
    """(float ONNX export, serving spec) of the main job's model at ``image_size``, cached."""
    folder = cache / f"{ARCH}-{image_size}"
    onnx_path, spec_path = folder / "model.onnx", folder / "spec.json"
    if onnx_path.is_file() and spec_path.is_file():
        raw = json.loads(spec_path.read_text())
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
        return onnx_path, ServingSpec(**fields)
    from conf.loader import load_settings
    from harmscan.models import export_onnx
    from harmscan.trainjob import prepare_job
    from harmscan.transfer import train_recipe
    from tasks.training import _evaluate

    settings = load_settings("local", train_overrides(image_size))
    job = prepare_job(settings, ARCH, dataset)
    outcome = train_recipe(job.model, ARCH, job.data, job.settings.train, device=job.device,
                           class_weights=job.class_weights)  # fmt: skip
    spec, _, _ = _evaluate(_NoRun(), job, outcome)  # type: ignore[arg-type]
    folder.mkdir(parents=True, exist_ok=True)
    export_onnx(job.model, onnx_path, image_size)
    spec_path.write_text(json.dumps(dataclasses.asdict(spec)))
    return onnx_path, spec


GATE_OUTPUT = "/classifier/classifier.1/Sigmoid_output_0"
FEATURES_OUTPUT = "/Flatten_output_0"


def with_probes(graph: Path, dest: Path) -> Path:
    """The graph with the gate's ``g`` and the pooled features as extra outputs (same numbers)."""
    import onnx

    model = onnx.load(str(graph))
    names = {n for node in model.graph.node for n in node.output}
    for name in (GATE_OUTPUT, FEATURES_OUTPUT):
        if name in names:
            model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    onnx.save(model, str(dest))
    return dest


def score(graph: Path, spec: ServingSpec, paths: list[Path]) -> dict[str, np.ndarray]:
    """Harmful log-odds, ``g`` and pooled features of each image, decoded as the consumer does."""
    import onnxruntime as ort

    from harmscan.bundle import HARMFUL
    from harmscan.pixelscore import pixel_batches
    from harmscan.presets import EvalPreset

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
    outputs = [o.name for o in session.get_outputs()]
    harmful = spec.labels.index(HARMFUL)
    odds = np.full(len(paths), np.nan)
    gate = np.full(len(paths), np.nan)
    feats: dict[int, np.ndarray] = {}
    preset = EvalPreset.from_spec(spec, normalize_in_model=True)
    for indices, batch in pixel_batches(paths, preset):
        got = dict(zip(outputs, session.run(None, {session.get_inputs()[0].name: batch}),
                       strict=True))  # fmt: skip
        logits = np.asarray(got["logits"], dtype=np.float64)
        odds[indices] = logits[:, harmful] - logits[:, 1 - harmful]
        if GATE_OUTPUT in got:
            gate[indices] = np.asarray(got[GATE_OUTPUT])[:, 0]
        for i, f in zip(indices, np.asarray(got[FEATURES_OUTPUT]), strict=True):
            feats[i] = f
    features = np.stack([feats.get(i, np.full(1280, np.nan)) for i in range(len(paths))])
    return {"odds": odds, "gate": gate, "features": features}


def swapped_pairs(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> int:
    """(harmful, safe) pairs ordered differently by the two scores (ties count as half)."""
    pos, neg = y == 1, y == 0

    def order(s: np.ndarray) -> np.ndarray:
        d = s[pos][:, None] - s[neg][None, :]
        return np.sign(d)

    return int(np.sum(order(a) != order(b)))


def describe(
    name: str,
    spec: ServingSpec,
    y: np.ndarray,
    groups: dict[str, np.ndarray],
    f: dict[str, np.ndarray],
    q: dict[str, np.ndarray],
    check: Any,
) -> list[str]:
    """One row per check group: counts, AUCs, swaps, verdicts at the threshold, gate flips."""
    from scipy.special import logit

    cut = float(logit(spec.threshold))
    rows = []
    for group, mask in {"all": np.ones(len(y), bool), **groups}.items():
        yy = y[mask]
        n_h, n_s = int(yy.sum()), int((1 - yy).sum())
        fo, qo = f["odds"][mask], q["odds"][mask]
        fg, qg = f["gate"][mask], q["gate"][mask]
        swaps = swapped_pairs(yy, fo, qo) if n_h and n_s else 0
        pairs = n_h * n_s
        fa, qa = check.float_auc.get(group, float("nan")), check.int8_auc.get(group, float("nan"))
        caught = (int(np.sum((fo > cut) & (yy == 1))), int(np.sum((qo > cut) & (yy == 1))))
        flagged = (int(np.sum((fo > cut) & (yy == 0))), int(np.sum((qo > cut) & (yy == 0))))
        flips = int(np.sum((fo > cut) != (qo > cut)))
        gate_flips = int(np.sum((fg > 0.5) != (qg > 0.5)))
        photo_branch = (int(np.sum(fg > 0.5)), int(np.sum(qg > 0.5)))
        d = np.abs(fo - qo)
        cos = np.sum(f["features"][mask] * q["features"][mask], axis=1) / (
            np.linalg.norm(f["features"][mask], axis=1)
            * np.linalg.norm(q["features"][mask], axis=1)
        )
        rows.append(
            f"| {name} | {group} | {n_h}/{n_s} | {1 / pairs if pairs else float('nan'):.4f} | "
            f"{fa:.4f} | {qa:.4f} | {qa - fa:+.4f} | {swaps} | {caught[0]}→{caught[1]} | "
            f"{flagged[0]}→{flagged[1]} | {flips} | {photo_branch[0]}→{photo_branch[1]} "
            f"({gate_flips}) | {np.median(d):.2f} / {np.max(d):.2f} | "
            f"{np.median(np.abs(fg - qg)):.3f} / {np.max(np.abs(fg - qg)):.3f} | "
            f"{np.min(cos):.3f} | {np.mean((qo - fo)[yy == 1]):+.2f} / "
            f"{np.mean((qo - fo)[yy == 0]):+.2f} |"
        )
    return rows


HEADER = (
    "| config | group | harmful/safe | 1 pair = ΔAUC | AUC float | AUC int8 | Δ | pairs "
    "swapped | caught f→q | safe flagged f→q | verdicts flipped | photo branch f→q "
    "(flips) | Δ log-odds median / max | Δg median / max | min cos(features) "
    "| mean Δ log-odds harmful / safe |"
)


# name: (QuantizeOptions fields, calibration source: train | train+photo | mix+photo)
CONFIGS: dict[str, tuple[dict[str, Any], str]] = {
    "minmax, train (before)": ({}, "train"),
    "minmax, train + photopool": ({}, "train+photo"),
    "minmax, mix + photopool": ({}, "mix+photo"),
    "percentile, train": ({"method": "percentile"}, "train"),
    "percentile, mix + photopool": ({"method": "percentile"}, "mix+photo"),
    "entropy, mix + photopool": ({"method": "entropy"}, "mix+photo"),
    "minmax, mix + photopool, last conv float": ({"float_nodes": "last"}, "mix+photo"),
    "minmax, mix + photopool, stem + last conv float": ({"float_nodes": "stem+last"}, "mix+photo"),
    "minmax, train, auto": ({"float_nodes": "auto"}, "train"),
    "minmax, train, pool float": ({"float_nodes": "pool"}, "train"),
    "minmax, train, blocks 0-1 float": ({"float_nodes": "blocks:0,1"}, "train"),
    "minmax, train, blocks 0-3 float": ({"float_nodes": "blocks:0,1,2,3"}, "train"),
    "percentile, train, blocks 0-1 float": (
        {"method": "percentile", "float_nodes": "blocks:0,1"},
        "train",
    ),
    "percentile, train, blocks 0-3 float": (
        {"method": "percentile", "float_nodes": "blocks:0,1,2,3"},
        "train",
    ),
    "percentile, train 256, blocks 0-3 float": (
        {"method": "percentile", "calibration_images": 256, "float_nodes": "blocks:0,1,2,3"},
        "train",
    ),
    "percentile, train, blocks 0-6 float": (
        {"method": "percentile", "float_nodes": "blocks:0,1,2,3,4,5,6"},
        "train",
    ),
    "percentile, train, auto": ({"method": "percentile", "float_nodes": "auto"}, "train"),
    "minmax, mix + photopool, blocks 0-1 float": ({"float_nodes": "blocks:0,1"}, "mix+photo"),
    "minmax, train, last conv + pool float": ({"float_nodes": "last+pool"}, "train"),
    "minmax, mix + photopool, pool float": ({"float_nodes": "pool"}, "mix+photo"),
    "percentile, mix + photopool, pool float": (
        {"method": "percentile", "float_nodes": "pool"},
        "mix+photo",
    ),
}


def float_nodes(prepared: Any, which: str) -> tuple[str, ...]:
    """Node names of the pre-processed graph for the stem (first conv) and/or the last conv."""
    convs = [n.name for n in prepared.graph.node if n.op_type == "Conv"]
    chosen = []
    if "stem" in which:
        chosen.append(convs[0])
    if "last" in which:
        chosen.append(convs[-1])
    for block in which.partition("blocks:")[2].split(",") if "blocks:" in which else ():
        prefix = f"/features/features.{block}/"
        chosen += [n for n in convs if n.startswith(prefix)]
    if "pool" in which:
        chosen += [n.name for n in prepared.graph.node if n.op_type == "GlobalAveragePool"]
    return tuple(chosen)


def make(
    onnx_path: Path,
    spec: ServingSpec,
    dataset: Path,
    name: str,
    folder: Path,
    seed: int,
    refit: bool = False,
) -> Any:
    """Build and judge one configuration as registration does (`build_served_models`); with
    ``refit``, also (graph, verdict) of its int8 backbone with the head refitted on its features
    (``int8.refit_head``), else None."""
    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from harmscan.checksets import CheckSet
    from harmscan.gateset import GATESET_DIR
    from harmscan.precision import build_served_models
    from harmscan.quantize import QuantizeOptions
    from harmscan.trainsets import resolve_training_sets

    fields, source = CONFIGS[name]
    fields = dict(fields)
    if fields.get("float_nodes") not in (None, "auto", "none") and isinstance(
        fields.get("float_nodes"), str
    ):
        pre = folder / "pre.onnx"
        folder.mkdir(parents=True, exist_ok=True)
        quant_pre_process(str(onnx_path), str(pre))
        fields["float_nodes"] = float_nodes(onnx.load(str(pre)), fields["float_nodes"])
    options = QuantizeOptions(**fields)
    train = CheckSet.from_manifest(dataset, split="train").paths
    calibration = list(train)
    if source.startswith("mix"):
        calibration += [p for pool in resolve_training_sets(["drawpool"]) for p in pool.paths]
    photos = ()
    if source.endswith("photo"):
        photos = tuple(p for pool in resolve_training_sets(["photopool"]) for p in pool.paths)
    checks = (CheckSet.from_manifest(dataset, split="val"), CheckSet.from_photo_set(GATESET_DIR))
    served = build_served_models(onnx_path, folder, spec, calibration=calibration, checks=checks,
                                 options=options, seed=seed, calibration_photos=photos)  # fmt: skip
    if not refit:
        return served, checks, None
    # the same int8 graph, its head refitted on its own features (int8.refit_head)
    import torch

    from conf.loader import load_settings
    from harmscan.trainjob import prepare_job
    from tasks.int8refit import head_refit
    from tasks.training import _calibrate

    job = prepare_job(load_settings("local", train_overrides(spec.image_size)), ARCH, dataset)
    cpu = torch.device("cpu")
    refit_head = head_refit(job, lambda model, outcome: _calibrate(job, model, outcome, cpu)[0])
    (folder / "refit").mkdir(parents=True, exist_ok=True)
    refitted = build_served_models(onnx_path, folder / "refit", spec, calibration=calibration,
                                   checks=checks, options=options, seed=seed,
                                   calibration_photos=photos, refit_head=refit_head)  # fmt: skip
    return served, checks, (refitted.files[1], refitted.check)


def compare(
    onnx_path: Path,
    spec: ServingSpec,
    dataset: Path,
    names: list[str],
    work: Path,
    seed: int,
    rounds: int,
    save: Path | None = None,
    refit: bool = False,
) -> None:
    """Build every configuration, print the per-group table, then time them against float
    (with ``refit``, each configuration's head refitted on its int8 features too)."""

    from harmscan.checksets import pooled
    from harmscan.pixelscore import pixel_batches
    from harmscan.presets import EvalPreset

    graphs: dict[str, Path] = {}
    print(HEADER)
    print("|" + "---|" * (HEADER.count("|") - 1))
    reference: dict[str, np.ndarray] | None = None
    for i, name in enumerate(names):
        folder = work / f"c{i}"
        served, checks, refitted = make(onnx_path, spec, dataset, name, folder, seed, refit)
        paths, y, groups = pooled(checks)
        if reference is None:
            graphs["float"] = folder / "model_float.onnx"
            reference = score(with_probes(graphs["float"], folder / "f.onnx"), spec, paths)
        q = score(with_probes(folder / "model_int8.onnx", folder / "q.onnx"), spec, paths)
        graphs[name] = folder / "model_int8.onnx"
        if save is not None:
            save.mkdir(parents=True, exist_ok=True)
            np.savez(save / f"{spec.image_size}-{i}.npz", y=y, name=name, f_odds=reference["odds"],
                     q_odds=q["odds"], f_gate=reference["gate"], q_gate=q["gate"],
                     **{f"group_{k}": v for k, v in groups.items()})  # fmt: skip
        for row in describe(name, spec, y, groups, reference, q, served.check):
            print(row, flush=True)
        print(
            f"<!-- {name}: {'PASS' if served.check.approved else 'FAIL'}: "
            f"{served.check.reason} -->",
            flush=True,
        )
        if refitted is not None:
            graph, check = refitted
            label = f"{name} + head refit"
            q = score(with_probes(graph, folder / "r.onnx"), spec, paths)
            graphs[label] = graph
            if save is not None:
                np.savez(save / f"{spec.image_size}-{i}-refit.npz", y=y, name=label,
                         f_odds=reference["odds"], q_odds=q["odds"], f_gate=reference["gate"],
                         q_gate=q["gate"],
                         **{f"group_{k}": v for k, v in groups.items()})  # fmt: skip
            for row in describe(label, spec, y, groups, reference, q, check):
                print(row, flush=True)
            verdict = "PASS" if check.approved else "FAIL"
            print(f"<!-- {label}: {verdict}: {check.reason} -->", flush=True)
    if rounds < 1:
        return
    preset = EvalPreset.from_spec(spec, normalize_in_model=True)
    batch = next(iter(pixel_batches(list(paths), preset, batch_size=16)))[1]
    for name, best, best_x, median, median_x in _against_float(graphs, batch, rounds):
        print(
            f"speed {spec.image_size} px | {name} | {best:.1f} img/s best ({best_x:.2f}x"
            f" float) | {median:.1f} median ({median_x:.2f}x)",
            flush=True,
        )


def _against_float(
    graphs: dict[str, Path], batch: Any, rounds: int
) -> list[tuple[str, float, float, float, float]]:
    """Each graph's best and median images/s, timed round-robin, and both as a ratio to the
    graph named ``float``."""
    from int8_configs import session, time_round_robin

    sessions = {name: session(path, 1) for name, path in graphs.items()}
    timed = time_round_robin(sessions, batch, rounds, 1.0)
    best_f, median_f = timed["float"]
    return [(n, b, b / best_f, m, m / median_f) for n, (b, m) in timed.items()]


def speed(onnx_path: Path, spec: ServingSpec, dataset: Path, work: Path, rounds: int) -> None:
    """int8 graphs with each float-node choice, timed round-robin against float (the ranges come
    from 8 training images: the speed does not depend on them)."""
    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from harmscan.checksets import CheckSet
    from harmscan.onnx_export import write_pixel_model
    from harmscan.pixelscore import calibration_batches, pixel_batches
    from harmscan.presets import EvalPreset
    from harmscan.quantize import QuantizeOptions, quantize_int8

    preset = EvalPreset.from_spec(spec)
    train = list(CheckSet.from_manifest(dataset, split="train").paths)
    batches = calibration_batches(train, spec, 8)
    quant_pre_process(str(onnx_path), str(work / "pre.onnx"))
    prepared = onnx.load(str(work / "pre.onnx"))
    graphs = {"float": write_pixel_model(onnx_path, work / "float.onnx", preset=preset)}
    for which in ("none", "blocks:0,1", "blocks:0,1,2", "blocks:0,1,2,3", "blocks:0,1,2,3,4,5,6"):
        nodes = float_nodes(prepared, which) if which != "none" else ()
        q = quantize_int8(onnx_path, work / "q.onnx", batches, QuantizeOptions(float_nodes=nodes))
        graphs[f"int8, float: {which}"] = write_pixel_model(q, work / f"{which}.onnx",
                                                            preset=preset)  # fmt: skip
    pixels = EvalPreset.from_spec(spec, normalize_in_model=True)
    batch = next(iter(pixel_batches(train, pixels, batch_size=16)))[1]
    for name, best, best_x, median, median_x in _against_float(graphs, batch, rounds):
        print(
            f"| {spec.image_size} | {name} | {best:.1f} | {best_x:.2f} | {median:.1f} | "
            f"{median_x:.2f} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--image-sizes", default="160,224")
    parser.add_argument("--configs", default=";".join(CONFIGS), help="names separated by ;")
    parser.add_argument("--seed", type=int, default=0, help="of the calibration sample")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--train-only", action="store_true")
    parser.add_argument("--speed-only", action="store_true", help="time float-node choices")
    parser.add_argument("--save", type=Path, default=None, help="per-image scores (npz) here")
    parser.add_argument(
        "--refit-head",
        action="store_true",
        help="also refit the head on each int8 backbone's own features and judge that",
    )
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    logging.basicConfig(level=logging.WARNING)
    import tempfile

    import torch

    torch.set_num_threads(1)
    names = [n for n in args.configs.split(";") if n]
    for size in (int(s) for s in args.image_sizes.split(",")):
        onnx_path, spec = trained(args.cache, args.dataset.resolve(), size)
        print(f"## {ARCH} {size} px, threshold {spec.threshold:.4f}", flush=True)
        if args.train_only:
            continue
        if args.speed_only:
            with tempfile.TemporaryDirectory(prefix="int8-speed-") as tmp:
                speed(onnx_path, spec, args.dataset.resolve(), Path(tmp), args.rounds)
            continue
        with tempfile.TemporaryDirectory(prefix="int8-gated-") as tmp:
            compare(onnx_path, spec, args.dataset.resolve(), names, Path(tmp), args.seed,
                    args.rounds, args.save, args.refit_head)  # fmt: skip


if __name__ == "__main__":
    main()
