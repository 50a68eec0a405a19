"""Your own images to judge a model on: a versioned photo set, or a folder sorted by label.

`open_image_set` takes either a photo set (a ``manifest.csv`` and ``VERSION``, verified by
`harmscan.gateset.load_photo_set`: the gate set, a pool, or one built the same way) or a plain
folder holding ``harmful/`` and ``safe/`` subfolders of images, found recursively by suffix. In a
plain folder an image's domain is the first subfolder under its label when that names a domain
(``harmful/emoji/bomb.png``), else the ``domain`` given (``photo`` by default). Every image of a
plain folder is decoded once as training and serving decode it; one that does not decode is left
out and named with the reason, so one bad file never stops the rest. A plain folder's version is
the sha256 of the manifest made of it (every file's label, domain and sha256), so a result can
name exactly the images it was measured on. `freeze` writes that manifest and ``VERSION`` into the
folder, which makes it a photo set: verified on every load, and usable as ``mlflow.gate_set``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from harmscan.gateset import (
    LABELS,
    MANIFEST_COLUMNS,
    MANIFEST_FILE,
    VERSION_CHARS,
    VERSION_FILE,
    PhotoSet,
    load_photo_set,
)
from harmscan.imagefile import read_image_file
from harmscan.imageio import decode_image
from harmscan.imagepolicy import IMAGE_SUFFIXES, ImageRejected
from harmscan.metrics import DOMAINS


class ImageSetError(ValueError):
    """A folder that is neither a photo set nor sorted into ``harmful/`` and ``safe/``."""


@dataclass(frozen=True)
class ImageSet:
    """Images with labels and domains to score, and what was left out.

    Attributes:
        photos: The images (a `PhotoSet`: root, version, manifest).
        kind: ``photo set`` (verified against its ``VERSION``) or ``folder``.
        skipped: File (relative to the root) -> why it was left out (it did not decode).
    """

    photos: PhotoSet
    kind: str
    skipped: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """One line: where, which version, how many images of each label and domain."""
        manifest = self.photos.manifest
        labels = ", ".join(f"{int((manifest['label'] == k).sum())} {k}" for k in LABELS)
        domains = ", ".join(f"{d} {n}" for d, n in manifest["domain"].value_counts().items())
        left = f"; {len(self.skipped)} left out" if self.skipped else ""
        return (
            f"{self.kind} {self.photos.root} (version {self.photos.version}): {labels} "
            f"({domains}){left}"
        )


def open_image_set(root: Path, domain: str = "photo") -> ImageSet:
    """The photo set at ``root``, or the plain folder's ``harmful/`` and ``safe/`` images.

    Raises:
        ImageSetError: Neither layout, no image, or a ``domain`` that is not one of `DOMAINS`.
        harmscan.gateset.PhotoSetError: A photo set that is not the version it names.
    """
    root = Path(root)
    if (root / MANIFEST_FILE).is_file():
        return ImageSet(load_photo_set(root), "photo set")
    return folder_set(root, domain)


def folder_set(root: Path, domain: str = "photo") -> ImageSet:
    """A plain folder sorted by label (see the module docstring).

    Raises:
        ImageSetError: No ``harmful/`` or ``safe/`` subfolder, no image that decodes, or an
            unknown ``domain``.
    """
    if domain not in DOMAINS:
        raise ImageSetError(f"unknown domain {domain!r}; valid: {', '.join(DOMAINS)}")
    if not root.is_dir():
        raise ImageSetError(f"no such folder: {root}")
    if not any((root / label).is_dir() for label in LABELS):
        raise ImageSetError(
            f"{root} holds neither a {MANIFEST_FILE} (a photo set) nor harmful/ and safe/ "
            "subfolders of images; sort your images into FOLDER/harmful and FOLDER/safe"
        )
    rows, skipped = [], {}
    for label in LABELS:
        for path in sorted((root / label).rglob("*")):
            if not path.is_file() or path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            file = path.relative_to(root).as_posix()
            data, why = _readable(path)
            if data is None:
                skipped[file] = why
                continue
            parts = path.relative_to(root / label).parts
            image_domain = parts[0] if len(parts) > 1 and parts[0] in DOMAINS else domain
            digest = hashlib.sha256(data).hexdigest()
            rows.append((file, label, image_domain, "", "folder", "", file, "", digest))
    if not rows:
        raise ImageSetError(
            f"no image that decodes under {root}/harmful or {root}/safe "
            f"(suffixes {', '.join(sorted(IMAGE_SUFFIXES))}; {len(skipped)} left out)"
        )
    manifest = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
    text = manifest.to_csv(index=False).encode()
    version = hashlib.sha256(text).hexdigest()[:VERSION_CHARS]
    return ImageSet(PhotoSet(root=root, version=version, manifest=manifest), "folder", skipped)


def freeze(images: ImageSet) -> Path:
    """Write a plain folder's manifest and ``VERSION`` into it: from now on it loads as a photo
    set (`harmscan.gateset.load_photo_set` checks every image against its row); its root.

    Raises:
        ImageSetError: The set is a photo set already.
    """
    if images.kind != "folder":
        raise ImageSetError(f"{images.photos.root} is a photo set already ({MANIFEST_FILE})")
    root = images.photos.root
    (root / MANIFEST_FILE).write_bytes(images.photos.manifest.to_csv(index=False).encode())
    (root / VERSION_FILE).write_text(images.photos.version + "\n")
    return root


def _readable(path: Path) -> tuple[bytes | None, str]:
    """The file's bytes if it decodes as training and serving decode it, else why not."""
    try:
        data = read_image_file(path)
        decode_image(data)
    except ImageRejected as exc:
        return None, str(exc)
    return data, ""
