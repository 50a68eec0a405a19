"""Write the mirror: Open Images metadata CSVs and hierarchy, the images, ``expected.csv``, the
image-domains side file and the icon list of ``ATTRIBUTION.md``."""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from conf.settings import OpenImagesSettings
from harmscan.openimages import IMAGE_LIST_COLUMNS, MIRROR_DOMAINS_FILE
from harmscan.openimages import LABEL_COLUMNS as OIDV7_LABEL_COLUMNS

from .icons import SOURCES, Icons
from .records import Record, catalog_refs

ROOT_ID = "/m/0bl9f"
IMAGE_COLUMNS = list(IMAGE_LIST_COLUMNS)
LABEL_COLUMNS = list(OIDV7_LABEL_COLUMNS)
SUBSETS = ("train", "validation", "test")
LABEL_FILE = {"train": "labels_train", "validation": "labels_validation", "test": "labels_test"}
IMAGE_FILE = {"train": "images_train", "validation": "images_validation", "test": "images_test"}


def hierarchy(cat: dict[str, Any]) -> dict[str, Any]:
    """The catalog's class tree as Open Images' hierarchy JSON, below the root entity."""
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
    """``rec``'s row of the image list: licence and author of its strictest icon source."""
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
    """Write ``rows`` under a header of ``columns`` (``\\n`` line ends), creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def write_outputs(cat: dict[str, Any], records: list[Record], icons: Icons, out: Path) -> None:
    """Replace ``out``'s metadata and images, and rewrite its expected labels and icon list."""
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
        write_subset(subset, recs, ids, icons, out, files)
    write_domains(cat, meta)
    write_expected(records, out / "expected.csv")
    write_icon_list(icons, out / "ATTRIBUTION.md")


def write_subset(
    subset: str,
    recs: list[Record],
    ids: dict[str, str],
    icons: Icons,
    out: Path,
    files: dict[str, str],
) -> None:
    """One subset's label and image lists (``out/metadata``) and its images (``out/images``)."""
    meta = out / "metadata"
    rows = [
        {"ImageID": r.image_id, "Source": s, "LabelName": ids[n], "Confidence": c}
        for r in recs
        for s, n, c in sorted(r.labels, key=lambda x: (ids[x[1]], x[0]))
    ]
    write_csv(meta / files[LABEL_FILE[subset]], LABEL_COLUMNS, rows)
    write_csv(meta / files[IMAGE_FILE[subset]], IMAGE_COLUMNS, [image_row(r, icons) for r in recs])
    for r in recs:
        if r.data is not None:
            path = out / "images" / subset / f"{r.image_id}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(r.data)


def write_expected(records: list[Record], path: Path) -> None:
    """``expected.csv``: what the pipeline must make of each image (by id)."""
    write_csv(
        path,
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


def write_icon_list(icons: Icons, path: Path) -> None:
    """Rewrite the generated icon list of ``ATTRIBUTION.md`` (below its marker): icons used."""
    marker = "<!-- icons:generated -->"
    head = path.read_text().split(marker)[0] if path.exists() else "# Attribution\n\n"
    lines = [
        f"- `{ref}` — {SOURCES[ref.split(':')[0]][0]}, {icons.path(ref).name}, "
        f"{SOURCES[ref.split(':')[0]][1]}"
        for ref in sorted(icons.used)
    ]
    path.write_text(head + marker + "\n\n" + "\n".join(lines) + "\n")
