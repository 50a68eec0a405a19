"""Fixed, versioned sets of images: the gate set and the calibration pools.

A photo set is a folder with ``images/{harmful,safe}/*.jpg``, a ``manifest.csv`` (one row per
image: file, label, domain, subject, source package@version, registry, path inside the package,
licence, sha256) and a ``VERSION`` file. The version is the sha256 of the manifest bytes (first
12 hex digits), so it names the exact images: `load_photo_set` refuses a set whose manifest does
not hash to its ``VERSION`` or whose images do not hash to their manifest rows.

``gateset/`` (in the repository) is what the promotion gate scores models on: real photos
(domain ``photo``) and emoji in styles the offline mirror does not contain (domain ``emoji``).
``photopool/`` (photos) and ``emojipool/`` (Twemoji, both labels) are built from other packages
and may be used for training and validation; ``objectpool/`` (safe photos of objects, people,
animals, vehicles and food, many cut out on white: what users upload) is built from other images
than the gate set's (some of the same packages, no shared image) and calibrates thresholds;
``drawpool/`` (emoji and icons of vendors in neither the gate set nor the mirror) may train the
probe (`harmscan.trainsets`), and so may ``iconpool/`` (icons of other families: Material Design
Icons, Phosphor, Streamline Emojis), ``glyphpool/`` (three more: Hugeicons, MingCute, Solar) and
``colourpool/`` (colour drawings: Streamline's colour styles, EmojiOne's first emoji) and
``vendorpool/`` (icons of five vendors no other set uses: WebHostingHub, Pico-icon, SmartIcons,
Arcticons, Vaadin);
``iconcheck/`` (icons of families in no other set: Tabler, Lucide, Remix Icon, IconPark) is held
out like the gate set, scored only. All are made by ``scripts/build_gate_set.py``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harmscan.digests import unmatched

MANIFEST_COLUMNS = (
    "file",
    "label",
    "domain",
    "subject",
    "source",
    "registry",
    "path",
    "license",
    "sha256",
)
LABELS = ("harmful", "safe")
MANIFEST_FILE = "manifest.csv"
VERSION_FILE = "VERSION"
VERSION_CHARS = 12
REPO_ROOT = Path(__file__).resolve().parents[1]
GATESET_DIR = REPO_ROOT / "gateset"
PHOTOPOOL_DIR = REPO_ROOT / "photopool"
EMOJIPOOL_DIR = REPO_ROOT / "emojipool"
OBJECTPOOL_DIR = REPO_ROOT / "objectpool"
LIFEPOOL_DIR = REPO_ROOT / "lifepool"
ICONPOOL_DIR = REPO_ROOT / "iconpool"
GLYPHPOOL_DIR = REPO_ROOT / "glyphpool"
ICONCHECK_DIR = REPO_ROOT / "iconcheck"


class PhotoSetError(ValueError):
    """A photo set that is missing, malformed or not the version it claims to be."""


@dataclass(frozen=True)
class PhotoSet:
    """A verified photo set.

    Attributes:
        root: The set's folder.
        version: sha256 of its manifest (first 12 hex digits).
        manifest: One row per image; ``file`` is relative to ``root``.
    """

    root: Path
    version: str
    manifest: pd.DataFrame

    @property
    def paths(self) -> list[Path]:
        """Absolute image paths, in manifest order."""
        return [self.root / f for f in self.manifest["file"]]

    @property
    def targets(self) -> list[int]:
        """1 for harmful, 0 for safe, in manifest order."""
        return [int(label == "harmful") for label in self.manifest["label"]]

    def counts(self) -> dict[str, int]:
        """Images per label."""
        return {label: int((self.manifest["label"] == label).sum()) for label in LABELS}


def manifest_version(path: Path) -> str:
    """The version of a manifest file: first 12 hex digits of the sha256 of its bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:VERSION_CHARS]


