"""sha256 of files on disk, and a folder's files checked against the digests a manifest records."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path


def file_sha256(path: Path | str) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def unmatched(
    root: Path, files: Iterable[str], digests: Iterable[str]
) -> tuple[list[str], list[str]]:
    """The ``files`` (relative to ``root``) that are missing, and those whose bytes do not hash
    to their digest, each in the given order; two empty lists when every file matches."""
    missing, changed = [], []
    for file, digest in zip(files, digests, strict=True):
        path = Path(root) / str(file)
        if not path.is_file():
            missing.append(str(file))
        elif file_sha256(path) != digest:
            changed.append(str(file))
    return missing, changed
