"""Where the served model comes from: the MLflow registry alias, downloaded and loaded.

A registered version holds ``extra_files/`` with ``serving.json``, ``labels.json`` and
``model.onnx`` (see `harmscan.bundle`), and, from registrations that made them, the served
pixel-input graphs (which one is served: `serving.graphs`).
`ModelSource` resolves ``models:/<name>@<alias>`` to a version number and downloads *that
version* (so an alias moving mid-download cannot mix two versions), then loads it with ONNX
Runtime (default) or torch.
Label order and preprocessing come from the model's `ServingSpec`, never from serve time; hot
swaps are `serving.watcher`.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from harmscan.bundle import (
    INT8_PIXELS_FILE,
    ONNX_FILE,
    BundleError,
    read_bundle,
)
from registry import Registry, RegistryError
from serving.graphs import choose_graph, faster_graph
from serving.model import LoadedModel, ModelUnavailable
from serving.runtimes import RUNTIMES, onnx_predictor, torch_predictor

logger = logging.getLogger(__name__)


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
    max_batch: int | None = None,
) -> LoadedModel:
    """Load a downloaded model folder with the chosen runtime and precision (`choose_graph`).

    Under ``auto``, an int8 graph that passed its accuracy check is timed against the float one
    on blank batches of the served size (`SpeedCheck`) and served only when at least
    ``int8_min_speedup`` times as fast (0: no timing, the accuracy check alone decides). With
    ``warmup_batch`` > 0 the model is run once on blank batches (`LoadedModel.warm_up`) before
    it is returned. ``max_batch`` caps the inputs per model call (`LoadedModel.max_batch`; None:
    what the graph accepts).

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
        predict, graph_batch = onnx_predictor(onnx_path, threads)
        if precision == "auto" and chosen == "int8" and int8_min_speedup > 0:
            timing_batch = -(-max(warmup_batch, 8) // workers)
            onnx_path, predict, graph_batch, speed = faster_graph(
                bundle.bundle_dir, spec, (onnx_path, predict, graph_batch), threads, timing_batch,
                int8_min_speedup,
            )  # fmt: skip
            chosen = "int8" if onnx_path.name == INT8_PIXELS_FILE else "float"
            speedup = speed.speedup if speed is not None else None
        pixel_input = onnx_path.name != ONNX_FILE
    else:
        predict, graph_batch = torch_predictor(bundle.model_dir, threads), 1024
    if max_batch is not None:
        graph_batch = min(graph_batch, max_batch)
    model = LoadedModel(
        name, version, spec, runtime, predict, graph_batch, folder, workers, chosen, pixel_input,
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
        max_batch: Most inputs per model call (``serving.batch_size``); None: the graph's limit.
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
        max_batch: int | None = None,
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
        self.max_batch = max_batch
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
                max_batch=self.max_batch,
            )
        except Exception as exc:
            shutil.rmtree(folder, ignore_errors=True)
            if isinstance(exc, ModelUnavailable):
                raise
            raise ModelUnavailable(f"cannot load models:/{self.name}/{version}: {exc}") from exc
