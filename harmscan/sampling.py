"""Seeded, balanced sampling of candidate images.

Every side (harmful, safe) is ranked once into a deterministic priority order: each image gets a
*primary* source label (its rarest one, so rare classes are represented), each primary label keeps
at most ``max_per_label`` images, and labels take turns (round robin) so no single label fills a
side. Download rounds then take candidates from the head of that order, and replacements for
failed downloads from further down, without ever reshuffling.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
import pandas as pd

from harmscan.openimages import HARMFUL, SAFE

logger = logging.getLogger(__name__)

SIDES = (HARMFUL, SAFE)


def seeded_order(keys: pd.Series, seed: int, salt: str = "") -> np.ndarray:
    """A stable pseudo-random 64-bit key per item, from the seed and the item's own key.

    It depends on nothing but (seed, salt, key), so an image keeps its place whatever else the
    candidate set holds and whatever order it was read in.
    """
    text = (f"{seed}:{salt}:" + keys.astype(str)).to_numpy(dtype=object)
    return pd.util.hash_array(text)


def primary_labels(candidates: pd.DataFrame) -> pd.Series:
    """Each image's rarest source label among the candidates (ties: alphabetical)."""
    exploded = candidates[["image_id", "source_labels"]].assign(
        name=candidates["source_labels"].str.split(";")
    )
    exploded = exploded.explode("name")
    counts = exploded["name"].map(exploded["name"].value_counts())
    exploded = exploded.assign(count=counts).sort_values(["image_id", "count", "name"])
    first = exploded.drop_duplicates("image_id").set_index("image_id")["name"]
    return candidates["image_id"].map(first)


def rank_side(candidates: pd.DataFrame, *, max_per_label: int, seed: int) -> pd.DataFrame:
    """Order one side's candidates for download, honouring the per-label cap.

    Args:
        candidates: Rows of one side with ``image_id`` and ``source_labels``.
        max_per_label: At most this many images per primary source label.
        seed: Sampling seed.

    Returns:
        The kept candidates in priority order, with added ``primary_label`` and ``rank`` columns.
    """
    if candidates.empty:
        return candidates.assign(primary_label=pd.Series(dtype=str), rank=pd.Series(dtype=int))
    frame = candidates.copy()
    frame["primary_label"] = primary_labels(frame)
    frame["_key"] = seeded_order(frame["image_id"], seed, "sample")
    frame = frame.sort_values(["primary_label", "_key"], kind="stable")
    frame["_turn"] = frame.groupby("primary_label").cumcount()
    capped = frame[frame["_turn"] < max_per_label]
    dropped = len(frame) - len(capped)
    if dropped:
        logger.info("per-label cap %d left out %d candidates", max_per_label, dropped)
    ranked = capped.sort_values(["_turn", "primary_label"], kind="stable")
    ranked = ranked.drop(columns=["_key", "_turn"]).reset_index(drop=True)
    ranked["rank"] = np.arange(len(ranked))
    return ranked


def rank_candidates(candidates: pd.DataFrame, *, max_per_label: int, seed: int) -> pd.DataFrame:
    """Rank both sides (see `rank_side`); the result is both rankings, harmful first."""
    frames = [
        rank_side(candidates[candidates["label"] == side], max_per_label=max_per_label, seed=seed)
        for side in SIDES
    ]
    return pd.concat(frames, ignore_index=True)


def side_targets(available: dict[str, int], *, max_per_side: int, balance: bool) -> dict[str, int]:
    """How many images each side should end with.

    Args:
        available: Side -> number of (ranked) candidates.
        max_per_side: Cap per side.
        balance: Give both sides the size of the smaller one.
    """
    targets = {side: min(max_per_side, available.get(side, 0)) for side in SIDES}
    if balance:
        smallest = min(targets.values())
        targets = dict.fromkeys(SIDES, smallest)
    return targets


def next_candidates(
    ranked: pd.DataFrame, *, targets: dict[str, int], have: Iterable[str], tried: Iterable[str]
) -> pd.DataFrame:
    """The next candidates to download so each side can reach its target.

    Args:
        ranked: Output of `rank_candidates`.
        targets: Side -> wanted number of verified images.
        have: Image ids already verified.
        tried: Image ids already attempted (verified or failed); they are not offered again.
    """
    have_set, tried_set = set(have), set(tried)
    picks = []
    for side in SIDES:
        rows = ranked[ranked["label"] == side]
        missing = targets.get(side, 0) - int(rows["image_id"].isin(have_set).sum())
        if missing > 0:
            fresh = rows[~rows["image_id"].isin(tried_set)]
            picks.append(fresh.head(missing))
    return pd.concat(picks, ignore_index=True) if picks else ranked.head(0)


def final_selection(
    ranked: pd.DataFrame, verified: Iterable[str], *, balance: bool
) -> pd.DataFrame:
    """The verified candidates that make the dataset, trimmed in rank order to balance sides."""
    kept = ranked[ranked["image_id"].isin(set(verified))]
    if balance:
        per_side = min(int((kept["label"] == side).sum()) for side in SIDES)
        kept = kept.groupby("label", group_keys=False).head(per_side)
    return kept.sort_values(["label", "rank"]).reset_index(drop=True)
