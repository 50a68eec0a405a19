"""An item's image, read only through serving's safe input reader.

The request behind a review item is rebuilt from the item alone: its ``source`` (a local path or an
``s3://`` URI) or, for inline bytes, the original request carried on the review message. The
`serving.inputs.InputReader` then applies the serving limits: a path must resolve under
``serving.allowed_roots`` before anything is opened, a bucket must be allowed, sizes are capped.
Only recognised raster formats are answered, with their own content type.
"""

from __future__ import annotations

import hashlib
import io
from typing import Final, cast

from harmscan.imageio import decode_image
from harmscan.imagepolicy import DEFAULT_MAX_PIXELS, ImageRejected
from review.store import Item
from serving.headers import RejectReason
from serving.inputs import InputReader, InputRejected
from serving.schema import Request, SchemaError, decode_request

# Leading bytes -> content type; anything else is never sent to a browser.
MAGIC = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
)


def request_of(item: Item) -> Request:
    """The image source of an item as a request.

    Raises:
        InputRejected: ``bad_schema`` for an inline item without its request.
    """
    if item.source == "inline":
        try:
            request = decode_request(item.inline_request)
        except SchemaError as exc:
            raise InputRejected("bad_schema", f"inline image not available: {exc}") from None
        if request.kind != "image_b64":
            raise InputRejected("bad_schema", "inline item whose request names another source")
        return request
    if item.source.startswith("s3://"):
        return Request(id=item.request_id, kind="s3", source=item.source)
    return Request(id=item.request_id, kind="path", source=item.source)


# TIFF: served by the consumer, drawn by no browser; shown as a PNG at most this many pixels
# on its longer side, decoded under the serving limits.
TIFF_MAGIC: Final = (b"II*\x00", b"MM\x00*")
SHOWN_SIDE: Final = 2048


def content_type(data: bytes) -> str | None:
    """The image content type of ``data`` from its leading bytes; None if not recognised."""
    for magic, kind in MAGIC:
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


class ImageChanged(RuntimeError):
    """The item's source no longer holds the bytes the model scored (the file or object was
    replaced after scoring): what it holds now is not shown as the scored image."""


def read_image(
    reader: InputReader, item: Item, max_pixels: int = DEFAULT_MAX_PIXELS
) -> tuple[bytes, str]:
    """The bytes and content type of an item's image: the bytes the model scored, when the
    result named their digest; a TIFF as a PNG (its first page, at most `SHOWN_SIDE` px).

    Raises:
        InputRejected: Outside the allowed roots or buckets, missing, too large, not an image,
            or a TIFF that does not decode within ``max_pixels``.
        SourceUnavailable: S3 could not be reached.
        ImageChanged: The source holds other bytes than those scored.
    """
    data = scored_bytes(reader, item)
    if data.startswith(TIFF_MAGIC):
        return tiff_as_png(data, max_pixels), "image/png"
    kind = content_type(data)
    if kind is None:
        raise InputRejected("unsupported_format", "not a JPEG, PNG, GIF, BMP, WebP or TIFF image")
    return data, kind


def scored_bytes(reader: InputReader, item: Item) -> bytes:
    """The item's bytes as its source holds them now, checked against the digest of the bytes
    the model scored (when the result named one).

    Raises:
        InputRejected: As `read_image`.
        SourceUnavailable: S3 could not be reached.
        ImageChanged: The source holds other bytes than those scored.
    """
    data = reader.read(request_of(item))
    if item.sha256 is not None and hashlib.sha256(data).hexdigest() != item.sha256:
        raise ImageChanged(
            f"{item.source} changed after the model scored it: the scored image is gone"
        )
    return data


def tiff_as_png(data: bytes, max_pixels: int) -> bytes:
    """A TIFF's first page as PNG bytes, for a browser (decoded as the consumer decodes it).

    Raises:
        InputRejected: It does not decode, or declares more than ``max_pixels`` pixels.
    """
    try:
        image = decode_image(data, max_pixels=max_pixels, max_bytes=len(data), formats=("TIFF",))
    except ImageRejected as exc:
        raise InputRejected(cast(RejectReason, exc.reason), exc.detail) from None
    image.thumbnail((SHOWN_SIDE, SHOWN_SIDE))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()
