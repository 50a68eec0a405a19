"""Checks a command makes before it starts any work or service, so a missing dataset or a
tracking server that is not running ends in one line at once (not after Prefect's temporary
server booted, nor after minutes of MLflow's connection retries)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cli.failures import UNREACHABLE, USAGE, fail
from conf.redact import mask_credentials

if TYPE_CHECKING:
    from conf.settings import Settings

# Seconds the ImageNet weights' download server may take to answer when they are not cached.
WEIGHTS_TIMEOUT_S = 3.0


def checked_weights(settings: Settings, *, prior: bool = False) -> None:
    """Check the weights setting of every model to train, before torch is imported.

    A file must exist; ``imagenet`` must be in torch's hub cache or its download must answer.
    With ``prior`` (a retrain) and a gate set, also the weights of the untrained prior the
    retrain registers as its reference (`harmscan.weights.PRIOR_ARCH`), trained or not.

    Raises:
        typer.Exit: A missing file, or ImageNet weights neither cached nor reachable (USAGE).
    """
    from harmscan.weights import (
        IMAGENET_URLS,
        PRIOR_ARCH,
        WeightsError,
        alternatives,
        imagenet_cache_file,
        resolve_weights,
    )

    archs = list(settings.train.models)
    if prior and settings.mlflow.gate_set and PRIOR_ARCH not in archs:
        archs.append(PRIOR_ARCH)
    for arch in archs:
        try:
            source = resolve_weights(arch, settings.train.weights.get(arch, "none"))
        except WeightsError as exc:
            raise fail(exc, USAGE) from None
        if source.kind != "imagenet" or imagenet_cache_file(arch).is_file():
            continue
        status, why = _probe(IMAGENET_URLS[arch], WEIGHTS_TIMEOUT_S)
        if status != 200:
            raise fail(
                f"torchvision ImageNet weights for {arch} are neither cached in "
                f"{imagenet_cache_file(arch).parent} nor downloadable ({why}); "
                f"{alternatives(arch)}",
                USAGE,
            )


def _probe(url: str, timeout: float) -> tuple[int | None, str]:
    """One HEAD request: the HTTP status (None: no answer within ``timeout``) and what it says."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, method="HEAD")  # noqa: S310 (http(s) URLs of settings)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return int(response.status), f"{url}: HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return exc.code, f"{url}: HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        return None, f"{url}: {getattr(exc, 'reason', exc)}"


# Seconds an Open Images endpoint (metadata HTTP, S3) may take to answer.
ENDPOINT_TIMEOUT_S = 3.0


def openimages_reachable(settings: Settings) -> None:
    """Check that the Open Images endpoints the ETL would ask answer at all, once each.

    Nothing is asked when every metadata file the subsets need is cached (an ETL from this source
    ran before): the run then works from its caches. Any HTTP answer counts as reachable; only a
    refused or silent endpoint fails here, instead of after minutes of the ETL's retries.

    Raises:
        typer.Exit: The metadata base URL or the S3 endpoint did not answer (UNREACHABLE).
    """
    from cli.failures import start_hint
    from tasks.download import is_cached, metadata_plan

    oi = settings.openimages
    try:
        plan = metadata_plan(oi, settings.paths.cache, list(oi.subsets))
    except ValueError as exc:
        raise fail(exc, USAGE) from None
    if all(is_cached(url, dest) for url, dest in plan.values()):
        return
    endpoints = {
        "openimages.metadata_base_url": oi.metadata_base_url,
        # null: the bucket is on AWS S3
        "openimages.s3_endpoint_url": oi.s3_endpoint_url or f"https://s3.{oi.region}.amazonaws.com",
    }
    for setting, url in endpoints.items():
        status, why = _probe(url, ENDPOINT_TIMEOUT_S)
        if status is None:
            raise fail(f"cannot reach {why} ({setting}); {start_hint(setting, url)}", UNREACHABLE)


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
            f"cannot reach MLflow at {mask_credentials(uri)} (mlflow.tracking_uri); start the "
            "local stack (harmscan up) or change mlflow.tracking_uri",
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


def writable_root(settings: Settings) -> None:
    """``paths.root`` made and writable now, not minutes into a flow.

    Raises:
        typer.Exit: It cannot be made or written (USAGE, naming the setting).
    """
    root = settings.paths.root
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".write-check-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise fail(
            f"paths.root {root} cannot be written: {exc.strerror or exc}; "
            "set it to a folder you can write (--set paths.root=DIR)",
            USAGE,
        ) from None


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
