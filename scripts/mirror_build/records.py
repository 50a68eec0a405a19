"""The mirror's images from the catalog (``mirror/catalog.yaml``): ids, subsets, labels, bytes.

The composite groups (`group_records`) and the defects (`special_record`: corrupt, truncated,
missing, tiny, CMYK, EXIF-rotated). An image's id is a hash of the catalog's seed and its key, so
the same catalog gives the same ids.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from .compose import compose, jpeg
from .icons import Icons


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


def split_ref(item: str) -> tuple[str, list[str]]:
    """A catalog icon ``ref[=label]``: the ref and the extra label it brings, if any."""
    ref, _, label = item.partition("=")
    return ref, [label] if label else []


def make_id(seed: int, key: str) -> str:
    """An image id: the first 16 hex digits of sha256 of ``seed:key``."""
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:16]


def pick_subset(image_id: str, split: dict[str, float]) -> str:
    """The subset of ``image_id``, from its first 8 hex digits against the cumulative split."""
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
