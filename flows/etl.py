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

import yaml
from prefect import flow, get_run_logger
from pydantic import BaseModel

from conf.loader import SettingsError, load_settings
from conf.settings import OpenImagesSubset, Settings
from harmscan.manifest import summary_rows
from tasks.artifacts import publish_table, run_namer
from tasks.dataset import build_dataset
from tasks.images import download_images
from tasks.openimages import download_metadata, select_candidates


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


def apply_overrides(settings: Settings, overrides: list[str]) -> Settings:
    """A copy of ``settings`` with ``a.b=c`` overrides (values parsed as YAML) validated again."""
    if not overrides:
        return settings
    data = settings.model_dump()
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise SettingsError(f"override takes key=value, got {item!r} (e.g. etl.seed=3)")
        node = data
        *parents, leaf = key.strip().split(".")
        for part in parents:
            if not isinstance(node.get(part), dict):
                raise SettingsError(f"unknown setting {key!r}: {part!r} is not a section")
            node = node[part]
        node[leaf] = yaml.safe_load(raw) if raw.strip() else raw
    try:
        return Settings.model_validate(data)
    except ValueError as exc:
        raise SettingsError(f"invalid override in {overrides}: {exc}") from None


def typed_overrides(
    max_per_side: int | None,
    max_per_label: int | None,
    seed: int | None,
    subsets: list[OpenImagesSubset] | None,
) -> list[str]:
    """The typed flow parameters as ``a.b=c`` overrides."""
    out = [f"etl.max_per_side={max_per_side}"] if max_per_side is not None else []
    out += [f"etl.max_per_label={max_per_label}"] if max_per_label is not None else []
    out += [f"etl.seed={seed}"] if seed is not None else []
    out += [f"openimages.subsets=[{', '.join(subsets)}]"] if subsets else []
    return out


def source_slug(*parts: str | None) -> str:
    """A folder name for a data source (endpoint, bucket, base URL)."""
    text = "_".join(urlparse(p).netloc + urlparse(p).path if "://" in p else p for p in parts if p)
    return re.sub(r"[^A-Za-z0-9.-]+", "_", text).strip("_") or "aws"


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


@flow(name="etl", flow_run_name=run_namer("etl"), validate_parameters=True)
def etl(
    settings: Settings | None = None,
    profile: str | None = None,
    overrides: list[str] | None = None,
    max_per_side: int | None = None,
    max_per_label: int | None = None,
    seed: int | None = None,
    subsets: list[OpenImagesSubset] | None = None,
) -> EtlResult:
    """Build the harmful/safe dataset from Open Images V7.

    Args:
        settings: Resolved settings (the ``retrain`` flow passes its own); when None they are
            loaded from ``profile`` and ``overrides``.
        profile: Settings profile used when ``settings`` is None.
        overrides: ``a.b=c`` settings overrides, applied on top.
        max_per_side: Override ``etl.max_per_side``.
        max_per_label: Override ``etl.max_per_label``.
        seed: Override ``etl.seed``.
        subsets: Override ``openimages.subsets``.

    Returns:
        The dataset version, folder, manifest path, counts and failures by reason.
    """
    logger = get_run_logger()
    extra = [*(overrides or []), *typed_overrides(max_per_side, max_per_label, seed, subsets)]
    if settings is None:
        settings = load_settings(profile, extra)
    else:
        settings = apply_overrides(settings, extra)
    oi, cache = settings.openimages, settings.paths.cache
    work = cache / "etl" / work_key(settings)
    images = cache / "images" / source_slug(oi.s3_endpoint_url, oi.bucket)
    logger.info("ETL of %s from %s, subsets %s", settings.profile, oi.metadata_base_url, oi.subsets)
    metadata = download_metadata(oi, cache, list(oi.subsets))
    picked = select_candidates(metadata, settings.classes, settings.etl, list(oi.subsets), work)
    fetched = download_images(picked["candidates"], oi, settings.etl, images, work)
    dataset = build_dataset(
        fetched["selection"], images, settings.paths.data / "datasets", settings.etl
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
