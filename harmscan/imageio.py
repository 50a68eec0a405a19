"""Safe image decoding, shared by the ETL's verification, training and serving.

Every payload is treated as hostile: only the formats we mean to read are opened (Pillow would
otherwise hand an EPS file named ``.jpg`` to Ghostscript), the pixel count is checked from the
header before any pixel is decoded (and the aspect ratio, so a 100000x1 PNG never reaches a
resize), JPEG Huffman tables are checked before decoding (libjpeg decodes broken tables into grey
noise without an error), PNG text-chunk bombs are ``decompression_bomb``, special files are never
read, and unusual but valid images (CMYK, 16-bit, palette with transparency, EXIF-rotated) come out
as upright 8-bit RGB. Truncated images are never completed (``ImageFile.LOAD_TRUNCATED_IMAGES``
must stay False; `decode_image` refuses to run otherwise).

What is accepted and the refusal are `harmscan.imagepolicy`; reading files `harmscan.imagefile`;
naming unreadable or refused formats `harmscan.imageformats`; the JPEG table check
`harmscan.jpegtables`; conversion to upright RGB `harmscan.imagergb`. The hard limits (address
space, CPU time) belong to the caller: serving decodes in worker processes (`serving.decoding`).
"""

from __future__ import annotations

import io
import re
import struct
import warnings
from pathlib import Path
from typing import Final

from PIL import Image, ImageFile, UnidentifiedImageError

from harmscan.imagefile import read_image_file
from harmscan.imageformats import unidentified
from harmscan.imagepolicy import (
    ALLOWED_FORMATS,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    ImageRejected,
)
from harmscan.imagergb import to_rgb, upright
from harmscan.jpegtables import jpeg_table_problem

# Pillow's ValueErrors for PNG/ text chunks that inflate past its limits.
_TEXT_BOMB: Final = ("decompressed data too large", "too much memory used in text chunks")
_BOMBS: Final = (Image.DecompressionBombWarning, Image.DecompressionBombError)
_PILLOW_PIXELS: Final = re.compile(r"\((\d+) pixels\)")
# What Pillow raises for broken image data besides its OSError family: a mistyped TIFF tag, a
# cut frame chain (TypeError, KeyError, IndexError, struct.error) made requests internal_error.
BROKEN_DATA: Final = (
    OSError, SyntaxError, ValueError, EOFError, TypeError, KeyError, IndexError, struct.error,
)  # fmt: skip


def decode_image(
    data: bytes,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    min_side: int = 1,
    draft: tuple[int, int] | None = None,
    formats: tuple[str, ...] = ALLOWED_FORMATS,
    max_aspect_ratio: float | None = None,
) -> Image.Image:
    """Decode untrusted bytes into an upright 8-bit RGB image (the first frame of an animation).

    Args:
        data: The encoded image.
        max_pixels: Refuse images whose header declares more pixels than this.
        max_bytes: Refuse payloads larger than this.
        min_side: Refuse images whose shorter side is below this (after EXIF rotation).
        draft: For JPEG, let the decoder scale down by a power of two while keeping both sides at
            least this size (Pillow's draft mode: a large speed-up for big photos).
        formats: Formats that may be decoded.
        max_aspect_ratio: Refuse images whose longer side exceeds the shorter this many times
            (from the header, before decoding).

    Returns:
        The decoded image in mode ``RGB``.

    Raises:
        ImageRejected: With a reason from `REASONS`.
    """
    image = open_image(
        data,
        max_pixels=max_pixels,
        max_bytes=max_bytes,
        draft=draft,
        formats=formats,
        max_aspect_ratio=max_aspect_ratio,
    )
    return load_rgb(image, min_side)


def open_image(
    data: bytes,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    draft: tuple[int, int] | None = None,
    formats: tuple[str, ...] = ALLOWED_FORMATS,
    max_aspect_ratio: float | None = None,
) -> Image.Image:
    """Open untrusted bytes and check their header; no pixel is decoded yet.

    Arguments as for `decode_image`.

    Raises:
        ImageRejected: With a reason from `REASONS`.
    """
    if len(data) > max_bytes:
        raise ImageRejected("too_large", f"{len(data)} bytes > limit {max_bytes}")
    if not data:
        raise ImageRejected("not_an_image", "empty payload")
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is set: truncated images pass")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=list(formats))
    except UnidentifiedImageError:
        raise unidentified(data, formats) from None
    except _BOMBS as exc:  # Pillow's own cap (2x MAX_IMAGE_PIXELS) fired before ours
        declared = _PILLOW_PIXELS.search(str(exc))
        pixels = f"{declared.group(1)} pixels" if declared else "more pixels"
        raise ImageRejected(
            "decompression_bomb", f"the header declares {pixels} > max_pixels {max_pixels}"
        ) from None
    except BROKEN_DATA as exc:
        raise _rejection(exc, "unreadable header") from None
    check_header(image, max_pixels, max_aspect_ratio)
    if image.format == "JPEG":
        problem = jpeg_table_problem(data)
        if problem:
            raise ImageRejected("corrupt", f"JPEG Huffman tables: {problem}")
        if draft is not None:
            image.draft("RGB", draft)
    return image


def load_rgb(image: Image.Image, min_side: int) -> Image.Image:
    """Decode the current frame of an opened image into upright 8-bit RGB."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.load()
    except (*BROKEN_DATA, *_BOMBS) as exc:
        raise _rejection(exc, f"{image.format} data does not decode") from None
    rgb = to_rgb(upright(image))
    if min(rgb.size) < min_side:
        raise ImageRejected("too_small", f"{rgb.size[0]}x{rgb.size[1]} < {min_side} px side")
    return rgb


def load_image(
    path: Path | str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_side: int = 1,
    draft: tuple[int, int] | None = None,
) -> Image.Image:
    """Read and decode an image file (see `read_image_file` and `decode_image`)."""
    data = read_image_file(path, max_bytes=max_bytes)
    return decode_image(
        data, max_pixels=max_pixels, max_bytes=max_bytes, min_side=min_side, draft=draft
    )


def _rejection(exc: BaseException, what: str) -> ImageRejected:
    text = str(exc).lower()
    if any(bomb in text for bomb in _TEXT_BOMB):
        return ImageRejected(
            "decompression_bomb",
            f"{what}: a text, XMP or ICC chunk inflates past the metadata limit ({exc}); "
            "strip the image's metadata",
        )
    if isinstance(exc, _BOMBS):
        return ImageRejected("decompression_bomb", f"{what}: {exc}")
    if "truncated" in text:  # Pillow's words name the fault but not what to do about it
        return ImageRejected(
            "truncated", f"{what}: {exc}: the image is cut short; send the whole file"
        )
    return ImageRejected("corrupt", f"{what}: {exc}")


def check_header(image: Image.Image, max_pixels: int, max_aspect_ratio: float | None) -> None:
    width, height = image.size
    if width * height > max_pixels:
        raise ImageRejected(
            "decompression_bomb", f"{width}x{height} = {width * height} pixels > {max_pixels}"
        )
    if max_aspect_ratio is not None and max(width, height) > max_aspect_ratio * min(width, height):
        raise ImageRejected(
            "decompression_bomb", f"{width}x{height}: aspect ratio above {max_aspect_ratio:g}"
        )
