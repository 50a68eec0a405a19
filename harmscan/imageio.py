"""Safe image decoding, shared by the ETL's verification, training and serving.

Every payload is treated as hostile: only the formats we mean to read are opened (Pillow would
otherwise hand an EPS file named ``.jpg`` to Ghostscript), the pixel count is checked from the
header before any pixel is decoded (and the aspect ratio, so a 100000x1 PNG never reaches a
resize), JPEG Huffman tables are checked before decoding (libjpeg decodes broken tables into grey
noise without an error), PNG text-chunk bombs are ``decompression_bomb``, special files are never
read, and unusual but valid images (CMYK, 16-bit, palette with transparency, EXIF-rotated) come out
as upright 8-bit RGB. Truncated images are never completed (``ImageFile.LOAD_TRUNCATED_IMAGES``
must stay False; `decode_image` refuses to run otherwise).

The hard limits (address space, CPU time) belong to the caller: serving decodes in worker
processes (`serving.decoding`).
"""

from __future__ import annotations

import errno
import io
import os
import re
import stat
import struct
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Final

import numpy as np
from PIL import ExifTags, Image, ImageFile, ImageOps, UnidentifiedImageError

ALLOWED_FORMATS: Final = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
DEFAULT_MAX_PIXELS: Final = 50_000_000
DEFAULT_MAX_BYTES: Final = 20 * 1024 * 1024
# A JPEG marker inside entropy-coded data: 0xFF followed by neither stuffing, RSTn nor fill.
_JPEG_MARKER: Final = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
# Pillow's ValueErrors for PNG/ text chunks that inflate past its limits.
_TEXT_BOMB: Final = ("decompressed data too large", "too much memory used in text chunks")
_BOMBS: Final = (Image.DecompressionBombWarning, Image.DecompressionBombError)
_PILLOW_PIXELS: Final = re.compile(r"\((\d+) pixels\)")
# What Pillow raises for broken image data besides its OSError family: a mistyped TIFF tag, a
# cut frame chain (TypeError, KeyError, IndexError, struct.error) made requests internal_error.
BROKEN_DATA: Final = (
    OSError, SyntaxError, ValueError, EOFError, TypeError, KeyError, IndexError, struct.error,
)  # fmt: skip
# What rewriting a broken EXIF block raises in `ImageOps.exif_transpose` (a mistyped tag made
# struct.error or TypeError, and the request an ``internal_error``).
_BROKEN_EXIF: Final = (
    OSError, ValueError, SyntaxError, KeyError, TypeError, IndexError, struct.error,
    ArithmeticError,
)  # fmt: skip

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

