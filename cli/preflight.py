"""Checks a command makes before it starts any work or service, so a missing dataset or a
tracking server that is not running ends in one line at once (not after Prefect's temporary
server booted, nor after minutes of MLflow's connection retries)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cli.failures import UNREACHABLE, USAGE, fail

if TYPE_CHECKING:
    from conf.settings import Settings

# Seconds the ImageNet weights' download server may take to answer when they are not cached.
WEIGHTS_TIMEOUT_S = 3.0


def checked_weights(settings: Settings) -> None:
    """Check the weights setting of every model to train, before torch is imported.

    A file must exist; ``imagenet`` must be in torch's hub cache or its download must answer.

    Raises:
        typer.Exit: A missing file, or ImageNet weights neither cached nor reachable (USAGE).
    """
    from harmscan.weights import (
        IMAGENET_URLS,
        WeightsError,
        alternatives,
        imagenet_cache_file,
        resolve_weights,
    )

    for arch in settings.train.models:
        try:
            source = resolve_weights(arch, settings.train.weights.get(arch, "none"))
        except WeightsError as exc:
            raise fail(exc, USAGE) from None
        if source.kind != "imagenet" or imagenet_cache_file(arch).is_file():
            continue
        why = _unreachable(IMAGENET_URLS[arch])
        if why:
            raise fail(
                f"torchvision ImageNet weights for {arch} are neither cached in "
                f"{imagenet_cache_file(arch).parent} nor downloadable ({why}); "
                f"{alternatives(arch)}",
                USAGE,
            )


def _unreachable(url: str) -> str:
    """Why ``url`` does not answer a HEAD request within `WEIGHTS_TIMEOUT_S` ("" if it does)."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, method="HEAD")  # noqa: S310 (an https URL of ours)
    try:
        with urllib.request.urlopen(request, timeout=WEIGHTS_TIMEOUT_S):  # noqa: S310
            return ""
    except urllib.error.HTTPError as exc:
        return f"{url}: HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        return f"{url}: {getattr(exc, 'reason', exc)}"


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


# Seconds the brokers may take to answer a metadata request.
KAFKA_TIMEOUT_S = 5.0


def kafka_reachable(settings: Settings) -> None:
    """Check that the brokers of ``kafka.bootstrap_servers`` answer a metadata request.

    Raises:
        typer.Exit: No broker answered within `KAFKA_TIMEOUT_S` (UNREACHABLE).
    """
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    kafka = settings.kafka
    # log_level 0: librdkafka would print a line per refused connection (hundreds), not one.
    admin = AdminClient({**kafka.client_config(), "log_level": 0})
    try:
        brokers = admin.list_topics(timeout=KAFKA_TIMEOUT_S).brokers
    except KafkaException as exc:
        reason = exc.args[0].str() if exc.args and hasattr(exc.args[0], "str") else str(exc)
        brokers, why = {}, f": {reason}"
    else:
        why = ""
    if not brokers:
        raise fail(
            f"cannot reach Kafka at {kafka.bootstrap_servers} (kafka.bootstrap_servers){why}; "
            "start the local stack (harmscan up) or change kafka.bootstrap_servers",
            UNREACHABLE,
        )


def checked_options(settings: Settings, changes: Mapping[str, Any]) -> Settings:
    """``settings`` with a command's options as dotted keys (None: not given), validated now.

    Raises:
        typer.Exit: An option's value is one its setting cannot take (USAGE).
    """
    from conf.loader import SettingsError, update

    try:
        return update(settings, {k: v for k, v in changes.items() if v is not None})
    except SettingsError as exc:
        raise fail(exc, USAGE) from None
