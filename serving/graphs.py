"""Which ONNX graph of a bundle is served: ``serving.precision``, the int8 verdict, this CPU.

A bundle holds the float graph and, from registrations that made them, the served pixel-input
graphs ``model_float.onnx`` and ``model_int8.onnx`` (uint8 pixels in). `choose_graph` picks one by
``serving.precision`` and the int8 verdict in the spec (never int8 under ``auto`` on a CPU whose
int8 products can saturate, `int8_saturates`); under ``auto`` an approved int8 graph is then timed
against the float one on this host and served only if it is faster (`SpeedCheck`,
`faster_graph`).
"""

from __future__ import annotations

import functools
import logging
import math
import platform
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harmscan.bundle import FLOAT_PIXELS_FILE, INT8_PIXELS_FILE, ONNX_FILE, ServingSpec
from serving.model import ModelUnavailable, Predictor
from serving.runtimes import onnx_predictor

logger = logging.getLogger(__name__)

PRECISION_SETTINGS: tuple[str, ...] = ("auto", "int8", "float")
# Turns each graph gets in the side-by-side timing at load (auto precision, `time_predictors`).
SPEED_ROUNDS = 5
# x86 CPUs with one of these do int8 dot products without 16-bit intermediates. Without them
# (SSE, AVX2, AVX-512 before VNNI) the uint8 x int8 products of an int8 graph can saturate, so its
# accuracy, checked at registration on another host, does not carry over: auto serves float.
VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})
X86_MACHINES = frozenset({"x86_64", "amd64", "i386", "i686", "x86"})


def int8_saturates(cpuinfo: str, machine: str) -> bool:
    """Whether int8 products can saturate on a CPU: x86 with no VNNI flag in ``/proc/cpuinfo``.

    False for other architectures and when the flags are unknown (nothing to go on).
    """
    if machine.lower() not in X86_MACHINES:
        return False
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return not VNNI_FLAGS & set(value.split())
    return False


@functools.cache
def int8_saturates_here() -> bool:
    """`int8_saturates` for this host (Linux ``/proc/cpuinfo``; elsewhere False)."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return int8_saturates(cpuinfo, platform.machine())


def choose_graph(bundle: Path, spec: ServingSpec, precision: str) -> tuple[Path, str]:
    """The ONNX graph to serve under ``serving.precision``, and the precision it has.

    ``auto`` serves int8 only when the bundle has it, its accuracy check passed
    (``spec.int8_approved``) and this CPU does not saturate int8 products (`int8_saturates`);
    ``int8`` serves it regardless (logging the check's verdict); ``float`` never does. The float
    graph is the pixel-input one when the bundle has it.

    Raises:
        ValueError: An unknown precision setting (names the valid ones).
        ModelUnavailable: ``int8`` asked of a bundle without an int8 graph, or no float graph.
    """
    if precision not in PRECISION_SETTINGS:
        valid = ", ".join(PRECISION_SETTINGS)
        raise ValueError(f"unknown serving precision {precision!r}; valid: {valid}")
    int8 = bundle / INT8_PIXELS_FILE
    if precision == "int8":
        if not int8.is_file():
            raise ModelUnavailable(f"serving.precision=int8 but {bundle} has no {INT8_PIXELS_FILE}")
        if not spec.int8_approved:
            logger.warning("serving int8 although its check refused it: %s", spec.int8_reason)
        return int8, "int8"
    if precision == "auto" and spec.int8_approved and int8.is_file():
        if not int8_saturates_here():
            logger.info("int8 approved: %s", spec.int8_reason)
            return int8, "int8"
        logger.warning("serving float: this CPU has no VNNI, int8 products may saturate here")
    elif precision == "auto":
        logger.info("serving float: %s", spec.int8_reason)
    for name in (FLOAT_PIXELS_FILE, ONNX_FILE):
        if (bundle / name).is_file():
            return bundle / name, "float"
    raise ModelUnavailable(f"{bundle} has no {ONNX_FILE}; serve it with the torch runtime")


@dataclass(frozen=True)
class SpeedCheck:
    """Both graphs of a bundle timed side by side on the serving host (``auto`` precision).

    int8 runs with other kernels than float, and on some CPUs (or builds of ONNX Runtime) they
    are slower: ``auto`` serves int8 only when it is at least ``min_speedup`` times as fast.

    Attributes:
        float_s: Seconds per batch of the float graph (best of its turns).
        int8_s: Seconds per batch of the int8 graph.
        min_speedup: Float time / int8 time int8 must reach.
    """

    float_s: float
    int8_s: float
    min_speedup: float

    @property
    def speedup(self) -> float:
        """Float time / int8 time (above 1: int8 is faster)."""
        return self.float_s / self.int8_s if self.int8_s > 0 else math.inf

    @property
    def int8_wins(self) -> bool:
        """int8 is at least ``min_speedup`` times as fast as float here."""
        return self.speedup >= self.min_speedup

    @property
    def reason(self) -> str:
        """One line for the log: both timings and the decision."""
        verdict = "serving int8" if self.int8_wins else "serving float"
        return (
            f"int8 {self.speedup:.2f}x float on this host ({1000 * self.int8_s:.1f} vs "
            f"{1000 * self.float_s:.1f} ms per batch; needs {self.min_speedup:.2f}x): {verdict}"
        )


def time_predictors(
    predictors: Mapping[str, Predictor], batch: np.ndarray, rounds: int = SPEED_ROUNDS
) -> dict[str, float]:
    """Best seconds per run of each predictor on ``batch``, run in turns (A B A B ...).

    Taking turns spreads a busy neighbour over all of them; the best run is the one it touched
    least. Each predictor runs once untimed first (its first run plans memory).
    """
    for predict in predictors.values():
        predict(batch)
    best = dict.fromkeys(predictors, math.inf)
    for _ in range(rounds):
        for name, predict in predictors.items():
            start = time.perf_counter()
            predict(batch)
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def faster_graph(
    bundle_dir: Path,
    spec: ServingSpec,
    int8: tuple[Path, Predictor, int],
    threads: int,
    batch: int,
    min_speedup: float,
) -> tuple[Path, Predictor, int, SpeedCheck | None]:
    """The int8 graph, or the float pixel graph when int8 is not faster here (`SpeedCheck`)."""
    float_path = bundle_dir / FLOAT_PIXELS_FILE
    if not float_path.is_file():
        logger.warning("no %s to time int8 against: serving int8 untimed", FLOAT_PIXELS_FILE)
        return (*int8, None)
    float_predict, float_max = onnx_predictor(float_path, threads)
    size = spec.image_size
    blank = np.zeros((min(batch, int8[2], float_max), size, size, 3), dtype=np.uint8)
    timings = time_predictors({"float": float_predict, "int8": int8[1]}, blank)
    speed = SpeedCheck(timings["float"], timings["int8"], min_speedup)
    logger.info("%s (batch of %d)", speed.reason, len(blank))
    if speed.int8_wins:
        return (*int8, speed)
    return float_path, float_predict, float_max, speed
