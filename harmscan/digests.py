"""sha256 of files on disk, and a folder's files checked against the digests a manifest records."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from pathlib import Path

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def is_sha256_hex(value: object) -> bool:
    """Whether ``value`` is a sha256 as ``hexdigest`` writes it (64 lowercase hex digits)."""
    return isinstance(value, str) and _SHA256_HEX.fullmatch(value) is not None


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
