"""Prefect task: split the verified selection, lay the dataset out and write its manifest.

Layout: ``<paths.data>/datasets/<version>/{train,val,test}/{harmful,safe}/<ImageID>.<ext>`` (the
extension of the image's real format: ``.jpg``, ``.png``, ...) with
``manifest.csv`` and ``summary.json`` beside them, and ``<paths.data>/datasets/latest.json``
pointing at the newest version. The folder is built under a temporary name and renamed when
complete, so a version folder is never half-written; the same selection gives the same version.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from conf.settings import EtlSettings
from harmscan.datasetdir import LATEST_FILE
from harmscan.digests import unmatched
from harmscan.manifest import (
    MANIFEST_COLUMNS,
    assign_splits,
    relative_path,
    split_problem,
    summarize,
    write_manifest,
    write_summary,
)
from harmscan.reviewed import is_reviewed, split_fractions


def place(source: Path, dest: Path) -> None:
    """Hard-link ``source`` to ``dest`` (same disk), falling back to a copy."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, dest)
    except OSError:
        shutil.copy2(source, dest)


def build_manifest(
    selection: pd.DataFrame, etl: EtlSettings, reviewed_in_test: bool = False
) -> pd.DataFrame:
    """The manifest rows of a verified selection: split, relative path and file facts.

    Reviewed images (`harmscan.reviewed`) are split on their own, and into train and val only
    unless ``reviewed_in_test``.
    """
    frame = selection.copy()
    reviewed = is_reviewed(frame["image_id"])
    frame["split"] = None
    if (~reviewed).any():
        frame.loc[~reviewed, "split"] = assign_splits(frame[~reviewed], etl.split, etl.seed)
    if reviewed.any():
        fractions = split_fractions(etl.split, reviewed_in_test)
        frame.loc[reviewed, "split"] = assign_splits(frame[reviewed], fractions, etl.seed)
    # Rows without them (reviewed uploads, older caches): stored as JPEG, taken as photos.
    for column, default in (("format", "jpeg"), ("domain", "photo")):
        frame[column] = frame[column].fillna(default) if column in frame else default
    frame["path"] = [
        relative_path(s, label, i, f)
        for s, label, i, f in zip(
            frame["split"], frame["label"], frame["image_id"], frame["format"], strict=True
        )
    ]
    for column in ("license", "author", "original_url"):
        frame[column] = frame[column].fillna("").astype(str)
    return frame


@task(cache_policy=NO_CACHE)
def build_dataset(
    selection_path: Path,
    image_folder: Path,
    datasets_dir: Path,
    etl: EtlSettings,
    reviewed_path: Path | None = None,
    reviewed_in_test: bool = False,
) -> dict[str, Any]:
    """Split, place the images, write manifest and summary, and point ``latest.json`` at it.

    Args:
        selection_path: Parquet of the verified selection (from `tasks.images.download_images`).
        image_folder: Where the verified images are (their ``file`` column is relative to it).
        datasets_dir: ``<paths.data>/datasets``.
        etl: Split fractions and seed.
        reviewed_path: Parquet of reviewed images to add (`tasks.reviewed.collect_reviewed`),
            files relative to ``image_folder`` too.
        reviewed_in_test: Let reviewed images into the test split.

    Returns:
        ``version``, ``dataset_dir``, ``manifest``, ``summary`` (the summary dict).
    """
    logger = get_run_logger()
    selection = pd.read_parquet(selection_path)
    if reviewed_path is not None:
        reviewed = pd.read_parquet(reviewed_path)
        selection = pd.concat([selection, reviewed], ignore_index=True)
        logger.info("with %d reviewed images", len(reviewed))
    if selection.empty or selection["label"].nunique() < 2:
        raise ValueError(
            f"no dataset to build: the verified selection has {len(selection)} images "
            f"({selection['label'].value_counts().to_dict() if len(selection) else {}}); "
            "both harmful and safe images are needed: add openimages.subsets or classes, raise "
            "etl.max_per_side and etl.max_per_label, or see the failures by reason (bucket, "
            "network)"
        )
    manifest = build_manifest(selection, etl, reviewed_in_test)
    problem = split_problem(manifest)
    if problem:  # still written (it is what the selection gives); training refuses it up front
        logger.warning("dataset cannot be trained on as is: %s", problem)
    staging = datasets_dir / f".staging-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    try:
        for row in manifest.itertuples():
            place(image_folder / str(row.file), staging / str(row.path))
        _, version = write_manifest(manifest[list(MANIFEST_COLUMNS)], staging)
        summary = summarize(manifest)
        summary["version"] = version
        write_summary(summary, staging)
        final = datasets_dir / version
        missing, changed = (
            unmatched(final, manifest["path"], manifest["sha256"]) if final.exists() else ([], [])
        )
        damaged = missing + changed
        if final.exists() and not damaged:
            logger.info("dataset %s already exists and verifies; reusing it", version)
            shutil.rmtree(staging)
        elif final.exists():
            logger.warning(
                "dataset %s exists but %d of its files are missing or differ from its manifest "
                "(%s); replacing it with the verified images",
                version, len(damaged), ", ".join(damaged[:5]),
            )  # fmt: skip
            replaced = datasets_dir / f".replaced-{uuid.uuid4().hex[:8]}"
            final.rename(replaced)
            staging.rename(final)
            shutil.rmtree(replaced, ignore_errors=True)
        else:
            staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    write_latest(datasets_dir, version, len(manifest))
    logger.info("dataset %s: %d images in %s", version, len(manifest), final)
    return {
        "version": version,
        "dataset_dir": final,
        "manifest": final / "manifest.csv",
        "summary": summary,
    }


def write_latest(datasets_dir: Path, version: str, images: int) -> Path:
    """Point ``latest.json`` at ``version`` (written to a temp file, then renamed)."""
    final = datasets_dir / version
    latest = {
        "version": version,
        "path": str(final.resolve()),
        "manifest": str((final / "manifest.csv").resolve()),
        "images": images,
        "updated": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    tmp = datasets_dir / f".{LATEST_FILE}.{uuid.uuid4().hex[:8]}"
    tmp.write_text(json.dumps(latest, indent=2) + "\n")
    return tmp.replace(datasets_dir / LATEST_FILE)
