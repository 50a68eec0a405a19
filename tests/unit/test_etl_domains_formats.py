"""Image domains (the mirror's side file, else photo) and real formats in the dataset manifest."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from PIL import Image

from harmscan.imagecheck import verify_image
from harmscan.manifest import (
    MANIFEST_COLUMNS,
    canonical_text,
    read_manifest,
    relative_path,
    summarize,
)
from harmscan.openimages import image_domains

IDS = pd.Series(["a1", "b2", "c3"])


def test_without_a_domains_file_every_image_is_a_photo() -> None:
    assert list(image_domains(IDS, None)) == ["photo"] * 3


def test_domains_come_from_the_side_file() -> None:
    text = "ImageID,Domain\nc3,emoji\na1,illustration\nb2,photo\nzz,emoji\n"
    assert list(image_domains(IDS, io.BytesIO(text.encode()))) == ["illustration", "photo", "emoji"]


def test_a_side_file_with_a_bom_crlf_and_repeated_rows_is_read() -> None:
    text = "\ufeffImageID,Domain\r\nc3,emoji\r\na1,illustration\r\n\r\nb2,photo\r\nc3,emoji\r\n"
    got = image_domains(IDS, io.BytesIO(text.encode()))
    assert list(got) == ["illustration", "photo", "emoji"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ImageID,Domain\na1,clipart\nb2,photo\nc3,photo\n", "unknown image domains"),
        ("ImageID,Domain\na1,photo\n", "2 images have no domain"),
        ("ImageID,Kind\na1,photo\n", "needs ImageID,Domain"),
        ("ImageID,Domain\na1,photo\nb2,photo\nc3,photo\na1,emoji\n", "1 images have two domains"),
    ],
)
def test_bad_domains_file_fails_loudly(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        image_domains(IDS, io.BytesIO(text.encode()))


def encoded(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (80, 60), (200, 30, 30)).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(("fmt", "name"), [("JPEG", "jpeg"), ("PNG", "png"), ("WEBP", "webp")])
def test_verified_image_knows_its_real_format(fmt: str, name: str) -> None:
    outcome = verify_image(encoded(fmt))
    assert not isinstance(outcome, str)
    assert outcome.format == name
    assert outcome.record()["format"] == name


def test_a_rotated_image_is_reencoded_as_jpeg() -> None:
    outcome = verify_image(encoded("PNG"), rotation=90)
    assert not isinstance(outcome, str)
    assert (outcome.format, outcome.rotated) == ("jpeg", True)


@pytest.mark.parametrize(("fmt", "ext"), [("jpeg", "jpg"), ("png", "png"), ("tiff", "tif")])
def test_path_takes_the_extension_of_the_real_format(fmt: str, ext: str) -> None:
    assert relative_path("val", "safe", "abc", fmt) == f"val/safe/abc.{ext}"


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown image format 'svg'"):
        relative_path("val", "safe", "abc", "svg")


def row(image_id: str, label: str, **extra: object) -> dict[str, object]:
    base: dict[str, object] = {
        "image_id": image_id, "label": label, "source_labels": "Dog", "split": "train",
        "path": f"train/{label}/{image_id}.jpg", "sha256": "0" * 64, "bytes": 1, "width": 2,
        "height": 3, "license": "", "author": "", "original_url": "",
    }  # fmt: skip
    return base | extra


def test_older_manifest_reads_as_jpeg_photos(tmp_path) -> None:
    old = pd.DataFrame([row("a", "safe"), row("b", "harmful")])
    path = tmp_path / "manifest.csv"
    old.to_csv(path, index=False)
    back = read_manifest(path)
    assert set(MANIFEST_COLUMNS) <= set(back.columns)
    assert list(back["domain"]) == ["photo", "photo"]
    assert list(back["format"]) == ["jpeg", "jpeg"]
    assert canonical_text(old) == canonical_text(back)


def test_summary_counts_images_per_domain_and_label() -> None:
    frame = pd.DataFrame(
        [
            row("a", "safe", domain="photo", format="jpeg"),
            row("b", "harmful", domain="emoji", format="png"),
            row("c", "safe", domain="emoji", format="jpeg"),
        ]
    )
    assert summarize(frame)["domains"] == {
        "emoji": {"harmful": 1, "safe": 1},
        "photo": {"safe": 1},
    }
