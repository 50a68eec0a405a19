"""Log a trained model as a harmscan bundle in MLflow, register it, and move aliases.

A bundle is ``mlflow.pytorch.log_model(...)`` of the torch module (signature + input example), with
``serving.json``, ``labels.json`` and ``model.onnx`` as its extra files, so that the registered
version loads back as a torch module and serving finds the ONNX model and its `ServingSpec` under
``extra_files/``. The functions here are plain (usable outside Prefect).
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect import get_run_logger, task

from harmscan.bundle import LABELS_FILE, ONNX_FILE, SPEC_FILE, ServingSpec

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from torch import nn

logger = logging.getLogger(__name__)

MODEL_NAME = "model"  # the logged model's name inside its run
CHAMPION = "champion"
CHALLENGER = "challenger"
ONNX_TOLERANCE = 1e-3


class RegistryError(RuntimeError):
    """The registry is missing something we need (a version, an alias, a bundle file)."""


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


def onnx_parity(model: nn.Module, onnx_path: Path, image_size: int, *, batch: int = 4) -> float:
    """Max abs difference between the torch model's and the ONNX model's logits, random batch."""
    import numpy as np
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
    return float(np.max(np.abs(got - expected)))


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


def log_bundle(
    model: nn.Module,
    spec: ServingSpec,
    *,
    registered_model: str | None = None,
    version_tags: dict[str, str] | None = None,
) -> LoggedBundle:
    """Log the torch model, its ONNX export and its spec into the active MLflow run; register it.

    Args:
        model: The trained 2-class model (output index ``spec.harmful_index`` = harmful).
        spec: The serving contract (threshold, review band, labels, preset parameters).
        registered_model: Register the logged model as a new version of this name (if given).
        version_tags: Tags set on the new model version.

    Returns:
        The logged bundle, with its ONNX/torch parity (also logged as ``onnx_max_abs_diff``).

    Raises:
        RegistryError: No active run, or the ONNX export disagrees with torch.
    """
    import mlflow
    import mlflow.pytorch
    import torch
    from mlflow.models import infer_signature

    from harmscan.models import export_onnx

    run = mlflow.active_run()
    if run is None:
        raise RegistryError("log_bundle needs an active MLflow run (mlflow.start_run())")
    model = model.eval().cpu()
    with tempfile.TemporaryDirectory(prefix="harmscan-bundle-") as tmp:
        folder = Path(tmp)
        spec.write(folder)
        onnx_path = export_onnx(model, folder / ONNX_FILE, spec.image_size)
        diff = onnx_parity(model, onnx_path, spec.image_size)
        mlflow.log_metric("onnx_max_abs_diff", diff)
        if diff > ONNX_TOLERANCE:
            raise RegistryError(f"ONNX export differs from torch by {diff:.2e} > {ONNX_TOLERANCE}")
        example = torch.zeros(1, 3, spec.image_size, spec.image_size).numpy()
        with torch.inference_mode():
            output = model(torch.from_numpy(example)).numpy()
        info = mlflow.pytorch.log_model(
            model,
            name=MODEL_NAME,
            signature=infer_signature(example, output),
            input_example=example,
            extra_files=[str(folder / SPEC_FILE), str(folder / LABELS_FILE), str(onnx_path)],
            serialization_format="pickle",
            pip_requirements=_pip_requirements(),
            registered_model_name=registered_model,
        )
    version = None
    if registered_model is not None:
        version = str(info.registered_model_version)
        client = mlflow.MlflowClient()
        tags = {
            "arch": spec.arch,
            "dataset_version": spec.dataset_version,
            "threshold": f"{spec.threshold:.6f}",
            "run_id": run.info.run_id,
            **(version_tags or {}),
        }
        for key, value in tags.items():
            client.set_model_version_tag(registered_model, version, key, value)
        logger.info("registered %s version %s (%s)", registered_model, version, info.model_uri)
    return LoggedBundle(info.model_uri, registered_model, version, diff)


def download_bundle(model_uri: str, dest: Path) -> tuple[ServingSpec, Path]:
    """Download a logged bundle; return its spec and the local model folder.

    Args:
        model_uri: ``models:/harmscan@champion``, ``models:/harmscan/3``, ``runs:/...``.
        dest: Where to download to.

    Raises:
        RegistryError: The model has no ``extra_files/serving.json``.
    """
    import mlflow

    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(dest)))
    extra = local / "extra_files"
    if not (extra / SPEC_FILE).is_file():
        raise RegistryError(f"{model_uri} is not a harmscan bundle: no extra_files/{SPEC_FILE}")
    return ServingSpec.read(extra), local


def alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    """The version number an alias points to, or None if the alias is not set."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def set_alias(
    client: MlflowClient, name: str, alias: str, version: str, tags: dict[str, Any] | None = None
) -> None:
    """Point ``alias`` at ``version`` and tag the version with why."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_model_version(name, version)
    except MlflowException:
        raise RegistryError(f"{name} has no version {version}") from None
    client.set_registered_model_alias(name, alias, version)
    for key, value in (tags or {}).items():
        client.set_model_version_tag(name, version, key, str(value))


def _decision_tags(decision: Any, dataset_version: str, champion: str | None) -> dict[str, str]:
    return {
        "promotion_decision": "promoted" if decision.promote else "rejected",
        "promotion_reason": decision.reason,
        "promotion_metric": decision.metric,
        "promotion_candidate_value": f"{decision.candidate:.6f}",
        "promotion_champion_value": (
            f"{decision.champion:.6f}" if decision.champion is not None else "none"
        ),
        "promotion_champion_version": champion or "none",
        "promotion_dataset_version": dataset_version,
    }


def promote_candidate(
    name: str,
    version: str,
    dataset: Path,
    *,
    metric: str,
    floors: dict[str, float],
    min_improvement: float = 0.0,
    batch_size: int = 32,
    tracking_uri: str | None = None,
    gate_set: Path | None = None,
    gate_tolerance: float = 0.02,
) -> dict[str, Any]:
    """The promotion gate: move ``champion`` to ``version`` only if it beats the current one.

    With a ``gate_set`` (a fixed photo set), the candidate must also score no more than
    ``gate_tolerance`` below the champion there, and no more than that below the untrained
    prior (the version tagged ``recipe=prior``), on ``metric``.

    Both the candidate and the current champion are evaluated on the test split of ``dataset``
    (the candidate's), each with its own preset and threshold. A candidate that passes gets
    alias ``champion``; otherwise it gets ``challenger``. The decision and its reason are set as
    tags on the candidate version.

    Returns:
        A small dict: promoted, reason, metric, candidate/champion versions and values.
    """
    import mlflow

    from harmscan.data import dataset_version
    from harmscan.metrics import decide_promotion
    from tasks.evaluation import evaluate_model_uri

    if tracking_uri is not None:
        mlflow.set_tracking_uri(tracking_uri)
    client = mlflow.MlflowClient()
    champion = alias_version(client, name, CHAMPION)
    candidate_metrics = evaluate_model_uri(
        f"models:/{name}/{version}", dataset, batch_size=batch_size
    )
    champion_metrics = None
    if champion is not None and champion != version:
        champion_metrics = evaluate_model_uri(
            f"models:/{name}/{champion}", dataset, batch_size=batch_size
        )
    decision = decide_promotion(
        candidate_metrics,
        champion_metrics,
        metric=metric,
        floors=floors,
        min_improvement=min_improvement,
    )
    if gate_set is not None and decision.promote and champion != version:
        from tasks.recipes import photo_gate

        gated = photo_gate(client, name, version, champion, gate_set, metric, gate_tolerance)
        if not gated.promote:
            decision = type(decision)(False, gated.reason, metric, decision.candidate, None)
    if champion == version:
        decision = type(decision)(True, "already champion", metric, decision.candidate, None)
    tags = _decision_tags(decision, dataset_version(dataset), champion)
    leaked = _champion_leak(client, name, champion, dataset) if champion_metrics else None
    if leaked is not None:
        tags["promotion_champion_saw_test_fraction"] = f"{leaked:.4f}"
        if leaked > 0:
            logger.warning(
                "champion v%s trained on %.1f%% of this test split: its score is optimistic",
                champion,
                100 * leaked,
            )
    set_alias(client, name, CHAMPION if decision.promote else CHALLENGER, version, tags)
    if decision.promote and champion is not None and champion != version:
        client.set_model_version_tag(name, champion, "superseded_by", version)
    logger.info(
        "%s version %s: %s (%s)", name, version, tags["promotion_decision"], decision.reason
    )
    return {
        "promoted": decision.promote,
        "reason": decision.reason,
        "metric": metric,
        "candidate_version": version,
        "candidate_value": decision.candidate,
        "champion_version": champion,
        "champion_value": decision.champion,
        "candidate_metrics": candidate_metrics,
        "champion_saw_test_fraction": leaked,
    }


def _champion_leak(client: MlflowClient, name: str, champion: str, dataset: Path) -> float | None:
    """How much of ``dataset``'s test split the champion trained on, when its dataset is at hand.

    The ETL keeps dataset versions side by side (``<datasets>/<version>/``); None when the
    champion's dataset is not there.
    """
    from harmscan.data import leaked_fraction, read_manifest

    version = client.get_model_version(name, champion).tags.get("dataset_version", "")
    folder = Path(dataset).resolve().parent / version
    if not version or not (folder / "manifest.csv").is_file():
        return None
    return leaked_fraction(read_manifest(dataset), read_manifest(folder))


def force_champion(
    name: str, version: str, reason: str, tracking_uri: str | None = None
) -> str | None:
    """Point ``champion`` at ``version`` by hand (roll back / override); return the previous one."""
    import mlflow

    if tracking_uri is not None:
        mlflow.set_tracking_uri(tracking_uri)
    client = mlflow.MlflowClient()
    previous = alias_version(client, name, CHAMPION)
    set_alias(
        client,
        name,
        CHAMPION,
        version,
        {
            "promotion_decision": "manual",
            "promotion_reason": reason,
            "promotion_champion_version": previous or "none",
        },
    )
    logger.info("%s: champion moved by hand from %s to %s (%s)", name, previous, version, reason)
    return previous


@task(name="promote", retries=1, retry_delay_seconds=5)
def promote_task(
    name: str,
    version: str,
    dataset: Path,
    metric: str,
    floors: dict[str, float],
    min_improvement: float = 0.0,
    tracking_uri: str | None = None,
    gate_set: Path | None = None,
    gate_tolerance: float = 0.02,
) -> dict[str, Any]:
    """Prefect task: `promote_candidate`, with the decision published as a markdown artifact."""
    from tasks.artifacts import publish_promotion

    result = promote_candidate(
        name,
        version,
        dataset,
        metric=metric,
        floors=floors,
        min_improvement=min_improvement,
        tracking_uri=tracking_uri,
        gate_set=gate_set,
        gate_tolerance=gate_tolerance,
    )
    champion = result["champion_version"]
    publish_promotion(
        key=f"promotion-{name}",
        promoted=result["promoted"],
        model_name=name,
        alias=CHAMPION if result["promoted"] else CHALLENGER,
        metric=metric,
        challenger=(version, result["candidate_value"]),
        champion=(champion, result["champion_value"])
        if champion is not None and result["champion_value"] is not None
        else None,
        reason=result["reason"],
    )
    get_run_logger().info("promotion of %s v%s: %s", name, version, result["reason"])
    return result
