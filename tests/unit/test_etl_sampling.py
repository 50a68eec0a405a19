"""Seeded balanced sampling: caps, balance, determinism, refills."""

from __future__ import annotations

import pandas as pd
import pytest

from harmscan.sampling import (
    final_selection,
    next_candidates,
    primary_labels,
    rank_candidates,
    side_targets,
)


def candidates(n_harm: int = 30, n_safe: int = 80) -> pd.DataFrame:
    rows = [(f"h{i:03d}", "harmful", "Gun" if i % 3 else "Blood") for i in range(n_harm)]
    rows += [(f"s{i:03d}", "safe", "Person" if i % 4 else "Dog;Person") for i in range(n_safe)]
    return pd.DataFrame(rows, columns=["image_id", "label", "source_labels"])


def test_primary_label_is_the_rarest():
    frame = candidates()
    primary = primary_labels(frame).set_axis(frame["image_id"])
    assert primary["s000"] == "Dog"  # "Dog;Person": Dog is rarer
    assert primary["s001"] == "Person"


@pytest.mark.parametrize("cap", [1, 5, 12])
def test_per_label_cap(cap):
    frame = candidates()
    available = frame.assign(p=primary_labels(frame)).groupby(["label", "p"]).size()
    ranked = rank_candidates(frame, max_per_label=cap, seed=1)
    kept = ranked.groupby(["label", "primary_label"]).size()
    for key, n in available.items():
        assert kept[key] == min(cap, n)


def test_labels_take_turns():
    ranked = rank_candidates(candidates(), max_per_label=100, seed=1)
    harmful = ranked[ranked["label"] == "harmful"]
    assert set(harmful.head(2)["primary_label"]) == {"Gun", "Blood"}


def test_ranking_is_seeded_and_independent_of_row_order():
    frame = candidates()
    a = rank_candidates(frame, max_per_label=7, seed=42)
    b = rank_candidates(frame.sample(frac=1, random_state=3), max_per_label=7, seed=42)
    c = rank_candidates(frame, max_per_label=7, seed=43)
    assert list(a["image_id"]) == list(b["image_id"])
    assert list(a["image_id"]) != list(c["image_id"])


@pytest.mark.parametrize(
    ("available", "cap", "balance", "expected"),
    [
        ({"harmful": 30, "safe": 80}, 50, True, {"harmful": 30, "safe": 30}),
        ({"harmful": 30, "safe": 80}, 50, False, {"harmful": 30, "safe": 50}),
        ({"harmful": 300, "safe": 80}, 50, True, {"harmful": 50, "safe": 50}),
        ({"harmful": 0, "safe": 80}, 50, True, {"harmful": 0, "safe": 0}),
    ],
)
def test_side_targets(available, cap, balance, expected):
    assert side_targets(available, max_per_side=cap, balance=balance) == expected


def test_refill_takes_next_in_line_and_balance_trims():
    ranked = rank_candidates(candidates(), max_per_label=100, seed=5)
    targets = {"harmful": 10, "safe": 10}
    first = next_candidates(ranked, targets=targets, have=[], tried=[])
    assert len(first) == 20
    failed = set(first[first["label"] == "harmful"]["image_id"].head(3))
    verified = set(first["image_id"]) - failed
    refill = next_candidates(ranked, targets=targets, have=verified, tried=first["image_id"])
    assert len(refill) == 3
    assert set(refill["label"]) == {"harmful"}
    harmful_order = list(ranked[ranked["label"] == "harmful"]["image_id"])
    assert list(refill["image_id"]) == harmful_order[10:13]
    # Without the refill the harmful side has 7: balance trims safe to 7 too, in rank order.
    chosen = final_selection(ranked, verified, balance=True)
    assert chosen["label"].value_counts().to_dict() == {"harmful": 7, "safe": 7}
    safe_order = [i for i in ranked[ranked["label"] == "safe"]["image_id"] if i in verified]
    assert list(chosen[chosen["label"] == "safe"]["image_id"]) == safe_order[:7]
    assert len(final_selection(ranked, verified, balance=False)) == 17
