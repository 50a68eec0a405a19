"""Where the served model comes from: the MLflow registry alias, a runtime, and hot swaps.

A registered version holds ``extra_files/`` with ``serving.json``, ``labels.json`` and
``model.onnx`` (see `harmscan.bundle`), and, from registrations that made them, the served graphs
``model_float.onnx`` and ``model_int8.onnx`` (uint8 pixels in; `choose_graph` picks one by
``serving.precision`` and the int8 verdict in the spec; under ``auto`` an approved int8 graph is
then timed against the float one on this host and served only if it is faster, `SpeedCheck`).
`ModelSource` resolves ``models:/<name>@<alias>`` to a version number and downloads *that
version* (so an alias moving mid-download cannot mix two versions), then loads it with ONNX
Runtime (default) or torch.
`ChampionWatcher` polls the alias in a background thread and prepares the new model off the hot
path; the consumer swaps it in between batches. Label order and preprocessing come from the
model's `ServingSpec`, never from serve time.
"""

from __future__ import annotations

import functools
import logging
import math
import platform
import shutil
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harmscan.bundle import (
    FLOAT_PIXELS_FILE,
    INT8_PIXELS_FILE,
    ONNX_FILE,
    BundleError,
    ServingSpec,
    read_bundle,
)
from registry import Registry, RegistryError
from serving.model import LoadedModel, ModelUnavailable, Predictor
from serving.runtimes import RUNTIMES, onnx_predictor, torch_predictor

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


def load_model_folder(
    folder: Path,
    *,
    name: str,
    version: str,
    runtime: str,
    threads: int = 1,
    workers: int = 1,
    warmup_batch: int = 0,
    precision: str = "auto",
    int8_min_speedup: float = 1.0,
) -> LoadedModel:
    """Load a downloaded model folder with the chosen runtime and precision (`choose_graph`).

    Under ``auto``, an int8 graph that passed its accuracy check is timed against the float one
    on blank batches of the served size (`SpeedCheck`) and served only when at least
    ``int8_min_speedup`` times as fast (0: no timing, the accuracy check alone decides). With
    ``warmup_batch`` > 0 the model is run once on blank batches (`LoadedModel.warm_up`) before
    it is returned.

    Raises:
        ValueError: An unknown runtime or precision, or int8 asked of the torch runtime.
        ModelUnavailable: The folder is not a usable harmscan model.
    """
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown serving runtime {runtime!r}; valid: {', '.join(RUNTIMES)}")
    if precision == "int8" and runtime != "onnx":
        raise ValueError("serving.precision=int8 needs serving.runtime=onnx")
    try:
        bundle = read_bundle(folder)
    except BundleError as exc:
        raise ModelUnavailable(str(exc)) from exc
    spec = bundle.spec
    chosen, pixel_input, speedup = "float", False, None
    if runtime == "onnx":
        onnx_path, chosen = choose_graph(bundle.bundle_dir, spec, precision)
        predict, max_batch = onnx_predictor(onnx_path, threads)
        if precision == "auto" and chosen == "int8" and int8_min_speedup > 0:
            timing_batch = -(-max(warmup_batch, 8) // workers)
            onnx_path, predict, max_batch, speed = _faster_graph(
                bundle.bundle_dir, spec, (onnx_path, predict, max_batch), threads, timing_batch,
                int8_min_speedup,
            )  # fmt: skip
            chosen = "int8" if onnx_path.name == INT8_PIXELS_FILE else "float"
            speedup = speed.speedup if speed is not None else None
        pixel_input = onnx_path.name != ONNX_FILE
    else:
        predict, max_batch = torch_predictor(bundle.model_dir, threads), 1024
    model = LoadedModel(
        name, version, spec, runtime, predict, max_batch, folder, workers, chosen, pixel_input,
        speedup,
    )  # fmt: skip
    if warmup_batch > 0:
        seconds = model.warm_up(warmup_batch)
        logger.info("warmed up %s v%s (batches of 1 and %d) in %.3fs", name, version,
                    warmup_batch, seconds)  # fmt: skip
    logger.info(
        "loaded %s v%s (%s, %s runtime, %s, labels %s, threshold %.3f, review band [%.3f, %.3f])",
        name, version, spec.arch, runtime, chosen, spec.labels, spec.threshold,
        spec.review_low, spec.review_high,
    )  # fmt: skip
    return model


def _faster_graph(
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


class ModelSource:
    """Resolves and loads ``models:/<name>@<alias>`` from an MLflow registry.

    Args:
        tracking_uri: MLflow tracking/registry URI.
        name: Registered model name.
        alias: Alias to serve, e.g. ``champion``.
        runtime: ``onnx`` or ``torch``.
        threads: Intra-op threads of the runtime.
        cache_dir: Where model versions are downloaded (one fresh folder per load).
        warmup_batch: Run each loaded model once at this batch size before serving (0: never).
        workers: Threads scoring parts of a batch side by side (`LoadedModel.workers`).
        precision: ``auto``, ``int8`` or ``float`` (`choose_graph`).
        int8_min_speedup: Under ``auto``, how much faster than float int8 must be on this host.
    """

    def __init__(
        self,
        tracking_uri: str,
        name: str,
        alias: str,
        runtime: str,
        threads: int,
        cache_dir: Path,
        warmup_batch: int = 0,
        workers: int = 1,
        precision: str = "auto",
        int8_min_speedup: float = 1.0,
    ) -> None:
        if runtime not in RUNTIMES:
            raise ValueError(f"unknown serving runtime {runtime!r}; valid: {', '.join(RUNTIMES)}")
        self.tracking_uri = tracking_uri
        self.name = name
        self.alias = alias
        self.runtime = runtime
        self.threads = threads
        self.cache_dir = cache_dir
        self.warmup_batch = warmup_batch
        self.workers = workers
        self.precision = precision
        self.int8_min_speedup = int8_min_speedup
        self.registry = Registry(tracking_uri)

    @property
    def uri(self) -> str:
        """The ``models:/`` URI served."""
        return f"models:/{self.name}@{self.alias}"

    def current_version(self) -> str:
        """The version the alias points at now.

        Raises:
            ModelUnavailable: Registry unreachable, or no such model or alias.
        """
        try:
            return self.registry.require_alias_version(self.name, self.alias)
        except RegistryError as exc:  # missing or unreachable: both mean "not now"
            raise ModelUnavailable(f"cannot resolve {self.uri}: {exc}") from exc

    def load(self, version: str | None = None) -> LoadedModel:
        """Download and load one version (default: the alias's current one).

        Downloading *that version* (not the alias) means an alias moving mid-download cannot mix
        two versions.

        Raises:
            ModelUnavailable: Registry unreachable or the version is not a usable model.
        """
        version = version or self.current_version()
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f"{self.name}-v{version}-", dir=self.cache_dir))
        try:
            self.registry.download(self.name, version, folder)
            return load_model_folder(
                folder,
                name=self.name,
                version=version,
                runtime=self.runtime,
                threads=self.threads,
                workers=self.workers,
                warmup_batch=self.warmup_batch,
                precision=self.precision,
                int8_min_speedup=self.int8_min_speedup,
            )
        except Exception as exc:
            shutil.rmtree(folder, ignore_errors=True)
            if isinstance(exc, ModelUnavailable):
                raise
            raise ModelUnavailable(f"cannot load models:/{self.name}/{version}: {exc}") from exc


