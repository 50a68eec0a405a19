"""Compose one mirror image: icons pasted at random over a random background, saved as JPEG.

Every random choice comes from the ``random.Random`` passed in, so an image is a function of its
seed and key.
"""

from __future__ import annotations

import io
import random
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

from .icons import Icons


def background(rng: random.Random, size: tuple[int, int], scenes: list[Image.Image]) -> Image.Image:
    """A random background: solid, gradient, noise, stripes, soft blobs or a clip-art scene."""
    w, h = size
    c1 = tuple(rng.randrange(256) for _ in range(3))
    c2 = tuple(rng.randrange(256) for _ in range(3))
    kind = rng.choice(["solid", "gradient", "noise", "stripes", "blobs", "scene", "scene"])
    image = Image.new("RGB", size, c1)
    if kind == "scene" and scenes:
        return scene_crop(rng, image, rng.choice(scenes))
    draw = ImageDraw.Draw(image)
    if kind == "gradient":
        for y in range(h):
            t = y / max(1, h - 1)
            draw.line(
                [(0, y), (w, y)],
                fill=tuple(int(a + (b - a) * t) for a, b in zip(c1, c2, strict=True)),
            )
    elif kind == "noise":
        sigma = rng.uniform(20, 80)
        grey = np.random.default_rng(rng.getrandbits(32)).normal(128, sigma, (h, w))
        noise = Image.fromarray(grey.clip(0, 255).astype(np.uint8)).convert("RGB")
        image = Image.blend(image, noise, 0.35).filter(ImageFilter.GaussianBlur(rng.uniform(0, 2)))
    elif kind == "stripes":
        step = rng.randint(8, 32)
        for x in range(-h, w, step * 2):
            draw.polygon([(x, 0), (x + step, 0), (x + step + h, h), (x + h, h)], fill=c2)
    elif kind == "blobs":
        for _ in range(rng.randint(3, 9)):
            x, y, r = rng.randrange(w), rng.randrange(h), rng.randint(10, 60)
            draw.ellipse(
                [x - r, y - r, x + r, y + r], fill=tuple(rng.randrange(256) for _ in range(3))
            )
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(2, 6)))
    return image


def scene_crop(rng: random.Random, base: Image.Image, scene: Image.Image) -> Image.Image:
    """A random crop of a clip-art scene (patterns, buildings) over ``base``, filling it."""
    w, h = base.size
    zoom = rng.uniform(1.0, 2.5)
    cw, ch = min(scene.width, int(scene.width / zoom)), min(scene.height, int(scene.height / zoom))
    x, y = rng.randint(0, scene.width - cw), rng.randint(0, scene.height - ch)
    crop = scene.crop((x, y, x + cw, y + ch)).resize((w, h), Image.Resampling.BILINEAR)
    base.paste(crop, (0, 0), crop)
    return base


def paste_icon(rng: random.Random, canvas: Image.Image, icon: Image.Image, scale: float) -> None:
    """Paste icon at a random scale, rotation, flip, colour and position."""
    side = min(canvas.size) * scale
    factor = side / max(icon.size)
    icon = icon.resize(
        (max(1, int(icon.width * factor)), max(1, int(icon.height * factor))),
        Image.Resampling.LANCZOS,
    )
    if rng.random() < 0.5:
        icon = icon.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    icon = icon.rotate(rng.uniform(-30, 30), resample=Image.Resampling.BICUBIC, expand=True)
    rgb = ImageEnhance.Brightness(icon.convert("RGB")).enhance(rng.uniform(0.8, 1.2))
    rgb = ImageEnhance.Color(rgb).enhance(rng.uniform(0.7, 1.3))
    icon = Image.merge("RGBA", (*rgb.split(), icon.getchannel("A")))
    x = rng.randint(-icon.width // 8, max(-icon.width // 8, canvas.width - icon.width * 7 // 8))
    y = rng.randint(-icon.height // 8, max(-icon.height // 8, canvas.height - icon.height * 7 // 8))
    canvas.paste(icon, (x, y), icon)


def compose(
    rng: random.Random, icons: Icons, refs: list[str], size_range: list[int]
) -> Image.Image:
    """A canvas of random size and background with the icons ``refs`` pasted on it."""
    size = (rng.randint(*size_range), rng.randint(*size_range))
    canvas = background(rng, size, icons.scenes)
    for ref in refs:
        scale = rng.uniform(0.45, 0.85) if len(refs) == 1 else rng.uniform(0.35, 0.55)
        paste_icon(rng, canvas, icons.load(ref), scale)
    return canvas


def jpeg(image: Image.Image, quality: int, **kwargs: Any) -> bytes:
    """``image`` as optimised JPEG bytes (``kwargs`` go to ``Image.save``, e.g. ``exif``)."""
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality, optimize=True, **kwargs)
    return buf.getvalue()
