"""What decoding an image will cost in memory, judged from its header before any pixel is decoded.

Most accepted formats decode within a worker's ``serving.decode_memory_mb`` up to
``serving.max_pixels`` (JPEG, PNG, GIF, TIFF and BMP at 7071x7071, every mode; transparency is
converted in strips). WebP does not: Pillow decodes it through libwebp's animation decoder, which
holds two whole RGBA canvases, and Pillow copies the frame out twice more: about
`WEBP_BYTES_PER_PIXEL` bytes per pixel of address space (measured: a 6000x6000 WebP with alpha
decoded under 768 MB, a 6100x6100 one did not; without alpha 6100x6100 did, 6500x6500 did not).
A WebP the cap cannot hold was a ``too_large`` dead letter only after the worker had run out of
memory and been replaced, its detail naming the memory setting but not why an image under
``serving.max_pixels`` needed so much. `check_decode_memory` refuses it
before libwebp allocates anything, naming the format, its cost and the largest WebP the cap holds.
"""

from __future__ import annotations

import math
from typing import Final

from harmscan.imagepolicy import ImageRejected

# Address space per pixel of a WebP with alpha, the costlier kind: 36.0 M pixels decoded under
# 768 MB (at most 22.4 bytes a pixel), 37.2 M did not (over 21.6).
WEBP_BYTES_PER_PIXEL: Final = 22


def webp_size(data: bytes) -> tuple[int, int] | None:
    """The canvas size a WebP header declares, or None for other bytes (or a header cut short)."""
    if len(data) < 30 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    chunk = data[12:16]
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        return width, int.from_bytes(data[27:30], "little") + 1
    if chunk == b"VP8L" and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width = int.from_bytes(data[26:28], "little") & 0x3FFF
        return width, int.from_bytes(data[28:30], "little") & 0x3FFF
    return None


def check_decode_memory(
    data: bytes, *, memory_mb: int, max_pixels: int, max_aspect_ratio: float | None
) -> None:
    """Refuse an image whose decode cannot fit in ``memory_mb`` (only WebP can, see the module),
    and a WebP cut short (libwebp reports it as a decoder it could not create: ``corrupt``).

    The pixel and aspect-ratio caps are checked first, as the header check would (libwebp
    allocates its canvases when the file is opened, before that check: a 9000x9000 WebP, over
    ``max_pixels``, ran the worker out of memory and was ``too_large``, not a bomb).

    Raises:
        ImageRejected: ``truncated``; ``decompression_bomb`` over the pixel or aspect-ratio cap;
            ``too_large``, naming the format, the memory it needs and the setting.
    """
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        declared = int.from_bytes(data[4:8], "little") + 8
        if declared > len(data):  # libwebp said only "could not create decoder object"
            raise ImageRejected(
                "truncated",
                f"the WebP declares {declared} bytes but {len(data)} arrived: send the whole file",
            )
    size = webp_size(data)
    if size is None:
        return
    width, height = size
    if width * height > max_pixels:
        raise ImageRejected(
            "decompression_bomb",
            f"the WebP header declares {width}x{height} = {width * height} pixels > {max_pixels}",
        )
    if max_aspect_ratio is not None and max(size) > max_aspect_ratio * min(size):
        raise ImageRejected(
            "decompression_bomb", f"{width}x{height}: aspect ratio above {max_aspect_ratio:g}"
        )
    needed = width * height * WEBP_BYTES_PER_PIXEL
    if needed <= memory_mb * 1024 * 1024:
        return
    side = math.isqrt(memory_mb * 1024 * 1024 // WEBP_BYTES_PER_PIXEL)
    raise ImageRejected(
        "too_large",
        f"a {width}x{height} WebP needs about {needed // 2**20} MB to decode (libwebp holds "
        f"whole canvases, ~{WEBP_BYTES_PER_PIXEL} bytes a pixel) > serving.decode_memory_mb="
        f"{memory_mb}; a WebP of at most ~{side}x{side} fits: send it smaller, or as JPEG or PNG",
    )