def find_photo_set(name: str | Path) -> Path | None:
    """The folder of a photo set named relative to the cwd, then the repository (or absolute).

    Returns:
        The resolved folder holding a ``manifest.csv``, or None when neither place has one.
    """
    path = Path(name)
    for candidate in (path,) if path.is_absolute() else (path, REPO_ROOT / path):
        if (candidate / MANIFEST_FILE).is_file():
            return candidate.resolve()
    return None


class PhotoSetNotFound(FileNotFoundError):
    """A setting names a photo set that is not there (a usage error: the setting is wrong)."""


def resolve_photo_set(setting: str | None, key: str | None = None) -> Path | None:
    """A photo-set setting as a folder (relative paths from the cwd, then the repository).

    Args:
        setting: The setting's value.
        key: The setting's name (``mlflow.gate_set``), for the error.

    Raises:
        PhotoSetNotFound: The setting names a folder without a ``manifest.csv`` in either place.
    """
    if not setting:
        return None
    found = find_photo_set(setting)
    if found is None:
        named = f"{key} " if key else ""
        path = Path(setting)
        places = [path] if path.is_absolute() else [path, REPO_ROOT / path]
        where = " or ".join(str(p) for p in places)
        fix = (
            f"freeze a folder of harmful/ and safe/ images: harmscan imageset {setting} --freeze"
            if any(p.is_dir() for p in places)
            else "no such folder"
        )
        raise PhotoSetNotFound(f"{named}photo set {setting!r}: no manifest.csv in {where} ({fix})")
    return found


def load_photo_set(root: Path = GATESET_DIR, *, verify: bool = True) -> PhotoSet:
    """Load a photo set and check that it is exactly the version its ``VERSION`` names.

    Args:
        root: The set's folder (default: the repository's ``gateset/``).
        verify: Also hash every image against its manifest row (a few ms per image).

    Raises:
        PhotoSetError: A file is missing, the manifest is malformed, the manifest does not hash
            to ``VERSION``, or an image does not hash to its row.
    """
    root = Path(root)
    manifest_path, version_path = root / MANIFEST_FILE, root / VERSION_FILE
    for path in (manifest_path, version_path):
        if not path.is_file():
            raise PhotoSetError(
                f"photo set {root}: {path.name} is missing (rebuild with scripts/build_gate_set.py)"
            )
    expected = version_path.read_text().strip()
    actual = manifest_version(manifest_path)
    if actual != expected:
        raise PhotoSetError(
            f"photo set {root}: manifest.csv hashes to {actual} but VERSION says {expected}; "
            "the manifest was edited without rebuilding the set"
        )
    manifest = pd.read_csv(manifest_path, dtype=str, keep_default_na=False)
    _check_columns(root, manifest)
    if verify:
        _check_images(root, manifest)
    return PhotoSet(root=root, version=actual, manifest=manifest)


def _check_columns(root: Path, manifest: pd.DataFrame) -> None:
    if tuple(manifest.columns) != MANIFEST_COLUMNS:
        raise PhotoSetError(
            f"photo set {root}: manifest columns {list(manifest.columns)}; "
            f"expected {list(MANIFEST_COLUMNS)}"
        )
    bad = sorted(set(manifest["label"]) - set(LABELS))
    if bad:
        raise PhotoSetError(f"photo set {root}: unknown labels {bad}; valid: {', '.join(LABELS)}")
    if manifest["file"].duplicated().any():
        dup = sorted(manifest.loc[manifest["file"].duplicated(), "file"])
        raise PhotoSetError(f"photo set {root}: files listed twice: {dup}")


def _check_images(root: Path, manifest: pd.DataFrame) -> None:
    missing, changed = unmatched(root, manifest["file"], manifest["sha256"])
    if missing or changed:
        raise PhotoSetError(
            f"photo set {root} is not its version: {len(missing)} images missing {missing[:5]}, "
            f"{len(changed)} images differ from their sha256 {changed[:5]}"
        )
