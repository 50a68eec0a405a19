"""Why bytes did not open as an accepted image: a cut or broken header, or a refused format.

Pillow only says that no format recognised the bytes; these probes name the format (EPS, PDF, SVG,
HEIC, a compressed file...) or the header's problem, so the refusal tells the client what to fix.
"""

from __future__ import annotations

import io
import re
import struct
import warnings
from typing import Final

from PIL import Image

from harmscan.imagepolicy import ALLOWED_FORMATS, ImageRejected

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


def unidentified(data: bytes, formats: tuple[str, ...] = ALLOWED_FORMATS) -> ImageRejected:
    """Why no accepted format opened ``data``: a claimed but broken header, a refused format
    (``unsupported_format``, named), or ``not_an_image``."""
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
