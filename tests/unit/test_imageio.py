"""Safe decoding of hostile and unusual images, and the shared preset."""

from __future__ import annotations

import gzip
import io
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harmscan.bundle import ServingSpec
from harmscan.imagefile import read_image_file
from harmscan.imageio import decode_image
from harmscan.imagepolicy import ImageRejected
from harmscan.presets import EvalPreset, TrainPreset, normalize


def encode(image: Image.Image, fmt: str = "JPEG", **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def red(size: tuple[int, int] = (64, 48), mode: str = "RGB") -> Image.Image:
    return Image.new(mode, size, (220, 20, 20) if mode == "RGB" else 0)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "not_an_image"),
        (b"hello, this is not an image at all" * 10, "not_an_image"),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n", "unsupported_format"),
        (b"%PDF-1.4\n1 0 obj\n", "unsupported_format"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"></svg>', "unsupported_format"),
        (encode(red((256, 256)), quality=95)[:600], "truncated"),
    ],
)
def test_bad_payloads_are_rejected_with_a_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(ImageRejected) as info:
        decode_image(payload)
    assert info.value.reason == reason


def _refused_formats() -> list[tuple[str, bytes]]:
    Image.init()
    cases = [
        ("HEIC", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)),
        ("HEIF", b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1" + bytes(64)),
        ("ISO media (brand 'isom'", b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00" + bytes(64)),
        ("JPEG XL", b"\xff\x0a" + bytes(64)),
        ("Netpbm", encode(red(), "PPM")),
        ("ICO/CUR", encode(red(), "ICO")),
        ("TGA", encode(red(), "TGA")),
        # They were not_an_image like random bytes; an S3 object with Content-Encoding: gzip
        # arrives compressed (botocore does not inflate it).
        ("gzip-compressed data", gzip.compress(encode(red(), "PNG"))),
        ("zstd-compressed data", b"\x28\xb5\x2f\xfd" + bytes(64)),
        ("ZIP archive", b"PK\x03\x04" + bytes(64)),
    ]
    cases += [("AVIF", encode(red(), "AVIF"))] if "AVIF" in Image.SAVE else []
    cases += [("QOI", encode(red(), "QOI"))] if "QOI" in Image.SAVE else []
    return cases


@pytest.mark.parametrize(("name", "payload"), _refused_formats(), ids=lambda v: str(v)[:12])
def test_known_but_refused_formats_are_named(name: str, payload: bytes) -> None:
    """AVIF, HEIC, ICO, Netpbm... were ``not_an_image`` with no name, like random bytes."""
    with pytest.raises(ImageRejected) as info:
        decode_image(payload)
    assert info.value.reason == "unsupported_format"
    assert info.value.detail.startswith(name)
    assert "accepted: JPEG, PNG, WEBP, GIF, BMP, TIFF" in info.value.detail


def test_unknown_bytes_name_the_accepted_formats() -> None:
    with pytest.raises(ImageRejected) as info:
        decode_image(bytes(range(256)) * 4)
    assert info.value.reason == "not_an_image"
    assert "accepted: JPEG, PNG, WEBP, GIF, BMP, TIFF" in info.value.detail


def test_pixel_count_is_checked_before_decoding() -> None:
    big = encode(Image.new("L", (4000, 4000)), "PNG")
    with pytest.raises(ImageRejected) as info:
        decode_image(big, max_pixels=1_000_000)
    assert info.value.reason == "decompression_bomb"


def test_a_header_past_pillows_own_cap_names_our_limit() -> None:
    """Pillow refuses > 2x its MAX_IMAGE_PIXELS at open; the detail named Pillow's limit."""
    from tests.serving_support import png_bomb

    with pytest.raises(ImageRejected) as info:
        decode_image(png_bomb(20_000), max_pixels=50_000_000)
    assert info.value.reason == "decompression_bomb"
    assert info.value.detail == "the header declares 400000000 pixels > max_pixels 50000000"


def test_size_limits() -> None:
    with pytest.raises(ImageRejected, match="too_large"):
        decode_image(encode(red()), max_bytes=10)
    with pytest.raises(ImageRejected, match="too_small"):
        decode_image(encode(red((20, 200))), min_side=32)


@pytest.mark.parametrize(
    "make",
    [
        lambda: encode(red().convert("CMYK"), "JPEG", quality=95),
        lambda: encode(Image.fromarray(np.full((48, 64), 40000, dtype=np.uint16)), "PNG"),
        lambda: encode(red().convert("P", palette=Image.Palette.ADAPTIVE), "PNG", transparency=5),
        lambda: encode(red().convert("RGBA"), "PNG"),
        lambda: encode(red(), "WEBP"),
        lambda: encode(red(), "GIF"),
        lambda: encode(red(), "BMP"),
    ],
)
def test_unusual_valid_images_decode_to_rgb(make: object) -> None:
    image = decode_image(make())  # type: ignore[operator]
    assert image.mode == "RGB"
    assert image.size == (64, 48)


def test_sixteen_bit_is_scaled_not_clipped() -> None:
    data = encode(Image.fromarray(np.full((8, 8), 32768, dtype=np.uint16)), "PNG")
    value = np.asarray(decode_image(data))[0, 0, 0]
    assert 120 <= value <= 135


def test_a_float_image_with_nan_and_infinities_is_black_and_white() -> None:
    pixels = np.array([[np.nan, np.inf, -np.inf, 100.0]] * 4, dtype=np.float32)
    data = encode(Image.fromarray(pixels), "TIFF")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy warned of an invalid cast
        gray = np.asarray(decode_image(data))[0, :, 0]
    assert gray.tolist() == [0, 255, 0, 100]


@pytest.mark.parametrize(
    ("pixels", "expected"),
    [
        ([0.0, 0.5, 1.0], [0, 128, 255]),  # a float image in 0..1: the usual float convention
        ([0.0, 127.5, 255.0], [0, 128, 255]),  # in 0..255
        ([0.0, 32767.5, 65535.0], [0, 128, 255]),  # in 0..65535
    ],
)
def test_a_float_image_is_scaled_by_the_range_its_values_use(
    pixels: list[float], expected: list[int]
) -> None:
    data = encode(Image.fromarray(np.array([pixels] * 4, dtype=np.float32)), "TIFF")
    assert np.asarray(decode_image(data))[0, :, 0].tolist() == expected


def test_exif_rotation_is_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    data = encode(red((64, 32)), "JPEG", exif=exif.tobytes())
    assert decode_image(data).size == (32, 64)


def test_special_files_are_never_read(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.jpg"
    os.mkfifo(fifo)
    with pytest.raises(ImageRejected) as info:
        read_image_file(fifo)
    assert info.value.reason == "not_a_file"
    with pytest.raises(ImageRejected, match="not_a_file"):
        read_image_file("/dev/zero")
    with pytest.raises(ImageRejected, match="not_found"):
        read_image_file(tmp_path / "missing.jpg")


def test_draft_mode_keeps_both_sides_above_the_resize() -> None:
    data = encode(red((1024, 768)), quality=90)
    preset = EvalPreset(image_size=224)
    image = preset.decode(data)
    assert min(image.size) >= preset.resize
    assert image.size[0] < 1024  # the decoder really scaled down


def test_eval_preset_normalizes_like_imagenet() -> None:
    preset = EvalPreset(image_size=32)
    array = preset.array(Image.new("RGB", (50, 40), (124, 116, 104)))
    assert array.shape == (3, 32, 32)
    assert np.abs(array).max() < 0.02  # the ImageNet mean colour maps to ~0
    assert np.allclose(
        preset(Image.new("RGB", (40, 40))).numpy(),
        normalize(np.zeros((32, 32, 3), np.uint8), preset.mean, preset.std),
    )


def test_train_preset_without_augmentation_is_the_eval_preset() -> None:
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (60, 80, 3), np.uint8))
    train = TrainPreset(image_size=48, augment=False)
    assert np.array_equal(train(image).numpy(), train.eval_preset.array(image))
    augmented = TrainPreset(image_size=48)(image)
    assert augmented.shape == (3, 48, 48)


