"""Normalise one image of a package: open it (rendering SVGs), flatten it, re-encode it as JPEG."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

from PIL import Image, ImageOps

from .rcc import rcc_member

MAX_SIDE = 512
# sets of drawings are small: they have little detail
SET_MAX_SIDE = {
    "drawpool": 128,
    "iconpool": 128,
    "glyphpool": 128,
    "colourpool": 128,
    "vendorpool": 128,
    "iconcheck": 128,
}
SVG_SIDE = 128  # SVG emoji are rendered at this size (the PNG emoji are the packages' 64 px)
JPEG_QUALITY = 90


def iconify_svg(path: Path) -> bytes:
    """The SVG of one icon of an Iconify JSON file, ``.../icons.json#<name>``, drawn black."""
    file, _, name = str(path).partition("#")
    data = json.loads(Path(file).read_text(encoding="utf-8"))
    if name not in data["icons"]:
        raise KeyError(f"{file} has no icon {name!r}")
    icon = data["icons"][name]
    width, height = (
        icon.get("width", data.get("width", 16)),
        icon.get("height", data.get("height", 16)),
    )
    body = icon["body"].replace("currentColor", "#000")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}">{body}</svg>'
    ).encode()


def open_image(path: Path) -> Image.Image:
    """Open a raster image, or render an SVG at ``SVG_SIDE`` px (``rsvg-convert``).

    An Iconify JSON path (``icons.json#<name>``) renders that icon; an SVG that is not square
    keeps its aspect ratio (its longer side is ``SVG_SIDE``); ``<bundle>.rcc#<member>`` opens
    one image of a Qt resource bundle (`gateset_build.rcc`).
    """
    if ".rcc#" in str(path):
        return Image.open(io.BytesIO(rcc_member(path)))
    iconify = "#" in path.name
    if path.suffix != ".svg" and not iconify:
        return Image.open(path)
    svg = iconify_svg(path) if iconify else path.read_bytes()
    try:
        png = subprocess.run(
            ["rsvg-convert", "-a", "-w", str(SVG_SIDE), "-h", str(SVG_SIDE)],
            input=svg,
            check=True,
            capture_output=True,
        ).stdout
    except FileNotFoundError as err:
        raise RuntimeError("rsvg-convert is missing: apt-get install librsvg2-bin") from err
    return Image.open(io.BytesIO(png))


def encode(path: Path, max_side: int = MAX_SIDE, square: bool = False) -> tuple[bytes, int, int]:
    """The image as an upright RGB JPEG, at most ``max_side`` px (transparency on white).

    ``square`` pads it with white to a square first, so a centre crop keeps all of a drawing.
    """
    with open_image(path) as opened:
        image = ImageOps.exif_transpose(opened)
        if image.mode in ("RGBA", "LA", "P", "PA"):
            rgba = image.convert("RGBA")
            image = Image.new("RGBA", rgba.size, "white")
            image.alpha_composite(rgba)
        image = image.convert("RGB")
    if square and image.width != image.height:
        image = ImageOps.pad(image, (max(image.size),) * 2, color="white")
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue(), image.width, image.height
