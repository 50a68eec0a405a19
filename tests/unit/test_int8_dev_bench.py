"""The int8 development bench: its development images never calibrate, its AUC is the AUC."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from bench.int8_dev import (
    CALIBRATION_ONLY,
    CANDIDATES,
    DRAWING_POOLS,
    PHOTO_POOLS,
    auc,
    bootstrap,
    calibration_paths,
    halves,
)
from harmscan.pixelscore import sample_paths

POOLS = (*DRAWING_POOLS, *PHOTO_POOLS, *CALIBRATION_ONLY)


@pytest.mark.parametrize("pool", POOLS)
def test_a_pool_splits_into_two_disjoint_halves_within_each_label(pool: str) -> None:
    cal, dev = halves(pool)
    assert not {i.path for i in cal} & {i.path for i in dev}
    for label in (0, 1):
        n_cal = sum(i.harmful == label for i in cal)
        n_dev = sum(i.harmful == label for i in dev)
        assert n_cal - n_dev in (0, 1)
    assert halves(pool) == (cal, dev)


@pytest.mark.parametrize("how", sorted({c.calibration for c in CANDIDATES.values()}))
def test_no_development_image_calibrates(how: str) -> None:
    train = [Path(f"/train/{i}.jpg") for i in range(300)]
    cal = {pool: halves(pool)[0] for pool in POOLS}
    dev = {i.path for pool in (*DRAWING_POOLS, *PHOTO_POOLS) for i in halves(pool)[1]}
    chosen = calibration_paths(how, train, cal)
    assert not set(chosen) & dev
    assert len(set(chosen)) == len(chosen)
    if how == "train":  # today's sample, as registration draws it
        assert chosen == sample_paths(train, 64, seed=0)


def test_auc_is_the_roc_auc_and_ties_count_half() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    s = np.round(rng.normal(size=200) + y, 1)
    assert auc(y, s) == pytest.approx(roc_auc_score(y, s))


def test_identical_scores_lose_nothing_and_a_worse_score_loses() -> None:
    rng = np.random.default_rng(2)
    y = np.repeat([1, 0], [30, 90])
    f = rng.normal(size=120) + 2 * y
    assert bootstrap(y, f, f, rounds=200) == (0.0, 0.0, 0.0)
    _, hi, below = bootstrap(y, f, f - 3 * y, rounds=200)
    assert hi < 0
    assert below == 1.0
