"""Deterministic stratified split, canonical manifest and its hash, summary."""

from __future__ import annotations

import pandas as pd
import pytest

from harmscan.manifest import (
    MANIFEST_COLUMNS,
    assign_splits,
    labels_missing_by_split,
    manifest_hash,
    read_manifest,
    relative_path,
    split_problem,
    summarize,
    summary_rows,
    write_manifest,
)

FRACTIONS = {"train": 0.7, "val": 0.15, "test": 0.15}


def frame(n: int = 100) -> pd.DataFrame:
    rows = []
    for i in range(n):
        label = "harmful" if i % 2 else "safe"
        source = (
            ("Gun" if i % 3 else "Blood") if label == "harmful" else ("Dog" if i % 5 else "Cat")
        )
        rows.append((f"{i:016x}", label, source))
    return pd.DataFrame(rows, columns=["image_id", "label", "source_labels"])


def manifest(n: int = 20) -> pd.DataFrame:
    base = frame(n)
    base["split"] = assign_splits(base, FRACTIONS, seed=1)
    base["path"] = [
        relative_path(s, lab, i)
        for s, lab, i in zip(base["split"], base["label"], base["image_id"], strict=False)
    ]
    base["sha256"] = ["ab" * 32] * n
    base["bytes"] = range(1000, 1000 + n)
    base["width"], base["height"] = 640, 480
    base["license"] = "https://creativecommons.org/licenses/by/2.0/"
    base["author"] = "Jane, Doe"
    base["original_url"] = "https://example.org/x.jpg"
    return base


def test_split_is_deterministic_and_order_independent():
    data = frame()
    a = assign_splits(data, FRACTIONS, seed=7)
    shuffled = data.sample(frac=1, random_state=1)
    b = assign_splits(shuffled, FRACTIONS, seed=7).reindex(data.index)
    assert a.equals(b)
    assert not a.equals(assign_splits(data, FRACTIONS, seed=8))


@pytest.mark.parametrize("n", [20, 100, 1000])
def test_split_is_stratified_by_label_and_source(n):
    data = frame(n)
    data["split"] = assign_splits(data, FRACTIONS, seed=3)
    for _, group in data.groupby("label"):
        shares = group["split"].value_counts(normalize=True)
        for split, fraction in FRACTIONS.items():
            assert abs(shares.get(split, 0) - fraction) <= 1.5 / len(group) + 0.01
    # every source label of a decent size reaches every split
    for _, group in data.groupby("source_labels"):
        if len(group) >= 20:
            assert set(group["split"]) == set(FRACTIONS)


def test_unknown_split_name_fails():
    with pytest.raises(ValueError, match=r"unknown split names.*valid: train, val, test"):
        assign_splits(frame(), {"train": 0.5, "dev": 0.5}, seed=1)


def test_hash_ignores_row_and_column_order_but_not_content():
    data = manifest()
    version = manifest_hash(data)
    assert len(version) == 12
    reordered = data.sample(frac=1, random_state=2)[list(reversed(data.columns))]
    assert manifest_hash(reordered) == version
    changed = data.copy()
    changed.loc[0, "sha256"] = "cd" * 32
    assert manifest_hash(changed) != version


def test_written_manifest_round_trips_with_the_same_hash(tmp_path):
    data = manifest()
    path, version = write_manifest(data, tmp_path)
    assert version == manifest_hash(data)
    back = read_manifest(path)
    assert list(back.columns) == list(MANIFEST_COLUMNS)
    assert manifest_hash(back) == version
    assert back.loc[0, "author"] == "Jane, Doe"


def test_summary_counts():
    data = manifest(40)
    summary = summarize(data)
    assert summary["images"] == 40
    assert summary["labels"] == {"harmful": 20, "safe": 20}
    assert sum(summary["splits"]["train"].values()) == int((data["split"] == "train").sum())
    assert summary["source_labels"]["safe"]["Cat"] == int((data["source_labels"] == "Cat").sum())


def test_summary_rows_are_flat_and_add_up():
    data = manifest(40)
    rows = summary_rows(summarize(data), {"missing_key": 2})
    splits = [r for r in rows if r["group"] == "split"]
    assert sum(r["total"] for r in splits) == 40
    assert {
        "group": "excluded",
        "name": "missing_key",
        "harmful": None,
        "safe": None,
        "total": 2,
    } in rows
    cat = next(r for r in rows if r["name"] == "Cat")
    assert cat["harmful"] == 0
    assert cat["safe"] == cat["total"] == int((data["source_labels"] == "Cat").sum())


def test_a_tiny_selection_leaves_splits_short_and_says_how_to_fix_it():
    tiny = manifest(4)  # two images a label: both land in train
    problem = split_problem(tiny)
    assert problem is not None
    assert "val has no safe and no harmful; test has no safe and no harmful" in problem
    assert "etl.max_per_side" in problem
    assert "'train': {'safe': 2, 'harmful': 2}" in problem
    assert split_problem(manifest(40)) is None


def test_a_split_with_one_label_is_named_with_the_label_it_lacks():
    full = manifest(40)
    drop = (full["split"] == "val") & (full["label"] == "safe")
    assert labels_missing_by_split(full[~drop]) == {"val": ["safe"]}
    assert labels_missing_by_split(full[~drop], ("train", "test")) == {}


def test_a_one_sided_selection_is_refused_naming_the_fix(tmp_path):
    from prefect.logging import disable_run_logger

    from conf.settings import EtlSettings
    from tasks.dataset import build_dataset

    selection = tmp_path / "selection.parquet"
    frame(6).assign(label="harmful").to_parquet(selection)
    with disable_run_logger(), pytest.raises(ValueError, match="both harmful and safe") as caught:
        build_dataset.fn(selection, tmp_path, tmp_path / "datasets", EtlSettings())
    assert "{'harmful': 6}" in str(caught.value)
    assert "raise etl.max_per_side" in str(caught.value)
    assert not (tmp_path / "datasets").exists()
