"""The committed photo sets: the gate set and the photo pool load, verify, and refuse tampering."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image

from harmscan.gateset import (
    GATESET_DIR,
    MANIFEST_COLUMNS,
    PHOTOPOOL_DIR,
    PhotoSetError,
    load_photo_set,
)


@pytest.mark.parametrize("root", [GATESET_DIR, PHOTOPOOL_DIR], ids=["gateset", "photopool"])
def test_committed_set_verifies(root: Path) -> None:
    photos = load_photo_set(root)
    assert tuple(photos.manifest.columns) == MANIFEST_COLUMNS
    assert set(photos.manifest["domain"]) == {"photo"}
    assert photos.version == (root / "VERSION").read_text().strip()
    for path in photos.paths:
        with Image.open(path) as image:
            assert image.format == "JPEG"
            assert max(image.size) <= 512


def test_gateset_has_both_labels_and_no_mirror_source() -> None:
    gate = load_photo_set(GATESET_DIR)
    counts = gate.counts()
    assert counts["harmful"] >= 7
    assert counts["safe"] >= 80
    assert sum(gate.targets) == counts["harmful"]
    sources = " ".join(gate.manifest["source"])
    for banned in ("openclipart", "twemoji", "emoji-datasource", "openmoji"):
        assert banned not in sources


def test_pool_shares_no_package_or_image_with_the_gate_set() -> None:
    gate, pool = load_photo_set(GATESET_DIR), load_photo_set(PHOTOPOOL_DIR)
    package = lambda frame: {s.split("@")[0] for s in frame["source"]}  # noqa: E731
    assert not package(gate.manifest) & package(pool.manifest)
    assert not set(gate.manifest["sha256"]) & set(pool.manifest["sha256"])


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    dest = tmp_path / "gateset"
    shutil.copytree(GATESET_DIR, dest)
    return dest


def test_changed_image_is_refused(copy: Path) -> None:
    first = sorted((copy / "images" / "harmful").iterdir())[0]
    first.write_bytes(first.read_bytes() + b"\0")
    with pytest.raises(PhotoSetError, match=r"1 images differ from their sha256"):
        load_photo_set(copy)
    load_photo_set(copy, verify=False)  # the manifest itself is still intact


def test_missing_image_is_refused(copy: Path) -> None:
    sorted((copy / "images" / "safe").iterdir())[0].unlink()
    with pytest.raises(PhotoSetError, match=r"1 images missing"):
        load_photo_set(copy)


def test_edited_manifest_is_refused(copy: Path) -> None:
    manifest = copy / "manifest.csv"
    manifest.write_text(manifest.read_text().replace(",harmful,", ",safe,", 1))
    with pytest.raises(PhotoSetError, match=r"VERSION says"):
        load_photo_set(copy)


def test_missing_folder_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(PhotoSetError, match=r"manifest.csv is missing"):
        load_photo_set(tmp_path)
