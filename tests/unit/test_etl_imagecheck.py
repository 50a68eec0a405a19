"""Verification of downloaded photos: decoding, reasons, orientation."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from harmscan.imagecheck import exif_orientation, rotation_degrees, verify_image


def jpeg(width: int = 120, height: int = 80, orientation: int | None = None) -> bytes:
    image = Image.new("RGB", (width, height), (200, 30, 30))
    image.paste((10, 10, 240), (0, 0, width // 4, height // 4))  # a blue top-left corner
    buffer = io.BytesIO()
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    image.save(buffer, format="JPEG", exif=exif.tobytes())
    return buffer.getvalue()


def blue_corner(image: Image.Image) -> str:
    w, h = image.size
    corners = {"tl": (2, 2), "tr": (w - 3, 2), "bl": (2, h - 3), "br": (w - 3, h - 3)}
    return next(k for k, xy in corners.items() if image.getpixel(xy)[2] > 150)


def test_upright_image_is_stored_byte_for_byte():
    data = jpeg()
    result = verify_image(data, rotation=0.0, min_side=48)
    assert not isinstance(result, str)
    assert result.data == data
    assert (result.width, result.height, result.rotated) == (120, 80, False)
    assert len(result.sha256) == 64


@pytest.mark.parametrize(
    ("rotation", "size", "corner"),
    [(90.0, (80, 120), "bl"), (180.0, (120, 80), "br"), (270.0, (80, 120), "tr")],
)
def test_rotation_column_turns_counterclockwise_and_reencodes(rotation, size, corner):
    result = verify_image(jpeg(), rotation=rotation)
    assert not isinstance(result, str)
    assert result.rotated
    stored = Image.open(io.BytesIO(result.data))
    assert stored.format == "JPEG"
    assert stored.size == size == (result.width, result.height)
    assert blue_corner(stored) == corner


def test_exif_orientation_wins_and_is_not_applied_twice():
    data = jpeg(orientation=6)  # stored sideways; the viewer turns it 90 degrees clockwise
    assert exif_orientation(data) == 6
    result = verify_image(data, rotation=90.0)
    assert not isinstance(result, str)
    assert result.rotated
    stored = Image.open(io.BytesIO(result.data))
    assert stored.size == (80, 120)
    assert exif_orientation(result.data) == 1
    assert blue_corner(stored) == "tr"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (jpeg()[: len(jpeg()) // 2], "truncated"),
        (b"definitely not an image", "corrupt"),
        (b"%PDF-1.4 pretending", "corrupt"),
        (jpeg(30, 200), "too_small"),
    ],
)
def test_rejections_carry_their_reason(data, reason):
    result = verify_image(data, min_side=48)
    assert isinstance(result, str)
    assert result.split(":", 1)[0] == reason


def test_too_many_bytes_is_too_large():
    result = verify_image(jpeg(), max_bytes=100)
    assert isinstance(result, str)
    assert result.startswith("too_large")


@pytest.mark.parametrize(
    ("value", "degrees"), [(None, 0), ("", 0), (float("nan"), 0), ("90", 90), (270.0, 270)]
)
def test_rotation_values(value, degrees):
    assert rotation_degrees(value) == degrees


def test_bad_rotation_is_reported():
    assert rotation_degrees(360.0) == 0
    result = verify_image(jpeg(), rotation=45.0)
    assert isinstance(result, str)
    assert result.startswith("bad_metadata")
