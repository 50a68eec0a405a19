"""Your own images to judge a model on: a versioned photo set, or a folder sorted by label.

`open_image_set` takes either a photo set (a ``manifest.csv`` and ``VERSION``, verified by
`harmscan.gateset.load_photo_set`: the gate set, a pool, or one built the same way) or a plain
folder holding ``harmful/`` and ``safe/`` subfolders of images, found recursively by suffix. In a
plain folder an image's domain is the first subfolder under its label when that names a domain
(``harmful/emoji/bomb.png``, any case), else the ``domain`` given (``photo`` by default).
Symlinked subfolders are followed (each real folder once); hidden files and folders (``.name``)
are not read. Every image of a plain folder is decoded once as training and serving decode it;
one that does not decode, or whose name is not valid UTF-8, is left out and named with the
reason, so one bad file never stops the rest. What could make the figures other than the user
meant is said as a note: files without an image suffix, a subfolder that looks like a domain but
is not one, the same image under both labels, images added to a frozen folder. A plain folder's
version is the sha256 of the manifest made of it (every file's label, domain and sha256), so a
result can name exactly the images it was measured on. `freeze` writes that manifest and
``VERSION`` into the folder, which makes it a photo set: verified on every load, and usable as
``mlflow.gate_set``.
"""

from __future__ import annotations

import difflib
import hashlib
import os
from collections import defaultdict
from collections.abc import Iterator
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
    PhotoSetError,
    find_photo_set,
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
        notes: What may make the figures other than meant (see the module docstring).
    """

    photos: PhotoSet
    kind: str
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

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


REFREEZE = "delete its manifest.csv and VERSION, then run `harmscan imageset {root} --freeze`"


def open_image_set(root: Path, domain: str = "photo") -> ImageSet:
    """The photo set at ``root`` (relative: from the cwd, then the repository, as
    ``mlflow.gate_set``), or the plain folder's ``harmful/`` and ``safe/`` images.

    Raises:
        ImageSetError: Neither layout, no image, a ``domain`` that is not one of `DOMAINS`, or a
            folder with a ``manifest.csv`` but no ``VERSION`` (a freeze that did not finish).
        harmscan.gateset.PhotoSetError: A photo set that is not the version it names.
    """
    _check_domain(domain)
    root = Path(root)
    found = find_photo_set(root)
    if found is None:
        return folder_set(root, domain)
    labelled = _label_folders(found)
    if labelled and not (found / VERSION_FILE).is_file():
        raise ImageSetError(
            f"{found} has a {MANIFEST_FILE} but no {VERSION_FILE}: a freeze that did not finish, "
            f"or a {MANIFEST_FILE} of something else; to read the folder again, move its "
            f"{MANIFEST_FILE} away (and freeze it with `harmscan imageset {found} --freeze`)"
        )
    try:
        photos = load_photo_set(found)
    except PhotoSetError as exc:
        if not labelled:
            raise
        advice = REFREEZE.format(root=found)
        raise PhotoSetError(f"{exc}; if you changed its images on purpose, {advice}") from None
    return ImageSet(photos, "photo set", notes=_unlisted(photos, labelled))


def folder_set(root: Path, domain: str = "photo") -> ImageSet:
    """A plain folder sorted by label (see the module docstring).

    Raises:
        ImageSetError: No ``harmful/`` or ``safe/`` subfolder, no image that decodes, or an
            unknown ``domain``.
    """
    _check_domain(domain)
    if not root.is_dir():
        what = "a file, not a folder" if root.exists() else "no such folder"
        raise ImageSetError(f"{what}: {root}")
    if not _label_folders(root):
        cased = sorted(p.name for p in root.iterdir() if p.name.lower() in LABELS)
        hint = f" (the names are lower case: rename {', '.join(cased)})" if cased else ""
        near = [
            f"{meant}/ for {p.name}/"
            for p in sorted(root.iterdir())
            if p.is_dir() and p.name.lower() not in LABELS and (meant := _label_like(p.name))
        ]
        hint += f" (did you mean {', '.join(near)}?)" if near and not cased else ""
        raise ImageSetError(
            f"{root} holds neither a {MANIFEST_FILE} (a photo set) nor harmful/ and safe/ "
            f"subfolders of images{hint}; sort your images into FOLDER/harmful and FOLDER/safe"
        )
    rows, skipped, others = [], {}, []
    folders: dict[str, str] = {}  # subfolders that name no domain -> the one they look like
    for label in LABELS:
        for path in _files(root / label):
            file = path.relative_to(root).as_posix()
            if not _utf8(file):
                shown = file.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
                skipped[shown] = "its name is not valid UTF-8: rename it"
                continue
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                others.append(file)
                continue
            data, why = _readable(path)
            if data is None:
                skipped[file] = why
                continue
            image_domain = _domain_of(path.relative_to(root / label).parts, domain, folders)
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
    notes = (
        _unread_folders(root)
        + _missing_labels(manifest)
        + _other_files(others)
        + _not_domains(folders, domain)
        + _duplicates(manifest)
    )
    photos = PhotoSet(root=root, version=version, manifest=manifest)
    return ImageSet(photos, "folder", skipped, notes)


def freeze(images: ImageSet) -> Path:
    """Write a plain folder's manifest and ``VERSION`` into it: from now on it loads as a photo
    set (`harmscan.gateset.load_photo_set` checks every image against its row); its root.

    Raises:
        ImageSetError: The set is a photo set already.
    """
    root = images.photos.root
    if images.kind != "folder":
        raise ImageSetError(
            f"{root} is a photo set already ({MANIFEST_FILE}); to freeze it again after "
            f"changing its images, {REFREEZE.format(root=root).replace(', then run', ' and run')}"
        )
    # Both files written beside their names first: a freeze that fails leaves neither.
    staged = {
        root / MANIFEST_FILE: images.photos.manifest.to_csv(index=False).encode(),
        root / VERSION_FILE: (images.photos.version + "\n").encode(),
    }
    for path, data in staged.items():
        path.with_name(f".{path.name}.part").write_bytes(data)
    for path in staged:  # the manifest first: a folder with a VERSION alone stays a folder
        path.with_name(f".{path.name}.part").replace(path)
    return root


def _readable(path: Path) -> tuple[bytes | None, str]:
    """The file's bytes if it decodes as training and serving decode it, else why not."""
    try:
        data = read_image_file(path)
        decode_image(data)
    except ImageRejected as exc:
        return None, str(exc)
    return data, ""


