"""The offline Open Images mirror: its servers speak the real protocols, its files the real formats.

Runs against the real loopback servers of ``tests/fixtures/mirror.py`` (the metadata HTTP server
and moto's S3 server), with unsigned boto3 clients as the ETL uses for the public bucket.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
from PIL import Image

from conf.settings import OpenImagesSettings
from harmscan.imageio import decode_image
from harmscan.imagepolicy import ImageRejected
from stack.mirror_metadata import _parse_range
from tests.fixtures.mirror import EXPECTED_CSV, IMAGES_DIR, METADATA_DIR, MirrorOverrides

FILES = OpenImagesSettings().metadata_files
LABEL_COLUMNS = ["ImageID", "Source", "LabelName", "Confidence"]
IMAGE_COLUMNS = [
    "ImageID",
    "Subset",
    "OriginalURL",
    "OriginalLandingURL",
    "License",
    "AuthorProfileURL",
    "Author",
    "Title",
    "OriginalSize",
    "OriginalMD5",
    "Thumbnail300KURL",
    "Rotation",
]
SUBSETS = ("train", "validation", "test")
LABEL_KEYS = {"train": "labels_train", "validation": "labels_validation", "test": "labels_test"}
IMAGE_KEYS = {"train": "images_train", "validation": "images_validation", "test": "images_test"}
# Real Open Images class ids (published class-descriptions files).
REAL_IDS = {
    "Handgun": "/m/0gxl3",
    "Rifle": "/m/06c54",
    "Knife": "/m/04ctx",
    "Kitchen knife": "/m/058qzx",
    "Dagger": "/m/02gzp",
    "Sword": "/m/06y5r",
    "Weapon": "/m/083kb",
    "Blood": "/m/019jw",
    "Explosion": "/m/014zdl",
    "Bloodhound": "/m/018z4d",
    "Person": "/m/01g317",
    "Dog": "/m/0bt9lr",
    "Cat": "/m/01yrx",
    "Tree": "/m/07j7r",
    "Bicycle": "/m/0199g",
    "Car": "/m/0k4j",
}
HARMFUL_IDS = {
    REAL_IDS[n]
    for n in (
        "Handgun",
        "Rifle",
        "Knife",
        "Kitchen knife",
        "Dagger",
        "Sword",
        "Weapon",
        "Blood",
        "Explosion",
    )
} | {"/m/0ct4f"}


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def _http(url: str, method: str = "GET", **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def _unsigned(endpoint: str):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        config=Config(signature_version=UNSIGNED),
    )


@pytest.fixture(scope="module")
def expected() -> list[dict[str, str]]:
    return _read_csv(EXPECTED_CSV)[1]


@pytest.fixture(scope="module")
def labels() -> dict[str, list[dict[str, str]]]:
    """ImageID -> its label rows, over all subsets."""
    out: dict[str, list[dict[str, str]]] = defaultdict(list)
    for subset in SUBSETS:
        for row in _read_csv(METADATA_DIR / FILES[LABEL_KEYS[subset]])[1]:
            out[row["ImageID"]].append(row)
    return out


# ---- the metadata server -------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(FILES))
def test_every_metadata_file_is_served_with_length_and_etag(
    mirror_servers: MirrorOverrides, key: str
) -> None:
    local = (METADATA_DIR / FILES[key]).read_bytes()
    status, headers, body = _http(f"{mirror_servers.metadata_url}/{FILES[key]}")
    assert status == 200
    assert body == local
    assert int(headers["Content-Length"]) == len(local)
    assert headers["ETag"] == f'"{hashlib.md5(local).hexdigest()}"'


def test_head_has_length_and_no_body(mirror_servers: MirrorOverrides) -> None:
    path = FILES["class_descriptions"]
    status, headers, body = _http(f"{mirror_servers.metadata_url}/{path}", method="HEAD")
    assert (status, body) == (200, b"")
    assert int(headers["Content-Length"]) == (METADATA_DIR / path).stat().st_size
    assert headers["Accept-Ranges"] == "bytes"


@pytest.mark.parametrize(
    ("header", "start", "stop"),
    [
        ("bytes=0-99", 0, 100),
        ("bytes=10-", 10, None),
        ("bytes=-50", -50, None),
        ("bytes=5-5", 5, 6),
        ("bytes=100-999999999", 100, None),
    ],
)
def test_range_requests_answer_206_with_the_slice(
    mirror_servers: MirrorOverrides, header: str, start: int, stop: int | None
) -> None:
    path = FILES["labels_validation"]
    local = (METADATA_DIR / path).read_bytes()
    status, headers, body = _http(f"{mirror_servers.metadata_url}/{path}", Range=header)
    assert status == 206
    assert body == local[start:stop]
    first = len(local) + start if start < 0 else start
    assert headers["Content-Range"] == f"bytes {first}-{first + len(body) - 1}/{len(local)}"


def test_unsatisfiable_range_is_416_and_missing_file_404(mirror_servers: MirrorOverrides) -> None:
    path = FILES["hierarchy"]
    size = (METADATA_DIR / path).stat().st_size
    status, headers, _ = _http(f"{mirror_servers.metadata_url}/{path}", Range=f"bytes={size}-")
    assert status == 416
    assert headers["Content-Range"] == f"bytes */{size}"
    assert _http(f"{mirror_servers.metadata_url}/v7/no-such-file.csv")[0] == 404
    assert _http(f"{mirror_servers.metadata_url}/v7/")[0] == 404


def test_if_none_match_with_the_etag_is_304(mirror_servers: MirrorOverrides) -> None:
    url = f"{mirror_servers.metadata_url}/{FILES['class_descriptions']}"
    etag = _http(url, method="HEAD")[1]["ETag"]
    assert _http(url, **{"If-None-Match": etag})[0] == 304
    assert _http(url, **{"If-None-Match": '"stale"'})[0] == 200


@pytest.mark.parametrize(
    ("header", "size", "want"),
    [
        ("bytes=0-0", 10, (0, 0)),
        ("bytes=-3", 10, (7, 9)),
        ("bytes=-30", 10, (0, 9)),
        ("bytes=9-", 10, (9, 9)),
        ("bytes=10-", 10, None),
        ("bytes=5-2", 10, None),
        ("bytes=-", 10, None),
        ("items=0-1", 10, None),
        ("bytes=0-1,3-4", 10, None),
    ],
)
def test_parse_range(header: str, size: int, want: tuple[int, int] | None) -> None:
    assert _parse_range(header, size) == want


# ---- the S3 server ---------------------------------------------------------------------------


def test_unsigned_get_object_with_the_real_key_layout(mirror_servers: MirrorOverrides) -> None:
    client = _unsigned(mirror_servers.s3_endpoint)
    local = sorted(IMAGES_DIR.rglob("*.jpg"))
    for path in (local[0], local[len(local) // 2], local[-1]):
        key = path.relative_to(IMAGES_DIR).as_posix()
        assert re.fullmatch(r"(train|validation|test)/[0-9a-f]{16}\.jpg", key)
        body = client.get_object(Bucket=mirror_servers.bucket, Key=key)["Body"].read()
        assert body == path.read_bytes()
    listed = sum(
        page.get("KeyCount", 0)
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=mirror_servers.bucket)
    )
    assert listed == len(local)


def test_missing_keys_are_absent_from_the_bucket(
    mirror_servers: MirrorOverrides, expected: list[dict[str, str]]
) -> None:
    client = _unsigned(mirror_servers.s3_endpoint)
    missing = [r for r in expected if r["Defect"] == "missing"]
    assert len(missing) >= 3
    for row in missing:
        with pytest.raises(ClientError) as info:
            client.get_object(
                Bucket=mirror_servers.bucket, Key=f"{row['Subset']}/{row['ImageID']}.jpg"
            )
        assert info.value.response["Error"]["Code"] in {"NoSuchKey", "404"}


def test_mirror_bucket_is_fresh_and_separate(
    mirror_bucket: MirrorOverrides, mirror_servers: MirrorOverrides
) -> None:
    assert mirror_bucket.bucket != mirror_servers.bucket
    assert f"openimages.bucket={mirror_bucket.bucket}" in mirror_bucket
    client = _unsigned(mirror_bucket.s3_endpoint)
    key = sorted(IMAGES_DIR.rglob("*.jpg"))[0].relative_to(IMAGES_DIR).as_posix()
    assert client.head_object(Bucket=mirror_bucket.bucket, Key=key)["ContentLength"] > 0


# ---- the files: exact OIDv7 formats ---------------------------------------------------------


def test_class_descriptions_have_real_ids_and_unique_names() -> None:
    columns, rows = _read_csv(METADATA_DIR / FILES["class_descriptions"])
    assert columns == ["LabelName", "DisplayName"]
    by_name = {r["DisplayName"]: r["LabelName"] for r in rows}
    assert len(by_name) == len(rows)
    for name, label_id in REAL_IDS.items():
        assert by_name[name] == label_id, name


def test_hierarchy_has_the_real_root_and_edges() -> None:
    tree = json.loads((METADATA_DIR / FILES["hierarchy"]).read_text())
    assert tree["LabelName"] == "/m/0bl9f"
    children: dict[str, set[str]] = defaultdict(set)

    def walk(node: dict) -> None:
        for kind in ("Subcategory", "Part"):
            for child in node.get(kind, []):
                assert set(child) <= {"LabelName", "Subcategory", "Part"}
                if kind == "Subcategory":
                    children[node["LabelName"]].add(child["LabelName"])
                walk(child)

    walk(tree)
    assert {"/m/0gxl3", "/m/06c54", "/m/06nrc", "/m/04ctx", "/m/02gzp", "/m/06y5r"} <= children[
        "/m/083kb"
    ]
    assert {"/m/0bt9lr", "/m/01yrx"} <= children["/m/01lrl"]  # Carnivore > Dog, Cat
    assert (
        "/m/058qzx" not in children["/m/04ctx"]
    )  # as in the real file: Kitchen knife is Tableware
    known = {r["LabelName"] for r in _read_csv(METADATA_DIR / FILES["class_descriptions"])[1]}
    assert set(children) | {c for cs in children.values() for c in cs} <= known | {"/m/0bl9f"}


@pytest.mark.parametrize("subset", SUBSETS)
def test_label_and_image_lists_have_the_exact_columns(subset: str) -> None:
    label_cols, label_rows = _read_csv(METADATA_DIR / FILES[LABEL_KEYS[subset]])
    image_cols, image_rows = _read_csv(METADATA_DIR / FILES[IMAGE_KEYS[subset]])
    assert label_cols == LABEL_COLUMNS
    assert image_cols == IMAGE_COLUMNS
    known = {r["LabelName"] for r in _read_csv(METADATA_DIR / FILES["class_descriptions"])[1]}
    ids = {r["ImageID"] for r in image_rows}
    assert all(re.fullmatch(r"[0-9a-f]{16}", i) for i in ids)
    assert {r["Subset"] for r in image_rows} == {subset}
    assert {r["ImageID"] for r in label_rows} <= ids
    assert {r["LabelName"] for r in label_rows} <= known
    assert {r["Confidence"] for r in label_rows} <= {"0", "1", "0.9", "0.7"}
    assert all(r["License"].startswith("https://creativecommons.org/") for r in image_rows)


def test_every_image_row_describes_its_object() -> None:
    import base64

    for subset in SUBSETS:
        for row in _read_csv(METADATA_DIR / FILES[IMAGE_KEYS[subset]])[1]:
            path = IMAGES_DIR / subset / f"{row['ImageID']}.jpg"
            if path.exists():
                data = path.read_bytes()
                assert int(row["OriginalSize"]) == len(data)
                assert row["OriginalMD5"] == base64.b64encode(hashlib.md5(data).digest()).decode()
            if ".svg" in row["Title"]:  # an OpenMoji adaptation: share-alike
                assert row["License"] == "https://creativecommons.org/licenses/by-sa/4.0/"


# ---- the traps the ETL must handle ----------------------------------------------------------


def test_decoys_mixed_negatives_and_machine_rows_are_present(
    expected: list[dict[str, str]], labels: dict[str, list[dict[str, str]]]
) -> None:
    groups = defaultdict(list)
    for row in expected:
        groups[row["Group"]].append(row["ImageID"])
    for image_id in groups["bloodhound"] + groups["bloodhound-only"]:
        names = {r["LabelName"] for r in labels[image_id]}
        assert REAL_IDS["Bloodhound"] in names
        assert not names & HARMFUL_IDS
    for image_id in groups["mixed"]:
        positive = {r["LabelName"] for r in labels[image_id] if r["Confidence"] == "1"}
        assert positive & HARMFUL_IDS
        assert positive - HARMFUL_IDS
    rows = [r for rs in labels.values() for r in rs]
    assert any(r["Confidence"] == "0" and r["LabelName"] in HARMFUL_IDS for r in rows)
    machine = [r for r in rows if r["Source"] == "machine"]
    assert any(r["LabelName"] in HARMFUL_IDS and r["Confidence"] == "1" for r in machine)
    assert all(
        e["Expected"] == "safe"
        for e in expected
        if any(r["Source"] == "machine" for r in labels[e["ImageID"]])
    )


def _default_sides() -> dict[str, str]:
    """Class id -> side for conf/default.yaml's class sets, expanded by Subcategory edges.

    Written independently of harmscan.openimages, so the mirror's expected.csv is checked
    against the files themselves, not against the code under test.
    """
    from conf.loader import load_settings

    classes = load_settings("ci", env={}).classes
    rows = _read_csv(METADATA_DIR / FILES["class_descriptions"])[1]
    ids = {r["DisplayName"]: r["LabelName"] for r in rows}
    children: dict[str, set[str]] = defaultdict(set)
    stack = [json.loads((METADATA_DIR / FILES["hierarchy"]).read_text())]
    while stack:
        node = stack.pop()
        for child in node.get("Subcategory", []):
            children[node["LabelName"]].add(child["LabelName"])
            stack.append(child)

    def expand(names: list[str]) -> set[str]:
        out, todo = set(), [ids[n] for n in names]
        while todo:
            label = todo.pop()
            if label not in out:
                out.add(label)
                todo.extend(children[label])
        return out

    sides = dict.fromkeys(expand(classes.safe), "safe")
    sides.update(dict.fromkeys(expand(classes.never_safe), "never_safe"))
    sides.update(dict.fromkeys(expand(classes.harmful), "harmful"))
    return sides


def test_expected_follows_from_human_labels_and_hierarchy(
    expected: list[dict[str, str]], labels: dict[str, list[dict[str, str]]]
) -> None:
    sides = _default_sides()
    seen = Counter()
    for row in expected:
        positive = {
            sides.get(r["LabelName"], "none")
            for r in labels[row["ImageID"]]
            if r["Confidence"] == "1" and r["Source"] != "machine"
        }
        side = (
            "harmful"
            if "harmful" in positive
            else "none"
            if "never_safe" in positive
            else "safe"
            if "safe" in positive
            else "none"
        )
        if row["Expected"] in {"harmful", "safe", "none"}:
            assert side == row["Expected"], row
        else:  # a defect: its labels make it a candidate, so the ETL must meet it
            assert side in {"harmful", "safe"}, row
        seen[row["Expected"]] += 1
    assert seen["none"] >= 10
    assert seen["missing"] >= 3


@pytest.mark.parametrize(
    ("defect", "reason"),
    [("corrupt", "not_an_image"), ("truncated", "truncated"), ("too_small", "too_small")],
)
def test_broken_objects_are_rejected_for_the_intended_reason(
    expected: list[dict[str, str]], defect: str, reason: str
) -> None:
    rows = [r for r in expected if r["Defect"] == defect]
    assert rows
    for row in rows:
        data = (IMAGES_DIR / row["Subset"] / f"{row['ImageID']}.jpg").read_bytes()
        with pytest.raises(ImageRejected) as info:
            decode_image(data, min_side=48)
        assert info.value.reason == reason
        assert row["Expected"] == f"rejected:{reason}"


def test_cmyk_and_exif_images_are_valid_and_need_converting(expected: list[dict[str, str]]) -> None:
    kinds = Counter()
    for row in expected:
        if row["Defect"] not in {"cmyk", "exif"}:
            continue
        data = (IMAGES_DIR / row["Subset"] / f"{row['ImageID']}.jpg").read_bytes()
        raw = Image.open(io.BytesIO(data))
        decoded = decode_image(data, min_side=48)
        assert decoded.mode == "RGB"
        if row["Defect"] == "cmyk":
            assert raw.mode == "CMYK"
        else:
            assert raw.getexif()[0x0112] in {6, 8}
            assert decoded.size == raw.size[::-1]
        kinds[row["Defect"]] += 1
    assert kinds["cmyk"] >= 1
    assert kinds["exif"] >= 2


def test_mirror_is_small_and_balanced(expected: list[dict[str, str]]) -> None:
    total = sum(p.stat().st_size for p in IMAGES_DIR.rglob("*") if p.is_file())
    assert total <= 15 * 1024 * 1024
    sides = Counter(r["Expected"] for r in expected if not r["Defect"])
    assert sides["harmful"] >= 100
    assert sides["safe"] >= 100
    assert 0.5 <= sides["harmful"] / sides["safe"] <= 2.0


# ---- harmscan mirror up|status|down -----------------------------------------------------------


@pytest.mark.slow
def test_cli_up_status_down(tmp_path: Path) -> None:
    import subprocess
    import sys

    from stack.process import free_ports

    s3_port, metadata_port = free_ports(2)
    base = [
        sys.executable,
        "-c",
        "from cli.app import main; main()",
        "--profile",
        "ci",
        "--set",
        f"paths.root={tmp_path}",
        "--set",
        f"stack.s3_port={s3_port}",
        "--set",
        f"stack.metadata_port={metadata_port}",
        "mirror",
    ]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *args], capture_output=True, text=True, timeout=120)

    try:
        up = run("up")
        assert up.returncode == 0, up.stderr
        assert f"openimages.s3_endpoint_url=http://127.0.0.1:{s3_port}" in up.stdout
        status = run("status", "--json")
        assert status.returncode == 0
        assert all(s["healthy"] for s in json.loads(status.stdout).values())
        client = _unsigned(f"http://127.0.0.1:{s3_port}")
        key = sorted(IMAGES_DIR.rglob("*.jpg"))[0].relative_to(IMAGES_DIR).as_posix()
        assert client.get_object(Bucket="open-images-dataset", Key=key)["Body"].read()
    finally:
        down = run("down")
    assert "stopped" in down.stdout
    assert run("status").returncode == 1
