"""The committed sets (gate set, photo pool, emoji pool) load, verify, and refuse tampering."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from harmscan.gateset import (
    EMOJIPOOL_DIR,
    GATESET_DIR,
    GLYPHPOOL_DIR,
    ICONCHECK_DIR,
    ICONPOOL_DIR,
    LIFEPOOL_DIR,
    MANIFEST_COLUMNS,
    OBJECTPOOL_DIR,
    PHOTOPOOL_DIR,
    REPO_ROOT,
    PhotoSetError,
    load_photo_set,
)

SETS = {
    "gateset": (GATESET_DIR, {"photo", "emoji"}),
    "photopool": (PHOTOPOOL_DIR, {"photo"}),
    "emojipool": (EMOJIPOOL_DIR, {"emoji"}),
    "objectpool": (OBJECTPOOL_DIR, {"photo"}),
    "lifepool": (LIFEPOOL_DIR, {"photo"}),
    "drawpool": (REPO_ROOT / "drawpool", {"emoji"}),
    "iconpool": (ICONPOOL_DIR, {"emoji"}),
    "glyphpool": (GLYPHPOOL_DIR, {"emoji"}),
    "colourpool": (REPO_ROOT / "colourpool", {"emoji"}),
    "blankpool": (REPO_ROOT / "blankpool", {"illustration"}),
    "iconcheck": (ICONCHECK_DIR, {"emoji"}),
}
MIRROR_SOURCES = ("openclipart", "twemoji", "emoji-datasource-twitter", "openmoji")


def _packages(frame: pd.DataFrame) -> set[str]:
    return {s.rsplit("@", 1)[0] for s in frame["source"]}  # "@scope/name@version" too


@pytest.mark.parametrize("name", list(SETS))
def test_committed_set_verifies(name: str) -> None:
    root, domains = SETS[name]
    photos = load_photo_set(root)
    assert tuple(photos.manifest.columns) == MANIFEST_COLUMNS
    assert set(photos.manifest["domain"]) == domains
    assert photos.version == (root / "VERSION").read_text().strip()
    for path, domain in zip(photos.paths, photos.manifest["domain"], strict=True):
        with Image.open(path) as image:
            assert image.format == "JPEG"
            assert image.mode == "RGB"  # transparency flattened
            assert max(image.size) <= (512 if domain == "photo" else 128)


@pytest.mark.parametrize("name", list(SETS))
def test_attribution_names_the_version_and_every_package_with_its_licence(name: str) -> None:
    root, _ = SETS[name]
    photos = load_photo_set(root, verify=False)
    text = (root / "ATTRIBUTION.md").read_text()
    assert f"Version `{photos.version}`" in text
    rows = {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines() if "@" in line}
    pairs = zip(photos.manifest["source"], photos.manifest["license"], strict=True)
    for source, licence in set(pairs):
        assert source in rows, f"{source} is not in {root.name}/ATTRIBUTION.md"
        count = int((photos.manifest["source"] == source).sum())
        assert f"| {count} | {licence} |" in rows[source] or f": {licence}" in text


def test_gateset_has_both_labels_in_each_domain_and_no_mirror_source() -> None:
    gate = load_photo_set(GATESET_DIR)
    frame = gate.manifest
    counts = frame.groupby(["domain", "label"]).size().to_dict()
    assert counts[("photo", "harmful")] >= 7
    assert counts[("photo", "safe")] >= 80
    assert counts[("emoji", "harmful")] >= 30
    assert counts[("emoji", "safe")] >= 200
    assert sum(gate.targets) == gate.counts()["harmful"]
    # the offline mirror's vendors (its emoji come from Twemoji and OpenMoji)
    for banned in MIRROR_SOURCES:
        assert not any(banned in s for s in frame["source"])


@pytest.mark.parametrize("pool", [PHOTOPOOL_DIR, EMOJIPOOL_DIR], ids=["photopool", "emojipool"])
def test_pool_shares_no_package_or_image_with_the_gate_set(pool: Path) -> None:
    gate, other = load_photo_set(GATESET_DIR), load_photo_set(pool)
    assert not _packages(gate.manifest) & _packages(other.manifest)
    assert not set(gate.manifest["sha256"]) & set(other.manifest["sha256"])


@pytest.mark.parametrize("name", ["drawpool", "iconpool", "glyphpool", "colourpool", "iconcheck"])
def test_drawing_sets_share_no_package_or_image_with_the_gate_set_nor_use_the_mirror(
    name: str,
) -> None:
    gate, other = load_photo_set(GATESET_DIR), load_photo_set(SETS[name][0])
    assert not _packages(gate.manifest) & _packages(other.manifest)
    assert not set(gate.manifest["sha256"]) & set(other.manifest["sha256"])
    for banned in MIRROR_SOURCES:
        assert not any(banned in s for s in other.manifest["source"])


def test_icon_check_set_is_held_out_from_every_training_pool() -> None:
    """No package (icon family) and no image of the check set is in a pool that may train."""
    check = load_photo_set(ICONCHECK_DIR)
    pools = (
        "drawpool", "iconpool", "glyphpool", "colourpool", "emojipool", "objectpool", "blankpool"
    )  # fmt: skip
    for name in (*pools, "photopool"):
        pool = load_photo_set(SETS[name][0], verify=False)
        assert not _packages(check.manifest) & _packages(pool.manifest), name
        assert not set(check.manifest["sha256"]) & set(pool.manifest["sha256"]), name
    counts = check.counts()
    assert counts["harmful"] >= 15
    assert counts["safe"] >= 80
    assert len(_packages(check.manifest)) >= 3


def test_icon_pool_adds_vendors_the_drawing_pool_lacks() -> None:
    pool, draw = load_photo_set(ICONPOOL_DIR), load_photo_set(SETS["drawpool"][0], verify=False)
    assert not _packages(pool.manifest) & _packages(draw.manifest)
    assert pool.counts()["harmful"] >= 20


def test_glyph_pool_adds_vendors_no_other_pool_has() -> None:
    """Three icon families of their own (a new vendor each), with weapons, bombs and a tank."""
    glyphs = load_photo_set(GLYPHPOOL_DIR)
    for name in ("drawpool", "iconpool", "emojipool"):
        pool = load_photo_set(SETS[name][0], verify=False)
        assert not _packages(glyphs.manifest) & _packages(pool.manifest), name
        assert not set(glyphs.manifest["sha256"]) & set(pool.manifest["sha256"]), name
    assert _packages(glyphs.manifest) == {
        "@iconify-json/hugeicons",
        "@iconify-json/mingcute",
        "@iconify-json/solar",
    }
    frame = glyphs.manifest
    for package in _packages(frame):  # every vendor draws both labels
        labels = set(frame.loc[frame["source"].str.startswith(package + "@"), "label"])
        assert labels == {"harmful", "safe"}, package
    assert glyphs.counts()["harmful"] >= 20
    assert glyphs.counts()["safe"] >= 100


def test_object_pool_shares_no_image_or_package_path_with_the_gate_set() -> None:
    """Other images of some of the gate set's packages: none shared by sha256 or by path."""
    gate, pool = load_photo_set(GATESET_DIR), load_photo_set(OBJECTPOOL_DIR)
    assert not set(gate.manifest["sha256"]) & set(pool.manifest["sha256"])
    gate_paths = set(zip(gate.manifest["source"], gate.manifest["path"], strict=True))
    assert not gate_paths & set(zip(pool.manifest["source"], pool.manifest["path"], strict=True))
    assert _packages(pool.manifest) - _packages(gate.manifest) == {"palapeli-data"}