def _check_domain(domain: str) -> None:
    if domain not in DOMAINS:
        raise ImageSetError(f"unknown domain {domain!r}; valid: {', '.join(DOMAINS)}")


def _label_folders(root: Path) -> list[Path]:
    return [root / label for label in LABELS if (root / label).is_dir()]


def _files(top: Path) -> Iterator[Path]:
    """Every file under ``top``, sorted, following symlinked folders (each real folder once);
    hidden files and folders are not read."""
    seen: set[str] = set()
    found: list[Path] = []
    for folder, dirs, names in os.walk(top, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(folder, n) for n in names if not n.startswith(".")]
    yield from sorted(p for p in found if p.is_file())


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _domain_of(parts: tuple[str, ...], default: str, folders: dict[str, str]) -> str:
    """The domain a subfolder names (any case), else ``default``; subfolders that name none are
    counted in ``folders`` (first part -> a domain it looks like, or "")."""
    if len(parts) < 2:
        return default
    if parts[0].lower() in DOMAINS:
        return parts[0].lower()
    close = difflib.get_close_matches(parts[0].lower(), DOMAINS, n=1, cutoff=0.75)
    folders[parts[0]] = close[0] if close else ""
    return default


def _unread_folders(root: Path) -> list[str]:
    """A note per subfolder of ``root`` beside harmful/ and safe/: its images are not read."""
    notes = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(".") or entry.name in LABELS or not entry.is_dir():
            continue
        meant = _label_like(entry.name)
        hint = f" (did you mean {meant}/?)" if meant else ""
        notes.append(
            f"folder {entry.name}/ is not read{hint}: only harmful/ and safe/ hold the images"
        )
    return notes


def _label_like(name: str) -> str | None:
    """The label a folder's name looks like (``harmfull``: harmful), or None."""
    close = difflib.get_close_matches(name.lower(), LABELS, n=1, cutoff=0.6)
    return close[0] if close else None


def _missing_labels(manifest: pd.DataFrame) -> list[str]:
    """A note when one label has no image: ROC AUC and the rates need both."""
    missing = [label for label in LABELS if not (manifest["label"] == label).any()]
    return [
        f"no {label} image: ROC AUC needs harmful and safe images (only the "
        f"{'caught' if label == 'safe' else 'flagged'} share can be read)"
        for label in missing
    ]


def _not_domains(folders: dict[str, str], default: str) -> list[str]:
    """A note per subfolder whose name looks like a domain but is not one."""
    return [
        f"subfolder {name}/ is not a domain folder (did you mean {close}/?): its images count "
        f"as {default}; domain folders: {', '.join(DOMAINS)}"
        for name, close in sorted(folders.items())
        if close
    ]


def _some(files: list[str], most: int = 5) -> str:
    """The first ``most`` files, comma-separated, and ``...`` when there are more."""
    return ", ".join(files[:most]) + (", ..." if len(files) > most else "")


def _other_files(files: list[str]) -> list[str]:
    if not files:
        return []
    return [
        f"{len(files)} file(s) without an image suffix are not read: {_some(files)} "
        f"(image suffixes: {', '.join(sorted(IMAGE_SUFFIXES))})"
    ]


def _duplicates(manifest: pd.DataFrame) -> list[str]:
    """A note for each image found under both labels, and one for copies under one label."""
    by_digest: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for file, label, digest in zip(manifest["file"], manifest["label"], manifest["sha256"],
                                   strict=True):  # fmt: skip
        by_digest[digest].append((file, label))
    notes, copies = [], 0
    for found in by_digest.values():
        if len({label for _, label in found}) > 1:
            notes.append(f"the same image is under both labels: {', '.join(f for f, _ in found)}")
        elif len(found) > 1:
            copies += len(found) - 1
    if copies:
        notes.append(f"{copies} image(s) are copies of another under the same label (counted each)")
    return notes


def _unlisted(photos: PhotoSet, folders: list[Path]) -> list[str]:
    """A note for image files under a frozen folder's label folders that its manifest lacks."""
    listed = set(photos.manifest["file"])
    extra = [
        path.relative_to(photos.root).as_posix()
        for folder in folders
        for path in _files(folder)
        if path.suffix.lower() in IMAGE_SUFFIXES
    ]
    extra = [f for f in extra if f not in listed]
    if not extra:
        return []
    return [
        f"{len(extra)} image file(s) are not in its {MANIFEST_FILE} and are not scored: "
        f"{_some(extra)}; "
        f"to score them, {REFREEZE.format(root=photos.root)}"
    ]
