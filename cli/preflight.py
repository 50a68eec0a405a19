"""Checks a command makes before it starts any work or service, so a missing dataset or a
tracking server that is not running ends in one line at once (not after Prefect's temporary
server booted, nor after minutes of MLflow's connection retries)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from cli.failures import UNREACHABLE, USAGE, fail

if TYPE_CHECKING:
    from conf.settings import Settings

# Seconds MLflow's /health may take to answer.
MLFLOW_TIMEOUT_S = 3.0


def checked_dataset(settings: Settings, dataset: Path | None) -> Path:
    """The dataset folder a command reads (``dataset``, else the ETL's latest), checked.

    Raises:
        typer.Exit: No dataset yet, or the folder has no manifest (exit code USAGE).
    """
    from harmscan.datasetdir import dataset_folder, manifest_path

    try:
        folder = dataset_folder(settings.paths.data / "datasets", dataset)
    except FileNotFoundError as exc:
        raise fail(exc, USAGE) from None
    if not manifest_path(folder).is_file():
        given = f"--dataset {dataset}" if dataset is not None else "the ETL's latest dataset"
        raise fail(
            f"{given}: no {manifest_path(folder).name} in {folder}; give a folder the ETL made "
            f"(under {settings.paths.data / 'datasets'}) or run `harmscan etl`",
            USAGE,
        )
    return folder


def mlflow_reachable(settings: Settings) -> None:
    """Check that the MLflow server of ``mlflow.tracking_uri`` answers (http(s) URIs only).

    Raises:
        typer.Exit: It does not answer its /health within `MLFLOW_TIMEOUT_S` (UNREACHABLE).
    """
    from stack.process import http_ok

    uri = settings.mlflow.tracking_uri
    if not uri.startswith(("http://", "https://")):
        return
    if not http_ok(f"{uri.rstrip('/')}/health", timeout=MLFLOW_TIMEOUT_S):
        raise fail(
            f"cannot reach MLflow at {uri} (mlflow.tracking_uri); start the local stack "
            "(harmscan up) or change mlflow.tracking_uri",
            UNREACHABLE,
        )
