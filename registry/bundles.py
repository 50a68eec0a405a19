"""Log a trained torch model as a harmscan bundle into a run, and register it.

A bundle is the torch module saved with ``mlflow.pytorch`` (signature + input example), with the
files of `harmscan.bundle.bundle_files` (``serving.json``, ``labels.json``, ``model.onnx``) as its
extra files, so a registered version loads back as a torch module and serving finds the ONNX model
and its `ServingSpec` under ``extra_files/``. Logging goes through the run's explicit client (an
MLflow 3 logged model: create, upload, finalize, then a model version), never the fluent API.
torch and ONNX Runtime are imported only when a bundle is logged.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from harmscan.bundle import ONNX_FILE, ServingSpec, bundle_files
from registry.client import RegistryError
from registry.runs import Run

if TYPE_CHECKING:
    from torch import nn

logger = logging.getLogger(__name__)

MODEL_NAME = "model"  # the logged model's name inside its run
# The export must compute the torch model's logits up to float32 rounding, which grows with the
# logits' scale (a probe trained to large logits): limit = atol + rtol * the batch's largest
# |logit|. A real mismatch (an op exported differently, a layer left in training mode, other
# weights) is off by a sizeable fraction of the scale, far above rtol.
ONNX_ATOL = 1e-3
ONNX_RTOL = 1e-4

# Called with the float ONNX export and the spec: the spec to log and further files to carry
# (e.g. the served pixel-input graphs of `harmscan.precision.build_served_models`).
ServedGraphs = Callable[[Path, ServingSpec], tuple[ServingSpec, Sequence[Path]]]


@dataclass(frozen=True)
class LoggedBundle:
    """What `log_bundle` produced.

    Attributes:
        model_uri: URI of the logged model (``models:/m-...``).
        registered_model: Registered model name, or None if not registered.
        version: Registered version, or None.
        onnx_max_abs_diff: Largest absolute difference between torch and ONNX logits.
    """

    model_uri: str
    registered_model: str | None
    version: str | None
    onnx_max_abs_diff: float

    @property
    def version_uri(self) -> str:
        """``models:/<name>/<version>`` of the registered version."""
        if self.registered_model is None or self.version is None:
            raise RegistryError("this bundle was not registered")
        return f"models:/{self.registered_model}/{self.version}"


@dataclass(frozen=True)
class Parity:
    """How far an ONNX export's logits are from the torch model's, on one batch.

    Attributes:
        max_abs_diff: Largest absolute difference between the two models' logits.
        logit_scale: Largest absolute torch logit of the batch.
    """

    max_abs_diff: float
    logit_scale: float

    @classmethod
    def of(cls, expected: npt.ArrayLike, got: npt.ArrayLike) -> Parity:
        """Compare the torch logits ``expected`` with the ONNX logits ``got``."""
        want, have = np.asarray(expected, dtype=np.float64), np.asarray(got, dtype=np.float64)
        if want.shape != have.shape:
            raise RegistryError(f"ONNX logits have shape {have.shape}, torch's {want.shape}")
        return cls(float(np.max(np.abs(have - want))), float(np.max(np.abs(want))))

    @property
    def limit(self) -> float:
        """The largest difference allowed: ``ONNX_ATOL + ONNX_RTOL * logit_scale``."""
        return ONNX_ATOL + ONNX_RTOL * self.logit_scale

    @property
    def ok(self) -> bool:
        """Within the limit (a NaN difference or scale is not)."""
        return self.max_abs_diff <= self.limit

    def check(self) -> None:
        """Raise `RegistryError` unless the export is within the limit.

        Raises:
            RegistryError: The ONNX export does not compute the torch model's logits.
        """
        if not self.ok:
            raise RegistryError(
                f"ONNX export differs from torch by {self.max_abs_diff:.3g} > {self.limit:.3g} "
                f"(= {ONNX_ATOL:g} + {ONNX_RTOL:g} x largest |logit| {self.logit_scale:.3g}): "
                "the graph does not compute the trained model (an op exported differently, or "
                "other weights); check that each custom layer exports at export_onnx's opset"
            )


def onnx_parity(model: nn.Module, onnx_path: Path, image_size: int, *, batch: int = 4) -> Parity:
    """Compare the torch model's and the ONNX model's logits on a random (seeded) batch."""
    import onnxruntime as ort
    import torch

    generator = torch.Generator().manual_seed(0)
    example = torch.randn(batch, 3, image_size, image_size, generator=generator)
    with torch.inference_mode():
        expected = model.eval().cpu()(example).numpy()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: example.numpy()})[0]
    return Parity.of(expected, got)


def log_bundle(
    run: Run,
    model: nn.Module,
    spec: ServingSpec,
    *,
    registered_model: str | None = None,
    version_tags: dict[str, str] | None = None,
    served_graphs: ServedGraphs | None = None,
) -> LoggedBundle:
    """Log the torch model, its ONNX export and its spec into ``run``; register it.

    Args:
        run: The open run (`registry.runs.start_run`).
        model: The trained 2-class model (output index ``spec.harmful_index`` = harmful).
        spec: The serving contract (threshold, review band, labels, preset parameters).
        registered_model: Register the logged model as a new version of this name (if given).
        version_tags: Tags set on the new model version.
        served_graphs: Makes further graphs from the ONNX export (and may update the spec).

    Returns:
        The logged bundle, with its ONNX/torch parity (also logged as ``onnx_max_abs_diff``,
        beside ``onnx_logit_scale``).

    Raises:
        RegistryError: The ONNX export disagrees with torch by more than `Parity.limit`.
    """
    from harmscan.models import export_onnx

    model = model.eval().cpu()
    with tempfile.TemporaryDirectory(prefix="harmscan-bundle-") as tmp:
        folder = Path(tmp)
        onnx_path = export_onnx(model, folder / ONNX_FILE, spec.image_size)
        parity = onnx_parity(model, onnx_path, spec.image_size)
        diff = parity.max_abs_diff
        run.log_metrics({"onnx_max_abs_diff": diff, "onnx_logit_scale": parity.logit_scale})
        parity.check()
        served: Sequence[Path] = ()
        if served_graphs is not None:
            spec, served = served_graphs(onnx_path, spec)
        extra = bundle_files(folder / "extra", spec, onnx_path, served)
        model_id = _log_torch_model(run, model, spec, extra, folder / MODEL_NAME)
    model_uri = f"models:/{model_id}"
    if registered_model is None:
        return LoggedBundle(model_uri, None, None, diff)
    tags = {
        "arch": spec.arch,
        "dataset_version": spec.dataset_version,
        "threshold": f"{spec.threshold:.6f}",
        "run_id": run.run_id,
        **(version_tags or {}),
    }
    version = register_logged_model(run, model_id, registered_model, tags)
    logger.info("registered %s version %s (%s)", registered_model, version, model_uri)
    return LoggedBundle(model_uri, registered_model, version, diff)


def _log_torch_model(
    run: Run, model: nn.Module, spec: ServingSpec, extra: list[Path], local: Path
) -> str:
    """Save ``model`` with mlflow.pytorch and upload it as a logged model of ``run``; its id."""
    import mlflow.pytorch
    import torch
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus
    from mlflow.models import Model, infer_signature

    example = torch.zeros(1, 3, spec.image_size, spec.image_size).numpy()
    with torch.inference_mode():
        output = model(torch.from_numpy(example)).numpy()
    logged = run.client.create_logged_model(
        run.experiment_id, name=MODEL_NAME, source_run_id=run.run_id, tags={"arch": spec.arch}
    )
    try:
        run.client.log_outputs(run.run_id, [LoggedModelOutput(logged.model_id, step=0)])
        mlflow.pytorch.save_model(
            model,
            str(local),
            mlflow_model=Model(
                artifact_path=logged.artifact_location,
                model_uuid=logged.model_id,
                run_id=run.run_id,
                model_id=logged.model_id,
            ),
            signature=infer_signature(example, output),
            input_example=example,
            extra_files=[str(path) for path in extra],
            serialization_format="pickle",
            pip_requirements=_pip_requirements(),
        )
        run.client.log_model_artifacts(logged.model_id, str(local))
    except BaseException:
        run.client.finalize_logged_model(logged.model_id, LoggedModelStatus.FAILED)
        raise
    run.client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
    return str(logged.model_id)


def register_logged_model(run: Run, model_id: str, name: str, tags: dict[str, str]) -> str:
    """Register logged model ``model_id`` as a new version of ``name`` (created if needed)."""
    from mlflow.exceptions import MlflowException

    client = run.client
    try:
        client.create_registered_model(name)
    except MlflowException as exc:
        if exc.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
            raise
    created: Any = client.create_model_version(
        name, source=f"models:/{model_id}", run_id=run.run_id, tags=tags, model_id=model_id
    )
    return str(created.version)


def _pip_requirements() -> list[str]:
    import mlflow
    import torch
    import torchvision

    return [
        f"torch=={torch.__version__.split('+')[0]}",
        f"torchvision=={torchvision.__version__.split('+')[0]}",
        f"mlflow=={mlflow.__version__}",
        "cloudpickle",
        "onnxruntime",
    ]