def test_preset_round_trips_through_the_serving_spec(tmp_path: Path) -> None:
    preset = EvalPreset(image_size=96)
    spec = ServingSpec(
        arch="mobilenet_v2", threshold=0.4, review_low=0.3, review_high=0.5, **preset.spec_fields()
    )
    spec.write(tmp_path)
    back = ServingSpec.read(tmp_path)
    assert EvalPreset.from_spec(back) == EvalPreset(image_size=96, resize_size=preset.resize)
    assert back.labels[back.harmful_index] == "harmful"
    assert back.label_for(0.45) == "harmful"
    assert back.label_for(0.2) == "safe"


def test_hostile_images_get_their_reasons() -> None:
    from harmscan.imageio import decode_image
    from harmscan.imagepolicy import ImageRejected
    from tests.serving_support import broken_huffman_jpeg, wide_png, ztxt_bomb

    cases = {
        "decompression_bomb": [ztxt_bomb(), wide_png(100_000, 1), wide_png(1, 30_000)],
        "corrupt": [broken_huffman_jpeg()],
        "not_an_image": [b""],
    }
    for reason, payloads in cases.items():
        for payload in payloads:
            with pytest.raises(ImageRejected) as caught:
                decode_image(payload, max_aspect_ratio=20)
            assert caught.value.reason == reason


