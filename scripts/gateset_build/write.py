"""Write one set: its images, ``manifest.csv``, ``VERSION`` and ``ATTRIBUTION.md``."""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

from harmscan.gateset import MANIFEST_COLUMNS, VERSION_FILE, manifest_version

from .attribution import attribution
from .fetch import fetch
from .images import MAX_SIDE, SET_MAX_SIDE, encode
from .sets import Item
from .sources import SOURCES


def file_name(item: Item) -> str:
    """Where ``item``'s JPEG goes: ``images/<label>/<package>--<last path parts>.jpg``."""
    skip = ("contents", "images", "icons", "img")
    path = item.path.replace(".json#", "/")  # an Iconify icon: named by its icon name
    parts = [p for p in Path(path).with_suffix("").parts if p not in skip]
    stem = parts[-3:]
    return f"images/{item.label}/{item.source}--{'_'.join(stem)}.jpg".replace(" ", "_")


def build(name: str, items: list[Item], cache: Path, out: Path, pip: str = "pip") -> str:
    """Write one set (images, manifest.csv, VERSION, ATTRIBUTION.md); return its version."""
    if out.exists():
        for old in sorted(out.glob("images/*/*.jpg")):
            old.unlink()
    rows = [write_image(name, item, cache, out, pip) for item in items]
    rows.sort(key=lambda r: r["file"])
    if len({r["file"] for r in rows}) != len(rows):
        raise ValueError(f"{name}: two items map to the same file name")
    version = write_manifest(rows, out)
    (out / "ATTRIBUTION.md").write_text(attribution(name, rows, version), newline="\n")
    return version


def write_image(name: str, item: Item, cache: Path, out: Path, pip: str) -> dict[str, str]:
    """Fetch ``item``'s package, write its JPEG into set ``name`` at ``out``; its manifest row."""
    source = SOURCES[item.source]
    side = SET_MAX_SIDE.get(name, MAX_SIDE)
    data, _, _ = encode(fetch(source, cache, pip) / item.path, side, square=name in SET_MAX_SIDE)
    rel = file_name(item)
    (out / rel).parent.mkdir(parents=True, exist_ok=True)
    (out / rel).write_bytes(data)
    return {
        "file": rel,
        "label": item.label,
        "domain": item.domain,
        "subject": item.subject,
        "source": source.label,
        "registry": source.registry.split("-")[0],
        "path": item.path,
        "license": item.license or source.license,
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def write_manifest(rows: list[dict[str, str]], out: Path) -> str:
    """Write ``manifest.csv`` (rows in the order given) and ``VERSION``; return the version."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(MANIFEST_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    (out / "manifest.csv").write_text(buffer.getvalue(), encoding="utf-8", newline="\n")
    version = manifest_version(out / "manifest.csv")
    (out / VERSION_FILE).write_text(version + "\n")
    return version
