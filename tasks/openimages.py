"""Prefect tasks: download the Open Images V7 metadata, then pick the candidate images.

The downloads are resumable and checked (`tasks.download`): a later run downloads nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import requests
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from conf.settings import ClassesSettings, EtlSettings, OpenImagesSettings
from harmscan import openimages as oi
from harmscan.classtree import ClassSets, Hierarchy, read_class_descriptions, resolve_classes
from harmscan.sampling import rank_candidates
from tasks.download import DownloadError, fetch, metadata_plan

RETRY_DELAYS = [2.0, 10.0, 30.0]


def retry_on(*transient: type[BaseException]) -> Callable[[Any, Any, Any], bool]:
    """A Prefect ``retry_condition_fn``: retry only these exception types, not config errors."""

    def condition(task: Any, task_run: Any, state: Any) -> bool:
        try:
            error = state.result(raise_on_failure=False)
        except Exception:  # the failure cannot be read back: keep the retry policy
            return True
        return isinstance(error, transient)

    return condition


@task(
    retries=3,
    retry_delay_seconds=RETRY_DELAYS,
    retry_condition_fn=retry_on(DownloadError, requests.RequestException, ConnectionError),
    cache_policy=NO_CACHE,
)
def download_metadata(
    openimages: OpenImagesSettings, cache: Path, subsets: list[str]
) -> dict[str, Path]:
    """Fetch the metadata files the ETL needs (cached; resumable).

    Args:
        openimages: Where the files are (base URL and per-file paths).
        cache: The cache root (``settings.paths.cache``).
        subsets: Open Images subsets to read (train, validation, test).

    Returns:
        Logical name -> local path (plus ``domains`` when ``openimages.domains_file`` is set).
    """
    logger = get_run_logger()
    plan = metadata_plan(openimages, cache, subsets)
    paths: dict[str, Path] = {}
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn())
    with (
        requests.Session() as session,
        Progress(*columns, TransferSpeedColumn(), TimeRemainingColumn()) as progress,
    ):
        for name, (url, dest) in plan.items():
            path, fetched = fetch(
                url, dest, timeout=openimages.http_timeout_s, session=session, progress=progress
            )
            if name != "domains":
                logger.info("%s: %s (%s)", name, path, "downloaded" if fetched else "cached")
            paths[name] = path
    return paths


@task(cache_policy=NO_CACHE)
def select_candidates(
    metadata: dict[str, Path],
    classes: ClassesSettings,
    etl: EtlSettings,
    subsets: list[str],
    out_dir: Path,
) -> dict[str, Any]:
    """Resolve the class sets, filter the labels, rank the candidates of both sides.

    Returns:
        ``candidates`` (path of a parquet file in rank order, with image metadata),
        ``counts`` (candidates per side before and after ranking caps) and ``classes``
        (configured name -> resolved ids).
    """
    logger = get_run_logger()
    sets = _class_sets(metadata, classes)
    labels = _positive_labels(metadata, sets.all_ids, subsets, etl.csv_chunk_rows)
    images = oi.label_images(labels, sets)
    # Joined before ranking: an image no list describes must not take a label's turn or cap.
    listed, unlisted = _join_image_index(images, metadata, subsets, etl.csv_chunk_rows)
    ranked = rank_candidates(listed, max_per_label=etl.max_per_label, seed=etl.seed)
    ranked["domain"] = oi.image_domains(ranked["image_id"], metadata.get("domains"))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "candidates.parquet"
    ranked.to_parquet(path, index=False)
    counts = {
        "labelled": {str(k): int(v) for k, v in images["label"].value_counts().items()},
        "ranked": {str(k): int(v) for k, v in ranked["label"].value_counts().items()},
        "not_in_image_list": {"all": unlisted},
    }
    logger.info("candidates: %s", counts)
    return {"candidates": path, "counts": counts, "classes": dict(sets.origin)}


def _class_sets(metadata: dict[str, Path], classes: ClassesSettings) -> ClassSets:
    """The configured class names resolved to exact ids (through the hierarchy if asked)."""
    table = read_class_descriptions(metadata["class_descriptions"])
    hierarchy = Hierarchy.read(metadata["hierarchy"]) if classes.expand_hierarchy else None
    sets = resolve_classes(
        classes.harmful,
        classes.safe,
        table,
        hierarchy,
        exclude=classes.exclude,
        never_safe=classes.never_safe,
        on_ambiguous=classes.on_ambiguous,
    )
    get_run_logger().info(
        "harmful ids: %d, safe ids: %d, never_safe ids: %d",
        len(sets.harmful),
        len(sets.safe),
        len(sets.never_safe),
    )
    return sets


def _positive_labels(
    metadata: dict[str, Path], ids: set[str], subsets: list[str], chunk_rows: int
) -> pd.DataFrame:
    """The verified positive labels of ``ids`` in every subset, with a row counter per subset."""
    frames = []
    counter = (TextColumn("{task.description}"), TextColumn("{task.completed:,.0f} rows"))
    with Progress(*counter, TimeElapsedColumn()) as progress:
        for subset in subsets:
            bar = progress.add_task(f"labels {subset}", total=None)
            rows = oi.filter_labels(
                metadata[f"labels_{subset}"],
                ids,
                chunk_rows,
                on_rows=lambda n, bar=bar: progress.advance(bar, n),
            )
            frames.append(rows.assign(Subset=subset))
    return pd.concat(frames, ignore_index=True)


def _join_image_index(
    images: pd.DataFrame, metadata: dict[str, Path], subsets: list[str], chunk_rows: int
) -> tuple[pd.DataFrame, int]:
    """Add licence, author, URL and rotation.

    Candidates missing from the image list cannot be attributed: they are left out, logged and
    counted (the second value).
    """
    wanted = images["image_id"]
    index = pd.concat(
        [oi.read_image_index(metadata[f"images_{s}"], wanted, chunk_rows) for s in subsets],
        ignore_index=True,
    ).drop_duplicates("ImageID")
    index = index.rename(
        columns={
            "ImageID": "image_id",
            "License": "license",
            "Author": "author",
            "OriginalURL": "original_url",
            "Rotation": "rotation",
        }
    )[["image_id", "license", "author", "original_url", "rotation"]]
    joined = images.merge(index, on="image_id", how="inner", validate="one_to_one")
    missing = len(images) - len(joined)
    if missing:
        get_run_logger().warning("%d candidates are not in the image lists; left out", missing)
    return joined.reset_index(drop=True), missing
