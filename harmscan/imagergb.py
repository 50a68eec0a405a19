"""Decoded images of any mode as upright 8-bit RGB: EXIF orientation, depth and transparency."""

from __future__ import annotations

import struct
from typing import Final

import numpy as np
from PIL import ExifTags, Image, ImageOps

# What rewriting a broken EXIF block raises in `ImageOps.exif_transpose` (a mistyped tag made
# struct.error or TypeError, and the request an ``internal_error``).
_BROKEN_EXIF: Final = (
    OSError, ValueError, SyntaxError, KeyError, TypeError, IndexError, struct.error,
    ArithmeticError,
)  # fmt: skip


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any decoded mode to 8-bit RGB; transparency is composited onto white.

    Large images are converted in strips of about `STRIP_PIXELS`, so a conversion needs little
    more than its output beside the decoded image (a whole-image composite of a 7000x7000 RGBA
    PNG held four full copies and broke the decode workers' memory cap).
    """
    if image.mode == "RGB":
        return image
    if image.mode.startswith("I;16"):
        gray = np.empty((image.height, image.width), dtype=np.uint8)
        for box in _strips(image):
            rows = np.asarray(image.crop(box), dtype=np.uint32)
            # round(v / 65535 * 255) in integers: v / 257 never lies halfway between two.
            gray[box[1] : box[3]] = (rows * 510 + 65535) // 131070
        return Image.fromarray(gray).convert("RGB")
    if image.mode in ("I", "F"):
        return _gray32_to_rgb(image)
    transparent = image.mode == "P" and "transparency" in image.info
    if transparent or image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgb = Image.new("RGB", image.size)
        for box in _strips(image):
            strip = image.crop(box)  # a palette image's crop keeps its palette and transparency
            if strip.mode == "La":  # Pillow converts premultiplied gray only to LA
                strip = strip.convert("LA")
            strip = strip if strip.mode == "RGBA" else strip.convert("RGBA")
            background = Image.new("RGBA", strip.size, (255, 255, 255, 255))
            rgb.paste(Image.alpha_composite(background, strip).convert("RGB"), box[:2])
        return rgb
    return image.convert("RGB")


def _gray32_to_rgb(image: Image.Image) -> Image.Image:
    """A 32-bit gray image (``I`` or ``F``) as 8-bit RGB, scaled so its white is white
    (`_white_of`), in strips: a whole-image float copy took some 40 bytes a pixel and broke the
    decode workers' memory cap at a quarter of ``serving.max_pixels``."""
    brightest = 0.0
    for box in _strips(image):
        rows = np.asarray(image.crop(box), dtype=np.float64)
        finite = rows[np.isfinite(rows)]
        if finite.size:
            brightest = max(brightest, float(finite.max()))
    top = _white_of(image.mode, brightest)
    gray = np.empty((image.height, image.width), dtype=np.uint8)
    for box in _strips(image):
        rows = np.asarray(image.crop(box), dtype=np.float64)
        # A float TIFF may hold NaN or infinities: black and white, not an undefined cast.
        rows = np.nan_to_num(rows, nan=0.0, posinf=top, neginf=0.0)
        gray[box[1] : box[3]] = np.clip(rows / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(gray).convert("RGB")


def _white_of(mode: str, brightest: float) -> float:
    """The value that stands for white in a 32-bit gray image, judged by its brightest pixel:
    1.0 for a float image within 0..1 (the usual float convention: a knife saved so had
    decoded black), else 255 for 8-bit values, else 65535 for 16-bit ones."""
    if mode == "F" and brightest <= 1.0:
        return 1.0
    return 65535.0 if brightest > 255 else 255.0


STRIP_PIXELS: Final = 1 << 22


def _strips(image: Image.Image) -> list[tuple[int, int, int, int]]:
    """Boxes of whole rows, about `STRIP_PIXELS` each, covering the image top to bottom."""
    width, height = image.size
    step = max(1, STRIP_PIXELS // max(1, width))
    return [(0, top, width, min(height, top + step)) for top in range(0, height, step)]


# EXIF orientations that `ImageOps.exif_transpose` turns (1 is upright; others it leaves alone).
_TURNED: Final = range(2, 9)


def upright(image: Image.Image) -> Image.Image:
    """The image turned by its EXIF orientation (itself when upright or its EXIF is broken)."""
    try:
        # exif_transpose copies an image it leaves as it is: every upright decode paid for a
        # copy of its pixels (and a large image held two), so it is asked only to turn one.
        if image.getexif().get(ExifTags.Base.Orientation, 1) not in _TURNED:
            return image
        return ImageOps.exif_transpose(image) or image
    except _BROKEN_EXIF:
        return image  # broken EXIF: keep the pixels as stored
