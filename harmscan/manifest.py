"""Deterministic train/val/test splits, the dataset manifest, its hash and its summary.

A dataset is its manifest: one row per image with its label, domain (photo, illustration, emoji),
split, relative path, image format and sha256.
The sha256 of the canonical manifest text (first 12 hex digits) names the dataset version, so the
same images with the same split always give the same version.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from harmscan.bundle import LABELS
from harmscan.sampling import seeded_order

MANIFEST_COLUMNS = (
    "image_id",
    "label",
    "domain",
    "source_labels",
    "split",
    "path",
    "format",
    "sha256",
    "bytes",
    "width",
    "height",
    "license",
    "author",
    "original_url",
)
SPLITS = ("train", "val", "test")
# Columns added after the first datasets were written, and what an older manifest means by them.
COLUMN_DEFAULTS = {"domain": "photo", "format": "jpeg"}
# The stored file's extension per image format (the format is what the bytes are, not the key).
EXTENSIONS = {
    "jpeg": "jpg",
    "png": "png",
    "webp": "webp",
    "gif": "gif",
    "bmp": "bmp",
    "tiff": "tif",
}
MANIFEST_FILE = "manifest.csv"
SUMMARY_FILE = "summary.json"
VERSION_CHARS = 12


def assign_splits(frame: pd.DataFrame, fractions: Mapping[str, float], seed: int) -> pd.Series:
    """Stratified, deterministic split of the images of ``frame``.

    Within each label, images are ordered by primary source label (first of ``source_labels``
    when no ``primary_label`` column is given) and then by a seeded key; walking that order,
    each image goes to the split that is furthest below its share. So every label, and within it
    every source label, is spread over the splits in proportion, and the result does not depend
    on the row order of ``frame``.

    Returns:
        The split name per row (index aligned with ``frame``).
    """
    unknown = sorted(set(fractions) - set(SPLITS))
    if unknown:
        raise ValueError(f"unknown split names {unknown}; valid: {', '.join(SPLITS)}")
    order = frame.assign(
        _primary=frame["primary_label"]
        if "primary_label" in frame
        else frame["source_labels"].str.split(";").str[0],
        _key=seeded_order(frame["image_id"], seed, "split"),
    ).sort_values(["label", "_primary", "_key", "image_id"], kind="stable")
    names = [s for s in SPLITS if fractions.get(s, 0) > 0]
    out = pd.Series(index=frame.index, dtype=object)
    for _, group in order.groupby("label", sort=True):
        counts = dict.fromkeys(names, 0)
        for position, index in enumerate(group.index, start=1):
            split = max(names, key=lambda s: (fractions[s] * position - counts[s], -names.index(s)))
            counts[split] += 1
            out[index] = split
    return out


def labels_missing_by_split(
    manifest: pd.DataFrame, splits: Sequence[str] = SPLITS
) -> dict[str, list[str]]:
    """The labels each of ``splits`` lacks (splits lacking none are left out)."""
    present = manifest.groupby("split")["label"].agg(set).to_dict() if len(manifest) else {}
    missing = {s: [lab for lab in LABELS if lab not in present.get(s, set())] for s in splits}
    return {split: labels for split, labels in missing.items() if labels}


def split_problem(manifest: pd.DataFrame, splits: Sequence[str] = SPLITS) -> str | None:
    """Why a model cannot be trained, calibrated and tested on these splits, or None.

    Every split needs both labels: training learns both classes, the validation split
    calibrates the scores and picks the threshold, the test split's ROC AUC needs both.
    """
    missing = labels_missing_by_split(manifest, splits)
    if not missing:
        return None
    counts = manifest.groupby(["split", "label"]).size().to_dict() if len(manifest) else {}
    shown = {s: {lab: int(counts.get((s, lab), 0)) for lab in LABELS} for s in SPLITS}
    lacking = "; ".join(f"{s} has no {' and no '.join(labels)}" for s, labels in missing.items())
    return (
        f"every split needs harmful and safe images: {lacking} (images per split {shown}). "
        "Build a larger dataset: raise etl.max_per_side and etl.max_per_label, add "
        "openimages.subsets or classes, or give the short split a larger share in etl.split"
    )


def relative_path(split: str, label: str, image_id: str, image_format: str = "jpeg") -> str:
    """Where an image sits inside the dataset folder (POSIX separators), by its real format."""
    if image_format not in EXTENSIONS:
        raise ValueError(f"unknown image format {image_format!r}; valid: {', '.join(EXTENSIONS)}")
    return f"{split}/{label}/{image_id}.{EXTENSIONS[image_format]}"


def with_defaults(manifest: pd.DataFrame) -> pd.DataFrame:
    """The manifest with the later columns (`COLUMN_DEFAULTS`) filled in where it lacks them."""
    missing = {c: v for c, v in COLUMN_DEFAULTS.items() if c not in manifest}
    return manifest.assign(**missing) if missing else manifest


def canonical_text(manifest: pd.DataFrame) -> str:
    """The manifest as canonical CSV text: fixed columns, sorted by image id, ``\\n`` endings."""
    manifest = with_defaults(manifest)
    missing = [c for c in MANIFEST_COLUMNS if c not in manifest]
    if missing:
        raise ValueError(f"manifest lacks columns {missing}; needs {', '.join(MANIFEST_COLUMNS)}")
    frame = manifest[list(MANIFEST_COLUMNS)].sort_values("image_id", kind="stable")
    for column in ("bytes", "width", "height"):
        frame[column] = frame[column].astype("int64")
    buffer = io.StringIO()
    frame.fillna("").to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue()


def manifest_hash(manifest: pd.DataFrame) -> str:
    """The dataset version: first 12 hex digits of the sha256 of the canonical manifest."""
    return hashlib.sha256(canonical_text(manifest).encode()).hexdigest()[:VERSION_CHARS]


def write_manifest(manifest: pd.DataFrame, folder: Path) -> tuple[Path, str]:
    """Write ``manifest.csv`` (canonical text) into ``folder``; return its path and version."""
    text = canonical_text(manifest)
    path = Path(folder) / MANIFEST_FILE
    path.write_text(text, encoding="utf-8", newline="\n")
    return path, hashlib.sha256(text.encode()).hexdigest()[:VERSION_CHARS]


def read_manifest(path: Path) -> pd.DataFrame:
    """Read a manifest back, ids and text as strings, sizes as integers."""
    text_columns = {c: str for c in MANIFEST_COLUMNS if c not in ("bytes", "width", "height")}
    return with_defaults(pd.read_csv(path, dtype=text_columns, keep_default_na=False))


def summarize(manifest: pd.DataFrame) -> dict[str, Any]:
    """Counts per label, per split and label, and per source label and label."""
    by_split = manifest.groupby(["split", "label"]).size()
    names = manifest.assign(name=manifest["source_labels"].str.split(";")).explode("name")
    by_source = names.groupby(["label", "name"]).size()
    by_domain = with_defaults(manifest).groupby(["domain", "label"]).size()
    return {
        "images": len(manifest),
        "labels": {
            str(k): int(v) for k, v in manifest["label"].value_counts().sort_index().items()
        },
        "splits": {
            split: {str(label): int(n) for (s, label), n in by_split.items() if s == split}
            for split in SPLITS
        },
        "domains": {
            str(domain): {str(label): int(n) for (d, label), n in by_domain.items() if d == domain}
            for domain in sorted(by_domain.index.get_level_values(0).unique())
        },
        "source_labels": {
            label: {str(name): int(n) for (lab, name), n in by_source.items() if lab == label}
            for label in sorted(manifest["label"].unique())
        },
    }


def write_summary(summary: Mapping[str, Any], folder: Path) -> Path:
    """Write ``summary.json`` into ``folder``."""
    path = Path(folder) / SUMMARY_FILE
    path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return path


def summary_rows(summary: Mapping[str, Any], failures: Mapping[str, int]) -> list[dict[str, Any]]:
    """The summary (and failures by reason) as flat rows: group, name, harmful, safe, total."""
    rows: list[dict[str, Any]] = []

    def add(group: str, name: str, harmful: int | None, safe: int | None, total: int) -> None:
        rows.append(
            {"group": group, "name": name, "harmful": harmful, "safe": safe, "total": total}
        )

    for split, counts in summary["splits"].items():
        h, s = counts.get("harmful", 0), counts.get("safe", 0)
        add("split", split, h, s, h + s)
    sources = summary["source_labels"]
    for name in sorted(set(sources.get("harmful", {})) | set(sources.get("safe", {}))):
        h, s = sources.get("harmful", {}).get(name, 0), sources.get("safe", {}).get(name, 0)
        add("source label", name, h, s, h + s)
    for reason, count in sorted(failures.items()):
        add("excluded", reason, None, None, count)
    return rows
