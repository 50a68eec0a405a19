"""The three icon packages of the mirror: who made them, their licences, and loading their icons.

An icon is named by a ref ``<kind>:<name>``: ``oc:`` a clip-art PNG of openclipart-png (Debian),
``tw:`` a Twemoji PNG of emoji-datasource-twitter (npm), ``om:`` an OpenMoji SVG of openmoji
(npm), rendered with ``rsvg-convert``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from PIL import Image

# kind -> (package, licence URL, author, landing page)
SOURCES = {
    "oc": (
        "openclipart-png (Debian)",
        "https://creativecommons.org/licenses/publicdomain/",
        "Openclipart contributors",
        "https://openclipart.org/",
    ),
    "tw": (
        "emoji-datasource-twitter (npm), Twemoji",
        "https://creativecommons.org/licenses/by/4.0/",
        "Twitter, Inc and other contributors",
        "https://github.com/jdecked/twemoji",
    ),
    "om": (
        "openmoji (npm)",
        "https://creativecommons.org/licenses/by-sa/4.0/",
        "OpenMoji contributors",
        "https://openmoji.org/",
    ),
}


class Icons:
    """Loads icons from the three extracted packages, cropped to their visible part."""

    def __init__(self, src: Path, cache: Path) -> None:
        self.src, self.cache = src, cache
        self.cache.mkdir(parents=True, exist_ok=True)
        self._memo: dict[str, Image.Image] = {}
        self.used: set[str] = set()
        self.scenes: list[Image.Image] = []

    def load_scenes(self, patterns: list[str]) -> None:
        """Load the background scenes named by ``oc:`` glob patterns (sorted, so deterministic)."""
        base = self.src / "oc/usr/share/openclipart/png"
        for pattern in patterns:
            kind, glob = pattern.split(":", 1)
            if kind != "oc":
                raise ValueError(f"backgrounds come from oc: only, got {pattern!r}")
            for path in sorted(base.glob(glob)):
                image = Image.open(path).convert("RGBA")
                image.thumbnail((512, 512), Image.Resampling.LANCZOS)
                self.scenes.append(image)
                self.used.add(f"oc:{path.relative_to(base).as_posix()}")

    def path(self, ref: str) -> Path:
        """Where the icon ``ref`` (``oc:``, ``tw:`` or ``om:``) is in the extracted packages."""
        kind, name = ref.split(":", 1)
        if kind == "oc":
            return self.src / "oc/usr/share/openclipart/png" / name
        if kind == "tw":
            base = self.src / "tw/package/img/twitter/64"
            for cand in (f"{name.lower()}.png", f"{name.lower()}-fe0f.png"):
                if (base / cand).exists():
                    return base / cand
            return base / f"{name.lower()}.png"
        if kind == "om":
            return self.src / "om/package/color/svg" / f"{name.upper()}.svg"
        raise ValueError(f"unknown icon source {kind!r} in {ref!r}; valid: oc, tw, om")

    def load(self, ref: str) -> Image.Image:
        """The icon ``ref`` as RGBA, at most 320 px, cropped to its visible part (memoised)."""
        if ref not in self._memo:
            path = self.path(ref)
            if not path.exists():
                raise FileNotFoundError(f"icon {ref} not found at {path}; see the module docstring")
            if path.suffix == ".svg":
                out = self.cache / f"{path.stem}.png"
                if not out.exists():
                    subprocess.run(
                        ["rsvg-convert", "-w", "256", "-h", "256", str(path), "-o", str(out)],
                        check=True,
                    )
                path = out
            image = Image.open(path).convert("RGBA")
            image.thumbnail((320, 320), Image.Resampling.LANCZOS)
            bbox = image.getchannel("A").point(lambda a: 255 if a > 8 else 0).getbbox()
            self._memo[ref] = image.crop(bbox) if bbox else image
            self.used.add(ref)
        return self._memo[ref]