class ChampionWatcher:
    """Polls the alias in a background thread and prepares a new model when it moves.

    The consumer calls `take` between batches; the swap itself is then a plain reference change.

    Args:
        source: The registry source.
        current_version: Version served now.
        interval_s: Seconds between alias checks.
    """

    def __init__(self, source: ModelSource, current_version: str, interval_s: float) -> None:
        self.source = source
        self.interval_s = interval_s
        self._known = current_version
        self._ready: LoadedModel | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="champion-watcher", daemon=True)

    def start(self) -> ChampionWatcher:
        """Start polling."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop polling and wait for the thread."""
        self._stop.set()
        self._thread.join(timeout=30)

    def take(self) -> LoadedModel | None:
        """The new champion, if one was prepared since the last call."""
        with self._lock:
            ready, self._ready = self._ready, None
        return ready

    def check_now(self) -> None:
        """One alias check (the thread calls this every interval)."""
        try:
            version = self.source.current_version()
        except ModelUnavailable as exc:
            logger.warning("champion check failed, keeping v%s: %s", self._known, exc)
            return
        if version == self._known:
            return
        logger.info("alias %s moved: v%s -> v%s; loading", self.source.uri, self._known, version)
        try:
            model = self.source.load(version)
        except ModelUnavailable as exc:
            logger.error("champion v%s not loadable, keeping v%s: %s", version, self._known, exc)
            return
        with self._lock:
            if self._ready is not None:
                self._ready.discard()
            self._ready = model
            self._known = version

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.check_now()
