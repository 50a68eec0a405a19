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
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import io
import json
import random
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from conf.settings import OpenImagesSettings  # noqa: E402
from harmscan.openimages import IMAGE_LIST_COLUMNS, MIRROR_DOMAINS_FILE  # noqa: E402
from harmscan.openimages import LABEL_COLUMNS as OIDV7_LABEL_COLUMNS  # noqa: E402

MIRROR = REPO / "mirror"
ROOT_ID = "/m/0bl9f"
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
IMAGE_COLUMNS = list(IMAGE_LIST_COLUMNS)
LABEL_COLUMNS = list(OIDV7_LABEL_COLUMNS)
SUBSETS = ("train", "validation", "test")
LABEL_FILE = {"train": "labels_train", "validation": "labels_validation", "test": "labels_test"}
IMAGE_FILE = {"train": "images_train", "validation": "images_validation", "test": "images_test"}


@dataclass
class Record:
    """One image of the mirror: its rows in the metadata and its bytes in the bucket."""

    image_id: str
    subset: str
    group: str
    expected: str
    labels: list[tuple[str, str, str]]  # (Source, display name, Confidence)
    refs: list[str]
    data: bytes | None = None
    defect: str = ""
    rotation: str = "0.0"
    extra: dict[str, Any] = field(default_factory=dict)


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


def split_ref(item: str) -> tuple[str, list[str]]:
    ref, _, label = item.partition("=")
    return ref, [label] if label else []


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
    size = (rng.randint(*size_range), rng.randint(*size_range))
    canvas = background(rng, size, icons.scenes)
    for ref in refs:
        scale = rng.uniform(0.45, 0.85) if len(refs) == 1 else rng.uniform(0.35, 0.55)
        paste_icon(rng, canvas, icons.load(ref), scale)
    return canvas


def jpeg(image: Image.Image, quality: int, **kwargs: Any) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality, optimize=True, **kwargs)
    return buf.getvalue()


def make_id(seed: int, key: str) -> str:
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:16]


def pick_subset(image_id: str, split: dict[str, float]) -> str:
    u = int(image_id[:8], 16) / 0xFFFFFFFF
    acc = 0.0
    for name, frac in split.items():
        acc += frac
        if u < acc:
            return name
    return name


def group_records(cat: dict[str, Any], icons: Icons) -> list[Record]:
    """The composite images of every group, with their labels."""
    seed, records = cat["seed"], []
    for group in cat["groups"]:
        for i in range(group["count"]):
            key = f"{group['name']}/{i}"
            rng = random.Random(f"{seed}:{key}")
            if "pairs" in group:
                pair = group["pairs"][i % len(group["pairs"])]
                parsed = [split_ref(p) for p in pair]
            else:
                parsed = [split_ref(group["icons"][i % len(group["icons"])])]
            refs = [r for r, _ in parsed]
            names = list(dict.fromkeys(group["labels"] + [n for _, ns in parsed for n in ns]))
            verifier = "verification" if rng.random() < 0.6 else "crowdsource-verification"
            labels = [(verifier, n, "1") for n in names]
            labels += [(verifier, n, "0") for n in group.get("negatives", [])]
            labels += [
                ("machine", n, rng.choice(["1", "0.9", "0.7"])) for n in group.get("machine", [])
            ]
            image = compose(rng, icons, refs, cat["size"])
            image_id = make_id(seed, key)
            records.append(
                Record(
                    image_id,
                    pick_subset(image_id, cat["subset_split"]),
                    group["name"],
                    group["expected"],
                    labels,
                    refs,
                    jpeg(image, cat["jpeg_quality"]),
                )
            )
    return records


