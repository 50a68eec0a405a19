"""``blankpool/``: generated blank images, rebuilt byte for byte, none shared with the held-out
blank check or the gate set (docs/blank-images.md)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np

from harmscan.blanks import blank_images
from harmscan.gateset import GATESET_DIR, REPO_ROOT, load_photo_set
from tests.blankcheck import blank_check

POOL = REPO_ROOT / "blankpool"


def test_the_committed_pool_is_what_the_script_writes(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "blank_pool.py"), "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "manifest.csv").read_bytes() == (POOL / "manifest.csv").read_bytes()
    assert (tmp_path / "VERSION").read_text() == (POOL / "VERSION").read_text()


def test_the_pool_is_safe_blank_and_shares_no_image_with_the_check_or_the_gate_set() -> None:
    pool = load_photo_set(POOL)
    assert set(pool.manifest["label"]) == {"safe"}
    assert len(pool.manifest) >= 40
    check = {hashlib.sha256(data).hexdigest() for data in blank_check().values()}
    assert not check & set(pool.manifest["sha256"])
    gate = load_photo_set(GATESET_DIR, verify=False)
    assert not set(gate.manifest["sha256"]) & set(pool.manifest["sha256"])


def test_blank_images_have_nothing_in_them() -> None:
    for blank in blank_images(seed=3, count=30, side=64):
        pixels = np.asarray(blank.image, dtype=np.float64)
        # no edge or shape: neighbouring pixels differ by noise only, the whole by a gentle ramp
        assert np.abs(np.diff(pixels, axis=0)).mean() < 12, blank.name
        assert np.ptp(pixels.reshape(-1, 3).mean(axis=1)) < 90, blank.name
