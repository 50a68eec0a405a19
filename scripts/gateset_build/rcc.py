"""Read the files of a Qt resource bundle (``.rcc``), where some packages keep their images.

An item's path ``<bundle>.rcc#<member>`` names one file inside the bundle. The format: a header
(``qres``, version, offsets of the tree, the data and the names), a tree of 14-byte (version 1)
or 22-byte nodes, each a name offset and flags (2: directory, 1: zlib, 4: zstd), then either a
child count and first child or a data offset; each data block is its length and its bytes.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

DIRECTORY, ZLIB, ZSTD = 2, 1, 4


def rcc_files(blob: bytes) -> dict[str, bytes]:
    """Every file of an ``.rcc`` bundle, by its path inside it."""
    magic, version, tree, data, names = struct.unpack(">4sIIII", blob[:20])
    if magic != b"qres":
        raise ValueError("not a Qt resource bundle (no 'qres' header)")
    node_size = 14 if version == 1 else 22
    out: dict[str, bytes] = {}

    def name_at(offset: int) -> str:
        at = names + offset
        (length,) = struct.unpack(">H", blob[at : at + 2])
        return blob[at + 6 : at + 6 + 2 * length].decode("utf-16-be")

    def walk(index: int, prefix: str) -> None:
        base = tree + index * node_size
        name_offset, flags = struct.unpack(">IH", blob[base : base + 6])
        path = f"{prefix}/{name_at(name_offset)}" if index else prefix
        if flags & DIRECTORY:
            count, first = struct.unpack(">II", blob[base + 6 : base + 14])
            for child in range(first, first + count):
                walk(child, path)
            return
        (offset,) = struct.unpack(">I", blob[base + 10 : base + 14])
        at = data + offset
        (length,) = struct.unpack(">I", blob[at : at + 4])
        raw = blob[at + 4 : at + 4 + length]
        if flags & ZSTD:
            raise ValueError(f"{path}: zstd-compressed resources are not supported")
        out[path.lstrip("/")] = zlib.decompress(raw[4:]) if flags & ZLIB else raw

    walk(0, "")
    return out


def rcc_member(path: Path) -> bytes:
    """The bytes of ``<bundle>.rcc#<member>``."""
    bundle, _, member = str(path).partition(".rcc#")
    files = rcc_files(Path(bundle + ".rcc").read_bytes())
    if member not in files:
        raise KeyError(f"{bundle}.rcc has no file {member!r}")
    return files[member]
