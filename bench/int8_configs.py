"""Which int8 quantization is fastest on this host, side by side with float in one run.

Exports the architecture (MobileNetV2 with the repository's ImageNet weights when present, so the
top-1 agreement with float means something; random weights otherwise), calibrates on the mirror's
training images decoded as served, and quantizes it several ways with ONNX Runtime: QDQ or
QOperator, uint8 or int8 activations, per-channel or per-tensor weights, ``reduce_range``, with or
without ``quant_pre_process``. Every graph gets the served pixel input (`harmscan.onnx_export`) and
is timed round-robin (A B C A B C ...) on one batch, so a busy neighbour slows all of them alike.
Prints img/s (best and median run), the ratio to float, top-1 agreement with float on held-out
mirror images, what the optimised graph runs (float convolutions left, int8 convolutions) and
whether MLAS may use AMX.

    .venv/bin/python bench/int8_configs.py [--arch mobilenet_v2] [--rounds 5] [--batch 16]

``--trained DIR`` measures a demo-style trained model instead (`bench/int8_trained.py`: probe +
prior at 160 px, cached in DIR): the registration's quantization with and without mixed precision
(``float_nodes: auto``), calibrated on training images alone or with ``photopool/`` photos added,
each judged as registration judges it (ROC AUC against float on the validation split and the photo
gate set, per domain) and timed against float on 1 and 2 threads, round-robin in one run:

    nice -n 10 .venv/bin/python bench/int8_configs.py --trained /tmp/harmscan-trained
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import glob
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from harmscan.bundle import ServingSpec  # noqa: E402
from harmscan.onnx_export import write_pixel_model  # noqa: E402
from harmscan.pixelscore import calibration_batches  # noqa: E402
from harmscan.presets import EvalPreset  # noqa: E402
from harmscan.quantize import QuantizeOptions, quantize_int8  # noqa: E402

# name: (quant_pre_process, format, activations, per_channel, reduce_range)
CONFIGS: dict[str, tuple[bool, str, str, bool, bool]] = {
    "qdq s8s8 pc, as exported": (False, "qdq", "int8", True, False),
    "qdq u8s8 pc, as exported": (False, "qdq", "uint8", True, False),
    "qdq s8s8 pc, pre-processed": (True, "qdq", "int8", True, False),
    "qdq u8s8 pc, pre-processed": (True, "qdq", "uint8", True, False),
    "qdq u8s8 pc rr, pre-processed": (True, "qdq", "uint8", True, True),
    "qdq u8s8 tensor, pre-processed": (True, "qdq", "uint8", False, False),
    "qop u8s8 pc, pre-processed": (True, "qop", "uint8", True, False),
}


def amx_permitted() -> str:
    """Whether this process may use AMX tiles (MLAS asks the same of Linux before using them)."""
    if not sys.platform.startswith("linux"):
        return "unknown (not Linux)"
    libc = ctypes.CDLL(None, use_errno=True)
    arch_prctl, req_perm, get_perm, xtiledata = 158, 0x1023, 0x1022, 18
    if libc.syscall(arch_prctl, req_perm, xtiledata) != 0:
        return "no (the kernel refused tile data)"
    mask = ctypes.c_ulong(0)
    libc.syscall(arch_prctl, get_perm, ctypes.byref(mask))
    return "yes" if mask.value & (1 << xtiledata) else "no"


def quantize(name: str, float_onnx: Path, dest: Path, batches: list[np.ndarray]) -> Path:
    """One configuration of `CONFIGS`; the harmscan default goes through `quantize_int8`."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    pre, fmt, activations, per_channel, reduce_range = CONFIGS[name]
    if pre and fmt == "qdq" and not reduce_range:
        options = QuantizeOptions(per_channel=per_channel, activations=activations)  # type: ignore[arg-type]
        return quantize_int8(float_onnx, dest, batches, options)
    source = float_onnx
    if pre:
        from onnxruntime.quantization.shape_inference import quant_pre_process

        source = dest.with_suffix(".pre.onnx")
        quant_pre_process(str(float_onnx), str(source))

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.batches, None)
            return None if batch is None else {"input": batch}

    kinds = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}
    quantize_static(
        str(source), str(dest), Reader(),
        quant_format=QuantFormat.QDQ if fmt == "qdq" else QuantFormat.QOperator,
        activation_type=kinds[activations], weight_type=QuantType.QInt8,
        per_channel=per_channel, reduce_range=reduce_range,
    )  # fmt: skip
    return dest


