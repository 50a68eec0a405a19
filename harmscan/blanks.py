"""Images with nothing in them: plain colours, gentle gradients and faint noise.

A user's upload can be empty (a spacer pixel, a fully transparent PNG composited onto white, a
failed render, a plain background). `blank_images` draws such images from a seed: the pool the
probe trains on (``blankpool/``, `scripts/blank_pool.py`) and the held-out check of the
behavioural tests come from different seeds. Pure: no file is read or written here.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from typing import Final

import numpy as np
from PIL import Image

KINDS: Final = ("plain", "gradient", "noise")
# Colour families, each (lightness range, saturation range) in HLS; the hue is drawn freely.
FAMILIES: Final[dict[str, tuple[tuple[float, float], tuple[float, float]]]] = {
    "white": ((0.93, 1.0), (0.0, 0.15)),
    "grey": ((0.15, 0.93), (0.0, 0.05)),
    "tint": ((0.82, 0.96), (0.25, 0.7)),
    "pastel": ((0.72, 0.9), (0.3, 0.9)),
    "dark": ((0.0, 0.15), (0.0, 0.5)),
    "bright": ((0.35, 0.65), (0.5, 1.0)),
}


@dataclass(frozen=True)
class Blank:
    """One generated image: a short name, what it shows, and the picture."""

    name: str
    subject: str
    image: Image.Image


def _colour(rng: np.random.Generator, family: str) -> tuple[int, int, int]:
    (lo_l, hi_l), (lo_s, hi_s) = FAMILIES[family]
    hue, light, sat = rng.uniform(0, 1), rng.uniform(lo_l, hi_l), rng.uniform(lo_s, hi_s)
    r, g, b = colorsys.hls_to_rgb(hue, light, sat)
    return round(r * 255), round(g * 255), round(b * 255)


def _pixels(
    rng: np.random.Generator, kind: str, rgb: tuple[int, int, int], side: int
) -> Image.Image:
    base = np.broadcast_to(np.array(rgb, dtype=np.float64), (side, side, 3))
    if kind == "gradient":  # towards a colour at most ~12 % away, in a random direction
        other = np.clip(np.array(rgb) + rng.uniform(-30, 30, size=3), 0, 255)
        angle = rng.uniform(0, 2 * np.pi)
        y, x = np.mgrid[0:side, 0:side] / max(1, side - 1)
        t = (np.cos(angle) * x + np.sin(angle) * y)[..., None]
        t = (t - t.min()) / max(1e-9, float(t.max() - t.min()))
        base = base * (1 - t) + other * t
    elif kind == "noise":  # paper grain or sensor noise
        base = base + rng.normal(0, rng.uniform(2, 8), size=(side, side, 3))
    return Image.fromarray(np.clip(base + 0.5, 0, 255).astype(np.uint8), "RGB")


def blank_images(seed: int, count: int, side: int = 128) -> list[Blank]:
    """``count`` blank images of ``side`` px drawn from ``seed``: the kinds and colour families
    in turn (so every pairing appears), each with a colour of its own; the first two are plain
    white and plain black, the commonest empty images."""
    rng = np.random.default_rng(seed)
    families = list(FAMILIES)
    out = [
        Blank("plain-white", "plain white", Image.new("RGB", (side, side), (255, 255, 255))),
        Blank("plain-black", "plain black", Image.new("RGB", (side, side), (0, 0, 0))),
    ]
    index = 0
    while len(out) < count:
        kind = KINDS[index % len(KINDS)]
        family = families[(index // len(KINDS)) % len(families)]
        rgb = _colour(rng, family)
        name = f"{kind}-{family}-{index:03d}"
        subject = f"{kind} {family} (#{rgb[0]:02x}{rgb[1]:02x}{rgb[2]:02x})"
        out.append(Blank(name, subject, _pixels(rng, kind, rgb, side)))
        index += 1
    return out[:count]
