"""What harmscan accepts as an image: its formats and default limits, and why one is refused."""

from __future__ import annotations

from typing import Final

ALLOWED_FORMATS: Final = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
# File suffixes by which folders of images are searched (the producer, your own image sets): the
# allowed formats' usual names. The decoder trusts the bytes, never the suffix.
IMAGE_SUFFIXES: Final = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
)
DEFAULT_MAX_PIXELS: Final = 50_000_000
DEFAULT_MAX_BYTES: Final = 20 * 1024 * 1024

# Reasons an image is rejected; they travel as dead-letter headers and ETL failure counts.
REASONS: Final = (
    "not_an_image",
    "unsupported_format",
    "truncated",
    "corrupt",
    "too_large",
    "decompression_bomb",
    "too_small",
    "not_a_file",
    "not_found",
    "forbidden_path",
)


class ImageRejected(ValueError):
    """An image that cannot or must not be decoded.

    Attributes:
        reason: One of `REASONS`.
        detail: Human-readable explanation.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