def test_huffman_check_passes_real_encoders() -> None:
    from harmscan.jpegtables import jpeg_table_problem

    rng = np.random.default_rng(1)
    image = Image.fromarray(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    for options in ({}, {"progressive": True}, {"optimize": True}, {"subsampling": 0}):
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", **options)
        assert jpeg_table_problem(buffer.getvalue()) is None, options


def _png_of_size(width: int, height: int) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _twelve_bit_jpeg() -> bytes:
    data = bytearray(encode(red()))
    sof = data.find(b"\xff\xc0")
    data[sof + 1], data[sof + 4] = 0xC1, 12  # extended sequential, 12 bits per sample
    return bytes(data)


@pytest.mark.parametrize(
    ("payload", "reason", "says"),
    [
        # Pillow only said that no format recognised them: they were all `not_an_image`.
        (_twelve_bit_jpeg(), "unsupported_format", "re-encode it as an 8-bit JPEG"),
        (_png_of_size(0, 10), "corrupt", "0x10 pixels: a side of 0"),
        (_png_of_size(10, 0), "corrupt", "10x0 pixels"),
        (encode(red(), "GIF")[:10], "truncated", "send the whole file"),
        (b"GIF89a", "truncated", "GIF header is cut short"),
        (b"GIF89a\x10\x00\x10\x00\x80\x00\x00" + bytes(6) + b";", "corrupt", "holds no image"),
        (encode(red(), "TIFF")[:16], "corrupt", "TIFF signature"),
    ],
)
def test_an_accepted_signature_that_does_not_open_says_why(
    payload: bytes, reason: str, says: str
) -> None:
    with pytest.raises(ImageRejected) as info:
        decode_image(payload)
    assert (info.value.reason, says in info.value.detail) == (reason, True), info.value.detail


def test_conversions_in_strips_match_the_whole_image_formulas(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A 7000x7000 RGBA PNG or 16-bit grey PNG (under max_pixels) needed more than the decode
    # workers' 768 MB when converted whole; strips give the same pixels with one output copy.
    import harmscan.imagergb as imagergb

    monkeypatch.setattr(imagergb, "STRIP_PIXELS", 1000)
    every = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    scaled = np.clip(every / 65535.0 * 255.0 + 0.5, 0, 255).astype(np.uint8)
    assert np.array_equal(np.asarray(imagergb.to_rgb(Image.fromarray(every)))[..., 0], scaled)
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (300, 257, 3), dtype=np.uint8)
    palette = Image.fromarray(noise).convert("P", palette=Image.Palette.ADAPTIVE)
    palette.info["transparency"] = 5
    images = [
        Image.fromarray(rng.integers(0, 256, (300, 257, 4), dtype=np.uint8), "RGBA"),
        Image.fromarray(rng.integers(0, 256, (300, 257, 2), dtype=np.uint8), "LA"),
        palette,
    ]
    for image in images:
        mode = image.mode
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        whole = Image.alpha_composite(white, image.convert("RGBA")).convert("RGB")
        assert np.array_equal(np.asarray(imagergb.to_rgb(image)), np.asarray(whole)), mode


def test_a_metadata_bomb_says_to_strip_the_metadata() -> None:
    from tests.serving_support import ztxt_bomb

    with pytest.raises(ImageRejected) as info:
        decode_image(ztxt_bomb())
    assert info.value.reason == "decompression_bomb"
    assert "strip the image's metadata" in info.value.detail


def _jpeg_with_exif(entries: list[tuple[int, int, int, bytes]]) -> bytes:
    import struct

    ifd = b"II" + struct.pack("<HI", 42, 8) + struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        ifd += struct.pack("<HHI", tag, kind, count) + value
    return encode(red((16, 8)), "JPEG", exif=b"Exif\x00\x00" + ifd + b"\x00\x00\x00\x00")


def _tiff_with_strip_offsets_of_type(kind: int) -> bytes:
    import struct

    data = bytearray(encode(red((8, 8)), "TIFF"))
    first = struct.unpack("<I", data[4:8])[0]
    for index in range(struct.unpack("<H", data[first : first + 2])[0]):
        at = first + 2 + 12 * index
        if struct.unpack("<H", data[at : at + 2])[0] == 273:  # StripOffsets
            data[at + 2 : at + 4] = struct.pack("<H", kind)
    return bytes(data)


ROTATE = (0x0112, 3, 1, b"\x06\x00\x00\x00")  # orientation 6: exif_transpose rewrites the EXIF


@pytest.mark.parametrize(
    "payload",
    [
        _jpeg_with_exif([ROTATE, (0x011A, 2, 4, b"abc\x00")]),  # a RATIONAL tag as text
        _jpeg_with_exif([ROTATE, (0x0128, 2, 4, b"abc\x00")]),  # a SHORT tag as text
        _jpeg_with_exif([ROTATE, (0x0128, 5, 1, b"\x08\x00\x00\x00")]),  # SHORT as RATIONAL
    ],
)
def test_a_mistyped_exif_tag_keeps_the_pixels_as_stored(payload: bytes) -> None:
    # Rewriting the EXIF raised TypeError or struct.error: the request was an internal_error.
    assert decode_image(payload).size == (16, 8)


@pytest.mark.parametrize("kind", [2, 5, 11])
def test_a_mistyped_tiff_strip_table_is_corrupt(kind: int) -> None:
    # Decoding raised TypeError ("'str' object cannot be interpreted as an integer").
    with pytest.raises(ImageRejected) as info:
        decode_image(_tiff_with_strip_offsets_of_type(kind))
    assert info.value.reason == "corrupt"


@pytest.mark.parametrize("image_size", [224, 160, 32])
@pytest.mark.parametrize("size", [(512, 384), (256, 192), (384, 512), (50, 40), (257, 1000)])
def test_eval_preset_crop_equals_resizing_the_whole_image_then_cropping(
    image_size: int, size: tuple[int, int]
) -> None:
    # The crop resamples only the centre square; resizing all of the image and cutting the square
    # out (as it was done) gives the same pixels within a grey level or two.
    rgb = np.random.default_rng(sum(size)).integers(0, 256, (size[1], size[0], 3), np.uint8)
    image = Image.fromarray(rgb)
    preset = EvalPreset(image_size=image_size)
    scale = preset.resize / min(size)
    full = (max(preset.resize, round(size[0] * scale)), max(preset.resize, round(size[1] * scale)))
    resized = image.resize(full, Image.Resampling.BILINEAR, reducing_gap=None)
    left, top = (full[0] - image_size) // 2, (full[1] - image_size) // 2
    whole = np.asarray(resized.crop((left, top, left + image_size, top + image_size)), np.int16)
    cropped = np.asarray(preset.crop(image), np.int16)
    assert cropped.shape == (image_size, image_size, 3)
    difference = np.abs(cropped - whole)
    assert difference.max() <= 2
    assert difference.mean() < 0.05


def test_an_upright_image_is_not_copied_for_its_orientation() -> None:
    from harmscan.imagergb import upright

    image = Image.open(io.BytesIO(encode(red((64, 32)), "JPEG")))
    image.load()
    assert upright(image) is image


def _cut_bmp() -> bytes:
    data = bytearray(encode(red(), "BMP"))
    data[14:18] = (0x7FFFFFFF).to_bytes(4, "little")  # an info header longer than the file
    return bytes(data)


@pytest.mark.parametrize(
    "payload",
    [
        encode(red((256, 256)), quality=95)[:300],  # inside the JPEG header
        encode(red((256, 256)), quality=95)[:600],  # inside the JPEG scan
        encode(red((256, 256)), "PNG")[:200],  # inside the PNG data
        _cut_bmp(),
    ],
    ids=["jpeg_header", "jpeg_scan", "png_data", "bmp_header"],
)
def test_a_cut_image_says_to_send_the_whole_file(payload: bytes) -> None:
    # The detail was Pillow's words alone ("unreadable header: Truncated File Read", "image
    # file is truncated (2 bytes not processed)"): the reason, but not what to do about it.
    with pytest.raises(ImageRejected) as info:
        decode_image(payload)
    assert info.value.reason == "truncated"
    assert "send the whole file" in info.value.detail
