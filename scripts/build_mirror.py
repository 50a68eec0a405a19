"""Build the offline Open Images mirror (``mirror/``) from freely licensed icon packages.

Deterministic: the same packages and ``mirror/catalog.yaml`` give byte-identical outputs. It
fetches nothing; get the three packages once (they are the sources named in
``mirror/ATTRIBUTION.md``) into one folder, by default ``.harmscan/mirror-src``::

    mkdir -p .harmscan/mirror-src && cd .harmscan/mirror-src
    apt-get download openclipart-png && dpkg -x openclipart-png_*.deb oc     # public domain
    npm pack emoji-datasource-twitter && mkdir tw && tar xzf emoji-datasource-twitter-*.tgz -C tw
    npm pack openmoji && mkdir om && tar xzf openmoji-*.tgz -C om             # CC BY-SA 4.0
    apt-get install -y librsvg2-bin                                           # rsvg-convert

then ``.venv/bin/python scripts/build_mirror.py [--src DIR]``. It rewrites ``mirror/metadata``,
``mirror/images``, ``mirror/expected.csv`` and the icon list of ``mirror/ATTRIBUTION.md``.
``mirror/metadata/harmscan/image-domains.csv`` (``ImageID,Domain``: emoji or illustration) is the
one file that Open Images does not have; the ETL reads it through ``openimages.domains_file``.

This file is the command line; the builder is the package ``scripts/mirror_build/`` (`icons`: the
three packages and loading their icons; `compose`: one composite image; `records`: the catalog's
images, ids and defects; `write`: the metadata, images, expected labels and icon list).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from mirror_build.icons import Icons  # noqa: E402
from mirror_build.records import group_records, special_record  # noqa: E402
from mirror_build.write import write_domains, write_outputs  # noqa: E402

MIRROR = REPO / "mirror"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--src", type=Path, default=REPO / ".harmscan/mirror-src")
    parser.add_argument("--catalog", type=Path, default=MIRROR / "catalog.yaml")
    parser.add_argument("--out", type=Path, default=MIRROR)
    parser.add_argument(
        "--domains-only", action="store_true", help="only (re)write the image-domains side file"
    )
    args = parser.parse_args(argv)
    cat = yaml.safe_load(args.catalog.read_text())
    if args.domains_only:
        print(f"wrote {write_domains(cat, args.out / 'metadata')}")
        return 0
    icons = Icons(args.src, args.src / ".svg-cache")
    icons.load_scenes(cat.get("backgrounds", []))
    records = group_records(cat, icons)
    records += [special_record(cat, spec, icons) for spec in cat["specials"]]
    write_outputs(cat, records, icons, args.out)
    total = sum(len(r.data or b"") for r in records)
    print(f"{len(records)} images, {total / 1e6:.1f} MB, {len(icons.used)} icons -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