# Signatures of formats we recognise but refuse to decode.
_REFUSED_MAGIC: Final = (
    (b"%!PS", "EPS/PostScript"),
    (b"\xc5\xd0\xd3\xc6", "EPS"),
    (b"%PDF", "PDF"),
    (b"<svg", "SVG"),
    (b"<?xml", "XML/SVG"),
    (b"\x00\x00\x00\x0cjP", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),
    (b"icns", "ICNS"),
    (b"8BPS", "PSD"),
    (b"\xff\x0a", "JPEG XL"),
    (b"\x00\x00\x00\x0cJXL ", "JPEG XL"),
    (b"qoif", "QOI"),
    (b"DDS ", "DDS"),
    (b"gimp xcf", "XCF"),
    (b"FORM", "IFF/ILBM"),
    # Compressed bytes (an S3 object stored with Content-Encoding: gzip arrives as stored).
    (b"\x1f\x8b", "gzip-compressed data (send the image itself, not compressed)"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed data (send the image itself, not compressed)"),
    (b"PK\x03\x04", "ZIP archive"),
)
# ISO base media files (``....ftyp<brand>``): still images in HEIF containers, else video.
_HEIF_BRANDS: Final = {
    b"avif": "AVIF",
    b"avis": "AVIF",
    b"heic": "HEIC",
    b"heix": "HEIC",
    b"heim": "HEIC",
    b"heis": "HEIC",
    b"hevc": "HEIC",
    b"hevx": "HEIC",
    b"mif1": "HEIF",
    b"msf1": "HEIF",
}
_NETPBM: Final = re.compile(rb"P[1-7][ \t\r\n#]")


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
        raise _unidentified(data, formats) from None
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
    rgb = to_rgb(_upright(image))
    if min(rgb.size) < min_side:
        raise ImageRejected("too_small", f"{rgb.size[0]}x{rgb.size[1]} < {min_side} px side")
    return rgb


def read_image_file(
    path: Path | str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    follow_symlinks: bool = True,
    check: Callable[[int, os.stat_result], None] | None = None,
) -> bytes:
    """Read a regular file's bytes without ever blocking on a FIFO, device or socket.

    The caller resolves and authorises the path; this only refuses what is not a regular file and
    reads at most ``max_bytes + 1`` bytes.

    Args:
        path: The file.
        max_bytes: Refuse files larger than this.
        follow_symlinks: With False, a symlink at ``path`` (one swapped in after the caller
            resolved it) is refused as ``forbidden_path``.
        check: Called with the opened file's descriptor and ``fstat`` before reading; it may
            raise `ImageRejected` (the caller's own policy on the very file read).

    Raises:
        ImageRejected: ``not_found``, ``not_a_file``, ``forbidden_path`` or ``too_large``.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    if not follow_symlinks:
        flags |= os.O_NOFOLLOW
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise ImageRejected("not_found", f"no such file: {path}") from None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EACCES, errno.EPERM):
            raise ImageRejected("forbidden_path", f"{path}: {exc.strerror}") from None
        if exc.errno in (errno.ENOTDIR, errno.ENAMETOOLONG):
            raise ImageRejected("not_found", f"{path}: {exc.strerror}") from None
        raise ImageRejected("not_a_file", f"cannot open {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ImageRejected("not_a_file", f"{path} is not a regular file")
        if check is not None:
            check(fd, info)
        if info.st_size > max_bytes:
            raise ImageRejected("too_large", f"{info.st_size} bytes > limit {max_bytes}")
        chunks: list[bytes] = []
        size = 0
        while size <= max_bytes:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > max_bytes:
        raise ImageRejected("too_large", f"{path} grew beyond {max_bytes} bytes while read")
    return b"".join(chunks)


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
        # A float TIFF may hold NaN or infinities: black and white, not an undefined cast.
        array = np.nan_to_num(
            np.asarray(image, dtype=np.float64), nan=0.0, posinf=255.0, neginf=0.0
        )
        top = 65535.0 if array.max() > 255 else 255.0
        gray = np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(gray).convert("RGB")
    transparent = image.mode == "P" and "transparency" in image.info
    if transparent or image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgb = Image.new("RGB", image.size)
        for box in _strips(image):
            strip = image.crop(box)  # a palette image's crop keeps its palette and transparency
            strip = strip if strip.mode == "RGBA" else strip.convert("RGBA")
            background = Image.new("RGBA", strip.size, (255, 255, 255, 255))
            rgb.paste(Image.alpha_composite(background, strip).convert("RGB"), box[:2])
        return rgb
    return image.convert("RGB")


STRIP_PIXELS: Final = 1 << 22


def _strips(image: Image.Image) -> list[tuple[int, int, int, int]]:
    """Boxes of whole rows, about `STRIP_PIXELS` each, covering the image top to bottom."""
    width, height = image.size
    step = max(1, STRIP_PIXELS // max(1, width))
    return [(0, top, width, min(height, top + step)) for top in range(0, height, step)]


# EXIF orientations that `ImageOps.exif_transpose` turns (1 is upright; others it leaves alone).
_TURNED: Final = range(2, 9)


def _upright(image: Image.Image) -> Image.Image:
    try:
        # exif_transpose copies an image it leaves as it is: every upright decode paid for a
        # copy of its pixels (and a large image held two), so it is asked only to turn one.
        if image.getexif().get(ExifTags.Base.Orientation, 1) not in _TURNED:
            return image
        return ImageOps.exif_transpose(image) or image
    except _BROKEN_EXIF:
        return image  # broken EXIF: keep the pixels as stored


def _unidentified(data: bytes, formats: tuple[str, ...] = ALLOWED_FORMATS) -> ImageRejected:
    claimed = _claimed_but_unreadable(data, formats)
    if claimed is not None:
        return claimed
    accepted = f"accepted: {', '.join(ALLOWED_FORMATS)}"
    name = _refused_format(data)
    if name is not None:
        return ImageRejected(
            "unsupported_format", f"{name} is not an accepted image format ({accepted})"
        )
    return ImageRejected(
        "not_an_image", f"no accepted image format recognises these bytes ({accepted})"
    )


def _claimed_but_unreadable(data: bytes, formats: tuple[str, ...]) -> ImageRejected | None:
    """Why bytes with an accepted format's signature did not open (Pillow only says that no
    format recognised them): a header cut short is ``truncated``, a 12-bit JPEG an
    ``unsupported_format``, anything else ``corrupt``; None when no accepted format claims them.
    """
    for name in formats:
        factory, accept = Image.OPEN.get(name, (None, None))
        if factory is None or accept is None or not accept(data[:16]):
            continue
        if (
            name == "PNG"
            and data[12:16] == b"IHDR"
            and b"\x00\x00\x00\x00" in (data[16:20], data[20:24])
        ):
            width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
            return ImageRejected(
                "corrupt", f"the PNG header declares {width}x{height} pixels: a side of 0"
            )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                factory(io.BytesIO(data), "").close()
        except Exception as exc:  # any failure of the header parser explains the refusal
            problem = str(exc) or type(exc).__name__
            # Reads past the end of the bytes (Pillow re-raises them as SyntaxError): cut short.
            past_end = (IndexError, EOFError, struct.error)
            short = isinstance(exc, past_end) or isinstance(exc.__context__, past_end)
        else:
            continue
        if "12-bit" in problem:
            return ImageRejected(
                "unsupported_format",
                "a 12-bit JPEG (12 bits per sample); only 8-bit JPEGs are accepted: re-encode it "
                "as an 8-bit JPEG or a PNG",
            )
        if "no more images" in problem:
            return ImageRejected("corrupt", f"the {name} holds no image (no frame)")
        if short or "truncated" in problem.lower():
            return ImageRejected(
                "truncated", f"the {name} header is cut short ({problem}): send the whole file"
            )
        return ImageRejected(
            "corrupt",
            f"{name} signature, but its header does not parse ({problem}): re-encode the image",
        )
    return None


def _refused_format(data: bytes) -> str | None:
    """The name of a format we recognise but refuse to decode, or None."""
    head = data[:64].lstrip()
    for magic, name in _REFUSED_MAGIC:
        if head.startswith(magic) or (name == "EPS/PostScript" and b"%!PS" in data[:1024]):
            return name
    if data[:4] in (b"\x00\x00\x01\x00", b"\x00\x00\x02\x00") and data[4:6] != b"\x00\x00":
        return "ICO/CUR"  # a TGA can start with the same 4 bytes, but with no images counted
    if data.endswith(b"TRUEVISION-XFILE.\x00"):
        return "TGA"
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        return _HEIF_BRANDS.get(brand, f"ISO media (brand {brand.decode('latin-1')!r}, e.g. video)")
    if _NETPBM.match(data):
        return "Netpbm (PBM/PGM/PPM/PAM)"
    return None


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
    reason = "truncated" if "truncated" in text else "corrupt"
    return ImageRejected(reason, f"{what}: {exc}")


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


def jpeg_table_problem(data: bytes) -> str | None:
    """What is wrong with a JPEG's Huffman tables (and their use by its scans), or None.

    Checks every DHT segment (class and id, complete code lengths within the code space, no
    duplicate symbols, DC categories <= 11, AC sizes <= 10) and that every scan names defined
    tables. libjpeg itself only refuses over-subscribed code lengths; other broken tables decode
    into noise without an error. Other structure is left to the decoder.
    """
    defined: set[tuple[int, int]] = set()
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None  # not a marker where one should be: the decoder judges
        marker = data[pos + 1]
        if marker == 0xFF or marker == 0x01 or 0xD0 <= marker <= 0xD8:
            pos += 1 if marker == 0xFF else 2
            continue
        if marker == 0xD9:
            return None
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        body = data[pos + 4 : pos + 2 + length]
        if marker == 0xC4:
            problem = _dht_problem(body, defined)
            if problem:
                return problem
        elif marker == 0xDA:
            problem = _sos_problem(body, defined)
            if problem:
                return problem
            found = _JPEG_MARKER.search(data, pos + 2 + length)
            if found is None:
                return None
            pos = found.start()
            continue
        pos += 2 + length
    return None


def _dht_problem(body: bytes, defined: set[tuple[int, int]]) -> str | None:
    index = 0
    while index < len(body):
        table_class, table_id = body[index] >> 4, body[index] & 0x0F
        if table_class > 1 or table_id > 3:
            return f"table class {table_class} id {table_id}"
        counts = body[index + 1 : index + 17]
        total = sum(counts)
        symbols = body[index + 17 : index + 17 + total]
        if len(counts) < 16 or len(symbols) < total:
            return "segment shorter than its tables"
        if total == 0:
            return "a table without codes"
        available = 1
        for count in counts:
            available = available * 2 - count
            if available < 0:
                return "code lengths over-subscribed"
        if len(set(symbols)) != total:
            return "duplicate symbols"
        if table_class == 0 and max(symbols) > 11:
            return f"DC symbol {max(symbols)} > 11"
        if table_class == 1 and any(symbol & 0x0F > 10 for symbol in symbols):
            return "AC symbol with a size > 10"
        defined.add((table_class, table_id))
        index += 17 + total
    return None


def _sos_problem(body: bytes, defined: set[tuple[int, int]]) -> str | None:
    if not body:
        return "empty scan header"
    count = body[0]
    if len(body) < 1 + 2 * count + 3:
        return "scan header shorter than its components"
    start, end = body[1 + 2 * count], body[2 + 2 * count]
    for index in range(count):
        tables = body[2 + 2 * index]
        if start == 0 and (0, tables >> 4) not in defined:
            return f"a scan uses undefined DC table {tables >> 4}"
        if end > 0 and (1, tables & 0x0F) not in defined:
            return f"a scan uses undefined AC table {tables & 0x0F}"
    return None
