"""The held-out blank check: images with nothing in them that a model must call safe.

Drawn by `harmscan.blanks.blank_images` from another seed than ``blankpool/`` (which the probe
may train on), at other sizes (1, 64 and 400 px) and as PNG, plus a fully transparent PNG (the
consumer composites it onto white). Plain white and plain black are in both: there is one white.
``python -m tests.blankcheck FOLDER`` writes it as ``FOLDER/safe/*.png`` for ``harmscan
evaluate``. Why: ``docs/blank-images.md``.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from PIL import Image

from harmscan.blanks import blank_images

SEED = 7  # not blankpool's (scripts/blank_pool.py)
SIDES = (1, 64, 400)
PER_SIDE = 12


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def blank_check() -> dict[str, bytes]:
    """File name -> PNG bytes of every image of the check."""
    check = {
        f"{blank.name}-{side}px.png": _png(blank.image)
        for index, side in enumerate(SIDES)
        for blank in blank_images(SEED + index, PER_SIDE, side)
    }
    check["transparent-200px.png"] = _png(Image.new("RGBA", (200, 200), (0, 0, 0, 0)))
    return check


def write_check(folder: Path) -> list[Path]:
    """Write the check as ``folder/safe/<name>.png``; the files."""
    (folder / "safe").mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in blank_check().items():
        path = folder / "safe" / name
        path.write_bytes(data)
        written.append(path)
    return written


if __name__ == "__main__":
    print(f"{len(write_check(Path(sys.argv[1])))} blank images in {sys.argv[1]}/safe")