def special_record(cat: dict[str, Any], spec: dict[str, Any], icons: Icons) -> Record:
    """One defect: corrupt bytes, a truncated JPEG, a missing key, tiny, CMYK or EXIF-rotated."""
    seed, kind = cat["seed"], spec["kind"]
    rng = random.Random(f"{seed}:special/{spec['name']}")
    refs = [spec["icon"]] if "icon" in spec else []
    labels = [("verification", n, "1") for n in spec["labels"]]
    image = compose(rng, icons, refs, cat["size"]) if refs else None
    data: bytes | None
    expected, rotation = "", "0.0"
    if kind == "corrupt":
        data, expected = rng.randbytes(rng.randint(2000, 6000)), "rejected:not_an_image"
    elif kind == "truncated":
        full = jpeg(image, cat["jpeg_quality"])
        data, expected = full[: len(full) * 3 // 5], "rejected:truncated"
    elif kind == "missing":
        data, expected = None, "missing"
    elif kind == "too_small":
        data, expected = jpeg(image.resize((32, 32)), cat["jpeg_quality"]), "rejected:too_small"
    elif kind == "cmyk":
        data = jpeg(image.convert("CMYK"), cat["jpeg_quality"])
    elif kind == "exif":
        # Stored sideways; the EXIF Orientation tag says how to turn it upright.
        turn = {6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}[spec["orientation"]]
        exif = Image.Exif()
        exif[0x0112] = spec["orientation"]
        data, rotation = jpeg(image.transpose(turn), cat["jpeg_quality"], exif=exif), ""
    else:
        raise ValueError(f"unknown special kind {kind!r}")
    side = expected or spec["expected"]
    return Record(
        make_id(seed, f"special/{spec['name']}"),
        spec["subset"],
        spec["name"],
        side,
        labels,
        refs,
        data,
        defect=kind,
        rotation=rotation,
    )


def hierarchy(cat: dict[str, Any]) -> dict[str, Any]:
    ids = cat["classes"]

    def node(item: Any) -> dict[str, Any]:
        if isinstance(item, str):
            return {"LabelName": ids[item]}
        ((name, body),) = item.items()
        out: dict[str, Any] = {"LabelName": ids[name]}
        if body.get("part"):
            out["Part"] = [node(x) for x in body["part"]]
        if body.get("sub"):
            out["Subcategory"] = [node(x) for x in body["sub"]]
        return out

    return {"LabelName": ROOT_ID, "Subcategory": [node(x) for x in cat["hierarchy"]]}


def image_row(rec: Record, icons: Icons) -> dict[str, str]:
    kinds = sorted({r.split(":", 1)[0] for r in rec.refs}) or ["oc"]
    strictest = next(k for k in ("om", "tw", "oc") if k in kinds)  # BY-SA > BY > public domain
    license_url = SOURCES[strictest][1]
    data = rec.data or f"missing:{rec.image_id}".encode()
    return {
        "ImageID": rec.image_id,
        "Subset": rec.subset,
        "OriginalURL": f"https://example.invalid/harmscan-mirror/{rec.group}/{rec.image_id}.jpg",
        "OriginalLandingURL": SOURCES[kinds[0]][3],
        "License": license_url,
        "AuthorProfileURL": SOURCES[kinds[0]][3],
        "Author": "; ".join(SOURCES[k][2] for k in kinds),
        "Title": " + ".join(icons.path(r).name for r in rec.refs) or f"{rec.group} (random bytes)",
        "OriginalSize": str(len(data)),
        "OriginalMD5": base64.b64encode(hashlib.md5(data).digest()).decode(),
        "Thumbnail300KURL": f"https://example.invalid/harmscan-mirror/thumb/{rec.image_id}.jpg",
        "Rotation": rec.rotation,
    }


def image_domain(refs: list[str]) -> str:
    """An image's domain: ``emoji`` when every icon is an emoji, else ``illustration``.

    Clip-art (``oc:``) makes a composite an illustration; an image with no icon (random bytes)
    is listed as an illustration too, so every listed image has a domain.
    """
    kinds = {ref.split(":", 1)[0] for ref in refs}
    return "emoji" if kinds and kinds <= {"tw", "om"} else "illustration"


def catalog_refs(cat: dict[str, Any]) -> dict[str, list[str]]:
    """ImageID -> icon refs of every image, straight from the catalog (no icon is loaded)."""
    seed, out = cat["seed"], {}
    for group in cat["groups"]:
        for i in range(group["count"]):
            if "pairs" in group:
                items = group["pairs"][i % len(group["pairs"])]
            else:
                items = [group["icons"][i % len(group["icons"])]]
            out[make_id(seed, f"{group['name']}/{i}")] = [split_ref(x)[0] for x in items]
    for spec in cat["specials"]:
        out[make_id(seed, f"special/{spec['name']}")] = [spec["icon"]] if "icon" in spec else []
    return out


def write_domains(cat: dict[str, Any], meta: Path) -> Path:
    """Write the side file ``ImageID,Domain`` below the metadata root."""
    path = meta / MIRROR_DOMAINS_FILE
    rows = [
        {"ImageID": image_id, "Domain": image_domain(refs)}
        for image_id, refs in sorted(catalog_refs(cat).items())
    ]
    write_csv(path, ["ImageID", "Domain"], rows)
    return path


def write_csv(path: Path, columns: list[str], rows: list[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def write_outputs(cat: dict[str, Any], records: list[Record], icons: Icons, out: Path) -> None:
    files = OpenImagesSettings().metadata_files
    ids = cat["classes"]
    for sub in ("metadata", "images"):
        shutil.rmtree(out / sub, ignore_errors=True)
    meta = out / "metadata"
    classes = sorted(ids.items(), key=lambda kv: kv[1])
    write_csv(
        meta / files["class_descriptions"],
        ["LabelName", "DisplayName"],
        [{"LabelName": i, "DisplayName": n} for n, i in classes],
    )
    (meta / files["hierarchy"]).parent.mkdir(parents=True, exist_ok=True)
    (meta / files["hierarchy"]).write_text(json.dumps(hierarchy(cat), indent=4) + "\n")
    for subset in SUBSETS:
        recs = sorted((r for r in records if r.subset == subset), key=lambda r: r.image_id)
        rows = [
            {"ImageID": r.image_id, "Source": s, "LabelName": ids[n], "Confidence": c}
            for r in recs
            for s, n, c in sorted(r.labels, key=lambda x: (ids[x[1]], x[0]))
        ]
        write_csv(meta / files[LABEL_FILE[subset]], LABEL_COLUMNS, rows)
        write_csv(
            meta / files[IMAGE_FILE[subset]], IMAGE_COLUMNS, [image_row(r, icons) for r in recs]
        )
        for r in recs:
            if r.data is not None:
                path = out / "images" / subset / f"{r.image_id}.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(r.data)
    write_domains(cat, meta)
    write_csv(
        out / "expected.csv",
        ["ImageID", "Subset", "Group", "Expected", "Defect"],
        [
            {
                "ImageID": r.image_id,
                "Subset": r.subset,
                "Group": r.group,
                "Expected": r.expected,
                "Defect": r.defect,
            }
            for r in sorted(records, key=lambda r: r.image_id)
        ],
    )
    write_icon_list(icons, out / "ATTRIBUTION.md")


def write_icon_list(icons: Icons, path: Path) -> None:
    marker = "<!-- icons:generated -->"
    head = path.read_text().split(marker)[0] if path.exists() else "# Attribution\n\n"
    lines = [
        f"- `{ref}` — {SOURCES[ref.split(':')[0]][0]}, {icons.path(ref).name}, "
        f"{SOURCES[ref.split(':')[0]][1]}"
        for ref in sorted(icons.used)
    ]
    path.write_text(head + marker + "\n\n" + "\n".join(lines) + "\n")


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