def test_object_pool_is_varied_safe_photos() -> None:
    """Safe photos only, 40-100 of them, from several packages, each with a licence."""
    frame = load_photo_set(OBJECTPOOL_DIR).manifest
    assert set(frame["label"]) == {"safe"}
    assert 40 <= len(frame) <= 100
    assert len(_packages(frame)) >= 3
    assert frame["license"].str.len().min() > 0
    per_image = frame[frame["source"].str.startswith("palapeli-data@")]["license"]
    assert set(per_image.str.split(",").str[0]) == {"public domain", "GFDL"}


GATE_SET_PACKAGES = {
    "basegun-ml",
    "darknet",
    "foolbox",
    "imgaug",
    "opencv-doc",
    "scikit-image",
    "scikit-learn",
    "tuxpaint-stamps-default",
    "ultralytics",
    "emoji-datasource-google",
    "fluentui-emoji",
}


def test_life_pool_is_safe_everyday_photos_of_a_package_no_judging_set_uses() -> None:
    """Safe photos of gcompris-qt-data, each with its own licence; nothing shared with the gate
    set or the held-out check set (package or sha256) or with the other photo pools (sha256)."""
    frame = load_photo_set(LIFEPOOL_DIR).manifest
    assert set(frame["label"]) == {"safe"}
    assert set(frame["domain"]) == {"photo"}
    assert 50 <= len(frame) <= 100
    assert _packages(frame) == {"gcompris-qt-data"}
    assert frame["license"].str.len().min() > 0
    assert frame["path"].str.contains(".rcc#gcompris/src/activities/", regex=False).all()
    assert frame["sha256"].is_unique
    for name in ("gateset", "iconcheck", "photopool", "objectpool"):
        other = load_photo_set(SETS[name][0], verify=False).manifest
        assert not set(frame["sha256"]) & set(other["sha256"]), name
        assert not _packages(frame) & _packages(other), name
    gate = load_photo_set(GATESET_DIR, verify=False).manifest
    assert _packages(gate) == GATE_SET_PACKAGES
    assert not frame["subject"].str.contains("knife|sickle|gun|sword|axe", regex=True).any()


def test_emoji_pool_has_both_labels() -> None:
    counts = load_photo_set(EMOJIPOOL_DIR).counts()
    assert counts["harmful"] >= 8
    assert counts["safe"] >= 50


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
