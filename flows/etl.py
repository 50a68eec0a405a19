"""The ``etl`` flow: Open Images V7 -> a verified, balanced, split harmful/safe dataset.

It only orchestrates: metadata download (`tasks.openimages`), candidate selection (exact class
ids + hierarchy, human-verified positives), image download and verification (`tasks.images`), and
the split, layout and manifest (`tasks.dataset`).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from prefect import flow, get_run_logger
from pydantic import BaseModel

from conf.loader import SettingsSource
from conf.settings import OpenImagesSubset, Settings
from flows.common import failure_note, resolve, time_limit
from flows.params import etl_changes
from harmscan.manifest import summary_rows
from tasks.artifacts import publish_table, run_namer
from tasks.dataset import build_dataset
from tasks.images import download_images
from tasks.openimages import download_metadata, select_candidates
from tasks.reviewed import collect_reviewed


class EmptySelection(ValueError):
    """The ETL found no image to build a dataset from; the message names the endpoint to check."""


class EtlResult(BaseModel):
    """What the ETL made: small values only (paths, counts, the version)."""

    version: str
    dataset_dir: Path
    manifest: Path
    images: int
    counts: dict[str, dict[str, int]]
    failures: dict[str, int]
    failed_ids: dict[str, list[str]]
    summary: dict[str, Any]


def source_slug(*parts: str | None) -> str:
    """A folder name for a data source (endpoint, bucket, base URL)."""
    text = "_".join(urlparse(p).netloc + urlparse(p).path if "://" in p else p for p in parts if p)
    return re.sub(r"[^A-Za-z0-9.-]+", "_", text).strip("_") or "aws"


def check_selection(
    settings: Settings,
    ranked: dict[str, int],
    selected: dict[str, int],
    failures: dict[str, int],
) -> None:
    """Fail with the endpoint and settings to check when a side of the dataset is empty.

    Raises:
        EmptySelection: No candidate in the metadata, or no verified image of a side.
    """
    oi = settings.openimages
    sides = {"harmful", "safe"}
    unseen = sorted(sides - {k for k, v in ranked.items() if v})
    if unseen:
        raise EmptySelection(
            f"no candidate {' or '.join(unseen)} image in the metadata at "
            f"{oi.metadata_base_url} (subsets {list(oi.subsets)}); check "
            f"openimages.metadata_base_url, openimages.subsets and classes.{unseen[0]}"
        )
    missing = sorted(sides - {k for k, v in selected.items() if v})
    if missing:
        where = f"{oi.s3_endpoint_url or 'AWS S3'} bucket {oi.bucket}"
        raise EmptySelection(
            f"no verified {' or '.join(missing)} image could be downloaded from {where} "
            f"(failures: {failures or 'none'}); check openimages.s3_endpoint_url and "
            "openimages.bucket"
        )


def work_key(settings: Settings) -> str:
    """Short hash of everything that shapes the candidate list (reused across identical runs)."""
    shape = {
        "base": settings.openimages.metadata_base_url,
        "files": settings.openimages.metadata_files,
        "subsets": settings.openimages.subsets,
        "classes": settings.classes.model_dump(),
        "etl": settings.etl.model_dump(),
    }
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:12]


@flow(
    name="etl",
    flow_run_name=run_namer("etl"),
    validate_parameters=True,
    on_failure=[failure_note],
)
def etl(
    source: SettingsSource | None = None,
    max_per_side: int | None = None,
    max_per_label: int | None = None,
    seed: int | None = None,
    subsets: list[OpenImagesSubset] | None = None,
) -> EtlResult:
    """Build the harmful/safe dataset from Open Images V7.

    Args:
        source: Profile, extra file and typed overrides (the CLI and ``retrain`` pass theirs);
            None: the profile and file this process names (``HARMSCAN_PROFILE``/``_CONFIG``).
        max_per_side: Override ``etl.max_per_side``.
        max_per_label: Override ``etl.max_per_label``.
        seed: Override ``etl.seed``.
        subsets: Override ``openimages.subsets``.

    Returns:
        The dataset version, folder, manifest path, counts and failures by reason.
    """
    settings = resolve(source, etl_changes(max_per_side, max_per_label, seed, subsets))
    with time_limit(settings, "etl"):
        return _etl(settings)


def _etl(settings: Settings) -> EtlResult:
    logger = get_run_logger()
    oi, cache = settings.openimages, settings.paths.cache
    work = cache / "etl" / work_key(settings)
    images = cache / "images" / source_slug(oi.s3_endpoint_url, oi.bucket)
    logger.info("ETL of %s from %s, subsets %s", settings.profile, oi.metadata_base_url, oi.subsets)
    metadata = download_metadata(oi, cache, list(oi.subsets))
    picked = select_candidates(metadata, settings.classes, settings.etl, list(oi.subsets), work)
    fetched = download_images(picked["candidates"], oi, settings.etl, images, work)
    check_selection(settings, picked["counts"]["ranked"], fetched["selected"], fetched["failures"])
    review = settings.review
    reviewed = (
        collect_reviewed(settings.kafka, settings.serving, settings.etl, images, work)
        if review.use_in_training
        else None
    )
    dataset = build_dataset(
        fetched["selection"],
        images,
        settings.paths.data / "datasets",
        settings.etl,
        reviewed_path=reviewed,
        reviewed_in_test=review.allow_in_test,
    )
    summary = dataset["summary"]
    publish_table(
        summary_rows(summary, fetched["failures"]),
        key="etl-dataset",
        description=f"dataset {dataset['version']}: images per split and source label; exclusions",
    )
    return EtlResult(
        version=dataset["version"],
        dataset_dir=dataset["dataset_dir"],
        manifest=dataset["manifest"],
        images=summary["images"],
        counts={
            "candidates": picked["counts"]["ranked"],
            "targets": fetched["targets"],
            "labels": summary["labels"],
            **{f"split_{k}": v for k, v in summary["splits"].items()},
        },
        failures=fetched["failures"],
        failed_ids=fetched["failed_ids"],
        summary=summary,
    )
