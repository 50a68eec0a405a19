"""The whole ``etl`` flow under Prefect against the offline Open Images mirror.

The mirror (``mirror/``) holds real OIDv7-shaped metadata and photos with planted defects
(missing keys, corrupt, truncated, too small, EXIF-rotated, CMYK) and decoys (Bloodhound, Bomber,
Hot dog); ``mirror/expected.csv`` says what a correct ETL decides for every image.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import pytest
from botocore.exceptions import ConnectionClosedError
from PIL import Image

import tasks.images
from flows.etl import etl
from harmscan.digests import unmatched
from harmscan.manifest import manifest_hash, read_manifest
from harmscan.openimages import MIRROR_DOMAINS_FILE
from stack.mirror_s3 import s3_client
from tests.fixtures.mirror import EXPECTED_CSV, METADATA_DIR

pytestmark = pytest.mark.slow

REASON_OF_DEFECT = {
    "missing": "missing_key",
    "corrupt": "corrupt",
    "truncated": "truncated",
    "too_small": "too_small",
}


def expected() -> dict[str, dict[str, str]]:
    with EXPECTED_CSV.open() as handle:
        return {row["ImageID"]: row for row in csv.DictReader(handle)}


def everything(make_source, overrides, *extra):
    """Settings that take every candidate (no caps, no balancing) from the mirror."""
    return make_source(
        *overrides,
        "etl.max_per_side=10000",
        "etl.max_per_label=10000",
        "etl.balance=false",
        *extra,
    )


@pytest.fixture
def get_counter(monkeypatch):
    """Count (and optionally fail) the S3 GetObject calls of the ETL's client, by key."""
    calls: list[str] = []
    # after: crash the download after this many calls; drop: key -> attempts whose connection
    # is dropped (a transient network fault botocore and the ETL should retry).
    fault: dict = {"after": None, "drop": {}}
    attempts: Counter[str] = Counter()
    real = tasks.images.make_s3_client

    class Interrupted(RuntimeError):
        pass

    def counting_client(openimages, etl_settings):
        client = real(openimages, etl_settings)

        def before_call(params, **_):
            calls.append(params["Key"])
            if fault["after"] is not None and len(calls) > fault["after"]:
                raise Interrupted("simulated crash of the download")

        def before_send(request, **_):
            key = "/".join(urlparse(request.url).path.split("/")[-2:])
            attempts[key] += 1
            if attempts[key] <= fault["drop"].get(key, 0):
                raise ConnectionClosedError(endpoint_url=request.url)

        client.meta.events.register("provide-client-params.s3.GetObject", before_call)
        client.meta.events.register("before-send.s3.GetObject", before_send)
        return client

    monkeypatch.setattr(tasks.images, "make_s3_client", counting_client)
    return calls, fault


def test_whole_flow_decides_every_mirror_image(
    prefect_harness, mirror_servers, make_source, get_counter
):
    source = everything(make_source, mirror_servers)
    result = etl(source=source)
    truth = expected()
    manifest = read_manifest(result.manifest)

    # Every image where a correct ETL says harmful/safe is in, with that label; nothing else is.
    wanted = {i: r["Expected"] for i, r in truth.items() if r["Expected"] in ("harmful", "safe")}
    got = dict(zip(manifest["image_id"], manifest["label"], strict=True))
    assert got == wanted
    # Defects are excluded and reported by reason.
    defects = Counter(
        REASON_OF_DEFECT[r["Defect"]] for r in truth.values() if r["Defect"] in REASON_OF_DEFECT
    )
    assert result.failures == dict(defects)
    for reason, ids in result.failed_ids.items():
        assert {REASON_OF_DEFECT[truth[i]["Defect"]] for i in ids} == {reason}
    # The version is the manifest's hash; files match their recorded sha256 and size.
    assert result.version == manifest_hash(manifest) == result.dataset_dir.name
    for row in manifest.itertuples():
        data = (result.dataset_dir / row.path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == row.sha256
        assert len(data) == row.bytes
        assert row.path == f"{row.split}/{row.label}/{row.image_id}.jpg"
        assert row.format == "jpeg"
    # Each image carries the domain the mirror's side file gives it.
    domains = pd.read_csv(METADATA_DIR / MIRROR_DOMAINS_FILE).set_index("ImageID")["Domain"]
    assert dict(zip(manifest["image_id"], manifest["domain"], strict=True)) == {
        i: domains[i] for i in manifest["image_id"]
    }
    assert set(manifest["domain"]) == {"emoji", "illustration"}
    latest = json.loads((result.dataset_dir.parent / "latest.json").read_text())
    assert latest["version"] == result.version
    summary = json.loads((result.dataset_dir / "summary.json").read_text())
    assert summary["images"] == len(manifest) == result.images
    assert sum(n for d in summary["domains"].values() for n in d.values()) == len(manifest)
    assert set(manifest["split"]) == {"train", "val", "test"}
    # Every candidate was fetched exactly once.
    assert sorted(get_counter[0]) == sorted(set(get_counter[0]))
    assert len(get_counter[0]) == len(manifest) + sum(result.failures.values())

    # EXIF-rotated (and CMYK) photos are kept, stored upright as plain JPEG.
    manifest = manifest.set_index("image_id")
    rotated = [i for i, r in expected().items() if r["Defect"] in ("exif", "cmyk")]
    assert rotated
    for image_id in rotated:
        row = manifest.loc[image_id]
        with Image.open(result.dataset_dir / row["path"]) as image:
            assert image.format == "JPEG"
            assert image.size == (row["width"], row["height"])
            assert image.getexif().get(0x0112, 1) == 1


def test_default_caps_give_a_balanced_reproducible_dataset(
    prefect_harness, mirror_servers, make_source
):
    source = make_source(*mirror_servers, "etl.max_per_side=60", "etl.max_per_label=8")
    first = etl(source=source)
    manifest = read_manifest(first.manifest)
    counts = manifest["label"].value_counts()
    assert counts["harmful"] == counts["safe"] <= 60
    names = manifest.assign(name=manifest["source_labels"].str.split(";")).explode("name")
    assert not set(names["name"]) & {"Bloodhound", "Bomber"}
    # Each image counts under its primary (rarest) source label, at most 8 per label.
    cache = source.resolve().paths.cache
    selection = pd.read_parquet(next(Path(cache, "etl").glob("*/selection.parquet")))
    assert sorted(selection["image_id"]) == sorted(manifest["image_id"])
    assert selection.groupby(["label", "primary_label"]).size().max() <= 8
    # A damaged dataset is not reused as it is: one file gone, one overwritten.
    folder = Path(first.manifest).parent
    gone, garbled = (folder / p for p in manifest["path"][:2])
    gone.unlink()
    garbled.unlink()
    garbled.write_bytes(b"garbage")
    again = etl(source=source, return_state=True)
    assert again.result().version == first.version
    assert unmatched(folder, manifest["path"], manifest["sha256"]) == ([], [])  # all back
    # The run leaves the summary as a table artifact for the Prefect UI.
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterKey,
        FlowRunFilter,
        FlowRunFilterId,
    )

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["etl-dataset"])),
            flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[again.state_details.flow_run_id])
            ),
        )
    assert len(artifacts) == 1
    rows = (
        json.loads(artifacts[0].data) if isinstance(artifacts[0].data, str) else artifacts[0].data
    )
    splits = {r["name"]: r["total"] for r in rows if r["group"] == "split"}
    assert sum(splits.values()) == len(manifest)


