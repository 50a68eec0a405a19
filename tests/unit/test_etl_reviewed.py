"""Reviewed images as a dataset source: last decision wins, kept out of test, read safely."""

from __future__ import annotations

import base64
from pathlib import Path

import pandas as pd
import pytest

from conf.settings import EtlSettings, ServingSettings
from harmscan.decisions import Decision
from harmscan.imagepolicy import ImageRejected
from harmscan.reviewed import is_reviewed, latest_decisions, reviewed_image_id, split_fractions
from serving.schema import encode_request
from tasks.dataset import build_manifest
from tasks.reviewed import image_bytes
from tests.serving_support import RED, write_image
from tests.serving_support import image_bytes as encoded


def decision(request_id: str, verdict: str, source: str = "/x.jpg") -> Decision:
    return Decision(request_id, verdict, "ana", 1.0, "m", "1", "safe", 0.5, 0.5, source)  # type: ignore[arg-type]


def test_the_last_decision_wins() -> None:
    latest = latest_decisions(
        [decision("a", "safe"), decision("b", "safe"), decision("a", "harmful")]
    )
    assert {k: d.decision for k, d in latest.items()} == {"a": "harmful", "b": "safe"}
    assert reviewed_image_id("a") == reviewed_image_id("a")
    assert reviewed_image_id("a").startswith("reviewed-")
    assert "/" not in reviewed_image_id("../../etc/passwd")


@pytest.mark.parametrize("allow_test", [False, True])
def test_reviewed_images_stay_out_of_test_unless_allowed(allow_test: bool) -> None:
    rows = []
    for i in range(60):
        image_id = reviewed_image_id(f"r{i}") if i % 2 else f"oi{i:03d}"
        rows.append({"image_id": image_id, "label": ("harmful", "safe")[i % 4 // 2],
                     "source_labels": "reviewed" if i % 2 else "Knife", "license": "",
                     "author": "", "original_url": ""})  # fmt: skip
    manifest = build_manifest(pd.DataFrame(rows), EtlSettings(), reviewed_in_test=allow_test)
    reviewed = manifest[is_reviewed(manifest["image_id"])]
    others = manifest[~is_reviewed(manifest["image_id"])]
    assert ("test" in set(reviewed["split"])) is allow_test
    assert {"train", "val"} <= set(reviewed["split"])
    assert "test" in set(others["split"])
    assert split_fractions({"train": 0.7, "val": 0.15, "test": 0.15}, False) == pytest.approx(
        {"train": 0.7 / 0.85, "val": 0.15 / 0.85}
    )


def test_reviewed_images_are_read_only_under_the_allowed_roots(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    inside = write_image(root / "a.jpg", RED)
    secret = write_image(outside / "b.jpg", RED)
    (root / "link.jpg").symlink_to(secret)
    serving = ServingSettings(allowed_roots=[root])
    assert image_bytes(decision("a", "safe", str(inside)), {}, serving) == inside.read_bytes()
    for source in (str(secret), str(root / "link.jpg"), f"{root}/../outside/b.jpg"):
        with pytest.raises(ImageRejected) as info:
            image_bytes(decision("a", "safe", source), {}, serving)
        assert info.value.reason == "forbidden_path"
    with pytest.raises(ImageRejected, match="s3"):
        image_bytes(decision("a", "safe", "s3://bucket/key.jpg"), {}, serving)


def test_inline_reviewed_images_come_from_the_review_topic() -> None:
    data = encoded(RED)
    request = encode_request("a", image_b64=base64.b64encode(data).decode())
    serving = ServingSettings()
    assert image_bytes(decision("a", "harmful", "inline"), {"a": request}, serving) == data
    with pytest.raises(ImageRejected, match="not on the review topic"):
        image_bytes(decision("a", "harmful", "inline"), {}, serving)


def test_a_reviewed_file_replaced_after_review_is_not_trained_on(tmp_path: Path) -> None:
    """The reviewer's label belongs to the bytes they saw: a file replaced since is skipped."""
    import dataclasses
    import hashlib

    from tests.serving_support import BLUE

    source = write_image(tmp_path / "upload.jpg", RED)
    seen = hashlib.sha256(source.read_bytes()).hexdigest()
    reviewed = dataclasses.replace(decision("a", "harmful", str(source)), sha256=seen)
    serving = ServingSettings(allowed_roots=[tmp_path])
    assert image_bytes(reviewed, {}, serving) == source.read_bytes()
    write_image(source, BLUE)
    with pytest.raises(ImageRejected) as info:
        image_bytes(reviewed, {}, serving)
    assert info.value.reason == "changed"
    # a decision from before decisions carried the digest is taken as it is
    assert image_bytes(decision("a", "harmful", str(source)), {}, serving) == source.read_bytes()


def test_decisions_carry_the_digest_and_older_ones_still_decode() -> None:
    import json

    from harmscan.decisions import DecisionError, decode_decision, encode_decision

    digest = "ab" * 32
    new = Decision("a", "safe", "ana", 1.0, "m", "1", "safe", 0.5, 0.5, "/x.jpg", digest)
    assert decode_decision(encode_decision(new)) == new
    old = json.loads(encode_decision(decision("a", "safe")))
    del old["sha256"]
    assert decode_decision(json.dumps(old).encode()).sha256 is None
    with pytest.raises(DecisionError, match="sha256 must be null or 64 lowercase hex"):
        decode_decision(json.dumps({**old, "sha256": "XYZ"}).encode())
