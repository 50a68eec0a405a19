"""Reviewed images as a labelled source of the dataset: rows, ids and their split.

A reviewer's last decision on a request labels its image (`harmscan.decisions`). Such images come
from production traffic: licence unknown, kept local, and — unless ``review.allow_in_test`` — never
put into the test split that the promotion gate compares models on (a model would otherwise be
graded on the very images its predecessor was corrected on). In the manifest they are the rows
whose ``image_id`` starts with ``reviewed-`` and whose ``source_labels`` is ``reviewed``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from harmscan.decisions import Decision

DOMAIN = "reviewed"
PREFIX = f"{DOMAIN}-"
LICENSE = "unknown"
FOLDER = DOMAIN  # below the ETL's image folder


def latest_decisions(decisions: Iterable[Decision]) -> dict[str, Decision]:
    """The last decision per request id, in topic order (what compaction keeps)."""
    latest: dict[str, Decision] = {}
    for decision in decisions:
        latest[decision.id] = decision
    return latest


def reviewed_image_id(request_id: str) -> str:
    """A file-name-safe, stable image id for a reviewed request."""
    return PREFIX + hashlib.sha256(request_id.encode()).hexdigest()[:16]


def is_reviewed(image_ids: pd.Series) -> pd.Series:
    """Which manifest rows came from reviews."""
    return image_ids.astype(str).str.startswith(PREFIX)


def reviewed_row(decision: Decision, facts: Mapping[str, Any]) -> dict[str, Any]:
    """The selection row of a reviewed image; ``facts`` has file, sha256, bytes, width, height."""
    return {
        "image_id": reviewed_image_id(decision.id),
        "label": decision.decision,
        "source_labels": DOMAIN,
        "license": LICENSE,
        "author": "",
        "original_url": "",
        "domain": DOMAIN,
        **{k: facts[k] for k in ("file", "sha256", "bytes", "width", "height")},
    }


def split_fractions(fractions: Mapping[str, float], allow_test: bool) -> dict[str, float]:
    """The split fractions of reviewed images: the dataset's, without test unless allowed."""
    if allow_test:
        return dict(fractions)
    kept = {k: v for k, v in fractions.items() if k != "test"}
    total = sum(kept.values())
    return {k: v / total for k, v in kept.items()}
