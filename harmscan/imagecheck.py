"""Verify one downloaded Open Images photo and make it upright.

The photo must decode completely (`harmscan.imageio.decode_image`: not truncated, an accepted
format, shorter side at least ``min_side``). Orientation: when the file carries an EXIF
orientation, the decoder has already turned it upright; otherwise the image list's ``Rotation``
column (degrees counter-clockwise, 0/90/180/270, NaN = unknown) is applied. Only a rotated image
is re-encoded (JPEG, quality 95); an upright one is stored byte for byte as downloaded, under the
extension of its real format (a PNG served under a ``.jpg`` key is stored as ``.png``).
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from harmscan.imageio import decode_image
from harmscan.imagepolicy import ImageRejected

EXIF_ORIENTATION = 0x0112
JPEG_QUALITY = 95
# decode_image reasons folded into the ETL's failure reasons.
REASON_MAP = {
    "not_an_image": "corrupt",
    "unsupported_format": "corrupt",
    "corrupt": "corrupt",
    "truncated": "truncated",
    "too_small": "too_small",
    "too_large": "too_large",
    "decompression_bomb": "too_large",
}


@dataclass(frozen=True)
class VerifiedImage:
    """A decoded, upright image and the exact bytes to store for it."""

    data: bytes
    width: int
    height: int
    rotated: bool
    format: str = "jpeg"  # what the stored bytes are (lower-case PIL format name)

    @property
    def sha256(self) -> str:
        """sha256 of the stored bytes."""
        return hashlib.sha256(self.data).hexdigest()

    def record(self) -> dict[str, Any]:
        """The fields kept in the verified-state record and the manifest."""
        return {
            "sha256": self.sha256,
            "bytes": len(self.data),
            "width": self.width,
            "height": self.height,
            "rotated": self.rotated,
            "format": self.format,
        }

    def write(self, path: Path) -> None:
        """Write atomically (temp file + rename), so a crash never leaves half a file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(self.data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def exif_orientation(data: bytes) -> int:
    """The EXIF orientation tag (1 = upright) without decoding pixels; 1 if absent or broken."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return int(image.getexif().get(EXIF_ORIENTATION, 1))
    except (OSError, ValueError, SyntaxError, TypeError):
        return 1


def image_format(data: bytes) -> str:
    """The real format of encoded bytes (``jpeg``, ``png``, ...), read from the header."""
    with Image.open(io.BytesIO(data)) as image:
        return str(image.format).lower()


def rotation_degrees(rotation: float | str | None) -> int:
    """The image list's Rotation as 0/90/180/270 (NaN, empty or None = 0).

    Raises:
        ValueError: Any other value.
    """
    if rotation is None or rotation == "":
        return 0
    value = float(rotation)
    if math.isnan(value):
        return 0
    degrees = int(value) % 360
    if degrees not in (0, 90, 180, 270) or degrees != value % 360:
        raise ValueError(f"Rotation {rotation!r} is not one of 0, 90, 180, 270")
    return degrees


def verify_image(
    data: bytes,
    *,
    rotation: float | str | None = None,
    min_side: int = 1,
    max_bytes: int = 20 * 1024 * 1024,
) -> VerifiedImage | str:
    """Check one photo and return what to store, or ``"<reason>: <detail>"`` if it fails.

    Reasons: corrupt, truncated, too_small, too_large, bad_metadata (an invalid Rotation).
    """
    try:
        image = decode_image(data, min_side=min_side, max_bytes=max_bytes)
    except ImageRejected as exc:
        return f"{REASON_MAP.get(exc.reason, 'corrupt')}: {exc.detail}"
    try:
        degrees = 0 if exif_orientation(data) != 1 else rotation_degrees(rotation)
    except ValueError as exc:
        return f"bad_metadata: {exc}"
    if degrees:
        image = image.rotate(degrees, expand=True)
    if degrees or exif_orientation(data) != 1:
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
        return VerifiedImage(buffer.getvalue(), image.width, image.height, rotated=True)
    return VerifiedImage(data, image.width, image.height, rotated=False, format=image_format(data))