def test_interrupted_run_resumes_fetching_only_what_is_missing(
    prefect_harness, mirror_bucket, make_source, get_counter, monkeypatch
):
    calls, fault = get_counter
    source = everything(make_source, mirror_bucket)
    monkeypatch.setattr(
        "flows.etl.download_images", tasks.images.download_images.with_options(retries=0)
    )
    fault["after"] = 60
    state = etl(source=source, return_state=True)
    assert state.is_failed()
    first_calls = list(calls)
    state_file = next(
        source.resolve()
        .paths.cache.joinpath("images")
        .glob(f"*{mirror_bucket.bucket}*/verified.jsonl")
    )
    settled = {json.loads(line)["image_id"] for line in state_file.read_text().splitlines()}
    assert 0 < len(settled) <= 60

    calls.clear()
    fault["after"] = None
    result = etl(source=source)
    refetched = {key.rsplit("/", 1)[-1].removesuffix(".jpg") for key in calls}
    assert not refetched & settled  # nothing settled in the first run was fetched again
    candidates = set(read_manifest(result.manifest)["image_id"]) | {
        i for ids in result.failed_ids.values() for i in ids
    }
    assert refetched == candidates - settled
    assert len(first_calls) > len(settled)
    # A third run fetches nothing at all.
    calls.clear()
    assert etl(source=source).version == result.version
    assert calls == []


def test_transient_network_faults_are_retried_and_lasting_ones_reported(
    prefect_harness, mirror_bucket, make_source, get_counter
):
    calls, fault = get_counter
    good = sorted(
        i for i, r in expected().items() if r["Expected"] == "harmful" and not r["Defect"]
    )
    flaky, dead = (f"{expected()[i]['Subset']}/{i}.jpg" for i in good[:2])
    # etl.retries=1: botocore tries twice per call, and the ETL calls twice: 4 attempts in all.
    fault["drop"] = {flaky: 3, dead: 100}
    source = everything(make_source, mirror_bucket, "etl.retries=1")
    result = etl(source=source)
    in_manifest = set(read_manifest(result.manifest)["image_id"])
    assert good[0] in in_manifest  # recovered on its 4th attempt
    assert result.failed_ids["network"] == [good[1]]
    assert result.failures["network"] == 1
    assert calls.count(flaky) == 2
    assert calls.count(dead) == 2

    # The network failure is not remembered: the next run asks for that one image only.
    calls.clear()
    fault["drop"] = {}
    again = etl(source=source)
    assert calls == [dead]
    assert "network" not in again.failures
    assert good[1] in set(read_manifest(again.manifest)["image_id"])


def test_png_under_a_jpg_key_is_stored_as_png(prefect_harness, mirror_bucket, make_source):
    """The bucket key says .jpg, the bytes are a PNG: stored as .png, format png in the manifest."""
    truth = expected()
    image_id = next(
        i for i, r in sorted(truth.items()) if r["Expected"] == "safe" and not r["Defect"]
    )
    key = f"{truth[image_id]['Subset']}/{image_id}.jpg"
    s3 = s3_client(mirror_bucket.s3_endpoint)
    original = s3.get_object(Bucket=mirror_bucket.bucket, Key=key)["Body"].read()
    with Image.open(io.BytesIO(original)) as jpeg:
        buffer = io.BytesIO()
        jpeg.save(buffer, format="PNG")
    s3.put_object(Bucket=mirror_bucket.bucket, Key=key, Body=buffer.getvalue())

    result = etl(source=everything(make_source, mirror_bucket))
    row = read_manifest(result.manifest).set_index("image_id").loc[image_id]
    assert row["format"] == "png"
    assert row["path"].endswith(f"/{image_id}.png")
    with Image.open(result.dataset_dir / row["path"]) as stored:
        assert stored.format == "PNG"