def session(path: Path, threads: int, optimized: Path | None = None) -> Any:
    """A session configured as the consumer's (`serving.runtimes.onnx_predictor`)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if optimized is not None:
        options.optimized_model_filepath = str(optimized)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def runs_what(path: Path, threads: int) -> str:
    """The convolutions of the graph ONNX Runtime actually runs: float ones and int8 ones."""
    import onnx

    optimized = path.with_suffix(".opt.onnx")
    session(path, threads, optimized)
    ops = collections.Counter(node.op_type for node in onnx.load(str(optimized)).graph.node)
    return (f"Conv {ops['Conv'] + ops['FusedConv']}, QLinearConv {ops['QLinearConv']}, "
            f"Q/DQ {ops['QuantizeLinear'] + ops['DequantizeLinear']}, "
            f"Transpose {ops['Transpose']}")  # fmt: skip


def time_round_robin(
    sessions: dict[str, Any], batch: np.ndarray, rounds: int, seconds: float
) -> dict[str, tuple[float, float]]:
    """(best, median) images per second of each session, in turns of ``seconds`` each.

    The best run is the figure least touched by neighbours on a shared host; both are printed.
    """
    times: dict[str, list[float]] = collections.defaultdict(list)
    for s in sessions.values():
        s.run(None, {"pixels": batch})
    for _ in range(rounds):
        for name, s in sessions.items():
            turn = time.perf_counter()
            while time.perf_counter() - turn < seconds:
                start = time.perf_counter()
                s.run(None, {"pixels": batch})
                times[name].append(time.perf_counter() - start)
    return {n: (len(batch) / min(t), len(batch) / float(np.median(t))) for n, t in times.items()}


def export(arch: str, dest: Path, image_size: int, weights: str) -> str:
    """Export the 1000-class torchvision model; ImageNet weights when asked and present."""
    import torch
    import torchvision

    from harmscan.models import export_onnx

    torch.manual_seed(0)
    module = getattr(torchvision.models, arch)()
    path = REPO / "weights" / f"{arch}_imagenet.pth"
    kind = "random weights"
    if weights == "imagenet" and path.is_file():
        module.load_state_dict(torch.load(path, map_location="cpu"))
        kind = f"ImageNet weights ({path.name})"
    export_onnx(module.eval(), dest, image_size)
    return kind


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="mobilenet_v2")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0, help="per turn")
    parser.add_argument("--calibration", type=int, default=32)
    parser.add_argument("--only", default="", help="config names separated by ;")
    parser.add_argument("--weights", choices=["imagenet", "none"], default="imagenet")
    parser.add_argument("--trained", type=Path, default=None, help="cache of bench/int8_trained")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    if args.trained is not None:
        from int8_mixed import trained_table

        trained_table(
            args.trained, rounds=args.rounds, seconds=args.seconds, batch=args.batch,
            only=[c for c in args.only.split(";") if c],
        )  # fmt: skip
        return
    spec = ServingSpec(arch=args.arch, threshold=0.5, review_low=0.4, review_high=0.6)
    preset = EvalPreset.from_spec(spec)
    pattern = str(REPO / "mirror" / "images" / "**" / "*.jpg")
    images = sorted(Path(p) for p in glob.glob(pattern, recursive=True))
    train = [p for p in images if "/train/" in str(p)]
    held_out = [p for p in images if "/train/" not in str(p)]
    calibration = calibration_batches(train, spec, args.calibration)
    configs = [c for c in CONFIGS if not args.only or c in args.only.split(";")]
    with tempfile.TemporaryDirectory(prefix="int8-configs-") as tmp:
        root = Path(tmp)
        kind = export(args.arch, root / "float.onnx", spec.image_size, args.weights)
        graphs = {"float": write_pixel_model(root / "float.onnx", root / "px-float.onnx",
                                             preset=preset)}  # fmt: skip
        for i, name in enumerate(configs):
            int8 = quantize(name, root / "float.onnx", root / f"q{i}.onnx", calibration)
            graphs[name] = write_pixel_model(int8, root / f"px-q{i}.onnx", preset=preset)
        sessions = {name: session(path, args.threads) for name, path in graphs.items()}
        test = np.concatenate([np.stack(b) for _, b in _pixel_batches(held_out, preset)])
        top1 = {name: _top1(s, test) for name, s in sessions.items()}
        batch = test[: args.batch]
        speed = time_round_robin(sessions, batch, args.rounds, args.seconds)
        print(f"{args.arch}, {kind}, batch {args.batch}, {args.threads} thread(s), "
              f"{len(test)} held-out images; AMX tiles permitted: {amx_permitted()}")  # fmt: skip
        print("| config | img/s best | x float | img/s median | x float | top-1 agreement "
              "| optimised graph runs |")  # fmt: skip
        print("|---|---|---|---|---|---|---|")
        best_f, median_f = speed["float"]
        for name in graphs:
            agree = float(np.mean(top1[name] == top1["float"]))
            best, median = speed[name]
            print(f"| {name} | {best:.1f} | {best / best_f:.2f} | {median:.1f} | "
                  f"{median / median_f:.2f} | {agree:.3f} | "
                  f"{runs_what(graphs[name], args.threads)} |")  # fmt: skip


def _pixel_batches(paths: list[Path], preset: EvalPreset):  # type: ignore[no-untyped-def]
    from harmscan.pixelscore import pixel_batches

    return pixel_batches(paths, preset, batch_size=32)


def _top1(s: Any, pixels: np.ndarray) -> np.ndarray:
    out = [s.run(None, {"pixels": pixels[i : i + 32]})[0] for i in range(0, len(pixels), 32)]
    return np.concatenate(out).argmax(axis=1)


if __name__ == "__main__":
    main()
