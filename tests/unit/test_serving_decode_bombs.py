"""Pixel bombs of every accepted format, and a large WebP, judged from the header in a real worker.

Each header declares more pixels than ``serving.max_pixels`` (or a WebP more than the worker's
memory holds): the dead-letter reason must name that, and the worker must not have allocated the
image (it is not replaced, which it would be after running out of memory).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator

import pytest
from PIL import Image

from harmscan.imagepolicy import ImageRejected
from harmscan.presets import EvalPreset
from serving.decodecost import WEBP_BYTES_PER_PIXEL, check_decode_memory, webp_size
from serving.decodeworker import DecodeLimits
from serving.decoding import DecodePool
from tests.serving_support import png_bomb

LIMITS = DecodeLimits(max_pixels=50_000_000, max_aspect_ratio=20.0, timeout_s=10.0,
                      memory_mb=768, max_frames=8)  # fmt: skip


def _encoded(
    fmt: str, size: tuple[int, int] = (8, 8), mode: str = "RGB", **options: object
) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, (200, 30, 30, 255)[: len(mode)] if mode != "P" else 3).save(
        buffer, fmt, **options
    )
    return buffer.getvalue()


def _gif(width: int, height: int) -> bytes:
    data = bytearray(_encoded("GIF", mode="P"))
    data[6:10] = struct.pack("<HH", width, height)  # logical screen
    descriptor = data.index(b"\x2c")  # the image descriptor's size follows its position
    data[descriptor + 5 : descriptor + 9] = struct.pack("<HH", width, height)
    return bytes(data)


def _bmp(width: int, height: int) -> bytes:
    data = bytearray(_encoded("BMP"))
    data[18:26] = struct.pack("<ii", width, height)
    return bytes(data)


def _tiff(width: int, height: int) -> bytes:
    data = bytearray(_encoded("TIFF", compression="tiff_deflate"))
    assert data[:2] == b"II"
    ifd = struct.unpack_from("<I", data, 4)[0]
    for index in range(struct.unpack_from("<H", data, ifd)[0]):
        entry = ifd + 2 + 12 * index
        tag, kind = struct.unpack_from("<HH", data, entry)
        if tag in (256, 257):  # ImageWidth, ImageLength
            value = width if tag == 256 else height
            if kind == 3:
                struct.pack_into("<H", data, entry + 8, value)
            else:
                struct.pack_into("<I", data, entry + 8, value)
    return bytes(data)


def _webp(width: int, height: int) -> bytes:
    """A VP8X header declaring the canvas size, around a real 8x8 frame."""
    frame = _encoded("WEBP", lossless=True)
    body = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00"
    body += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    body += frame[12:]
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


BOMBS = {
    "png": png_bomb(60_000),
    "gif": _gif(65_000, 65_000),
    "bmp": _bmp(60_000, 60_000),
    "tiff": _tiff(60_000, 60_000),
    "webp": _webp(16_000, 16_000),
    "webp_over_max_pixels_under_pillows_cap": _webp(10_000, 10_000),
}


@pytest.fixture(scope="module")
def pool() -> Iterator[DecodePool]:
    pool = DecodePool(1, LIMITS.memory_mb)
    yield pool
    pool.close()


@pytest.mark.parametrize("kind", sorted(BOMBS))
def test_a_pixel_bomb_is_refused_from_its_header(pool: DecodePool, kind: str) -> None:
    (pid,) = pool.pids()
    with pytest.raises(ImageRejected) as info:
        pool.decode(BOMBS[kind], EvalPreset(image_size=32), LIMITS)
    assert info.value.reason == "decompression_bomb", info.value.detail
    assert "pixels" in info.value.detail
    assert pool.pids() == [pid]  # nothing was allocated: the worker did not run out of memory


@pytest.mark.parametrize(("data", "reason"), [
    (_encoded("ICO"), "unsupported_format"),
    (_encoded("AVIF") if "AVIF" in Image.SAVE else b"\x00\x00\x00\x1cftypavif" + bytes(64),
     "unsupported_format"),
])  # fmt: skip
def test_formats_not_accepted_are_refused_before_decoding(
    pool: DecodePool, data: bytes, reason: str
) -> None:
    with pytest.raises(ImageRejected) as info:
        pool.decode(data, EvalPreset(image_size=32), LIMITS)
    assert info.value.reason == reason


def test_a_7000_square_webp_is_too_large_for_the_memory_cap_and_says_why(pool: DecodePool) -> None:
    # It was "too_large: decoding needs more than 768 MB" only after libwebp had run the worker
    # out of memory and the worker had been replaced; PNG, GIF, TIFF and BMP of this size decode.
    (pid,) = pool.pids()
    with pytest.raises(ImageRejected) as info:
        pool.decode(_webp(7000, 7000), EvalPreset(image_size=32), LIMITS)
    assert info.value.reason == "too_large"
    assert "a 7000x7000 WebP needs about" in info.value.detail
    assert "serving.decode_memory_mb=768" in info.value.detail
    assert pool.pids() == [pid]


def test_a_webp_the_cap_holds_still_decodes(pool: DecodePool) -> None:
    data = _encoded("WEBP", size=(3000, 2000), quality=60)
    assert pool.decode(data, EvalPreset(image_size=32), LIMITS).shape == (3, 32, 32)


@pytest.mark.parametrize("options", [{"lossless": True}, {"quality": 50}, {"save_all": True}])
@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_the_webp_size_is_read_as_pillow_reads_it(options: dict[str, object], mode: str) -> None:
    data = _encoded("WEBP", size=(1234, 567), mode=mode, **options)
    assert webp_size(data) == Image.open(io.BytesIO(data)).size == (1234, 567)


@pytest.mark.parametrize("data", [b"", b"RIFF", _encoded("PNG")])
def test_other_or_short_bytes_are_left_to_the_decoder(data: bytes) -> None:
    assert webp_size(data) is None
    check_decode_memory(data, memory_mb=64, max_pixels=1, max_aspect_ratio=1.0)


def test_the_estimate_allows_what_fits() -> None:
    fits = int((768 * 2**20 / WEBP_BYTES_PER_PIXEL) ** 0.5)
    check_decode_memory(_webp(fits, fits), memory_mb=768, max_pixels=10**9, max_aspect_ratio=None)
    with pytest.raises(ImageRejected):
        check_decode_memory(
            _webp(fits + 8, fits + 8), memory_mb=768, max_pixels=10**9, max_aspect_ratio=None
        )


@pytest.mark.parametrize("keep", [0.5, 0.9, 20])
def test_a_webp_cut_short_is_truncated_not_corrupt(pool: DecodePool, keep: float) -> None:
    # It was "corrupt: unreadable header: could not create decoder object".
    data = _encoded("WEBP", size=(300, 300), quality=90)
    cut = data[: int(len(data) * keep)] if keep < 1 else data[: int(keep)]
    with pytest.raises(ImageRejected) as info:
        pool.decode(cut, EvalPreset(image_size=32), LIMITS)
    assert info.value.reason == "truncated"
    assert "send the whole file" in info.value.detail


def _gray32_tiff(mode: str, side: int) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (side, side), 0.5 if mode == "F" else 128).save(
        buffer, "TIFF", compression="tiff_adobe_deflate"
    )
    return buffer.getvalue()


@pytest.mark.parametrize("mode", ["F", "I"])
def test_a_32_bit_gray_tiff_at_max_pixels_decodes_within_the_cap(
    pool: DecodePool, mode: str
) -> None:
    # A whole-image float copy took some 40 bytes a pixel: a 5000x5000 one (half of max_pixels)
    # was "too_large" after the worker ran out of memory; converted in strips it decodes.
    (pid,) = pool.pids()
    pixels = pool.decode(_gray32_tiff(mode, 7071), EvalPreset(image_size=32), LIMITS)
    assert pixels.shape == (3, 32, 32)
    assert pool.pids() == [pid]


def test_a_premultiplied_gray_tiff_decodes() -> None:
    """A TIFF of gray with associated alpha decodes as Pillow's ``La``, which it converts only
    to ``LA``: it was an internal error."""
    from harmscan.imagergb import to_rgb

    strip = Image.new("La", (4, 4), (100, 128))  # premultiplied: 100 of 128/255 coverage
    assert to_rgb(strip).getpixel((0, 0)) == (227, 227, 227)  # 100 + 255 * (1 - 128/255)
    buffer = io.BytesIO()
    Image.new("LA", (16, 16), (200, 128)).save(buffer, "TIFF")
    data = bytearray(buffer.getvalue())
    ifd = struct.unpack_from("<I", data, 4)[0]
    for index in range(struct.unpack_from("<H", data, ifd)[0]):
        entry = ifd + 2 + 12 * index
        if struct.unpack_from("<H", data, entry)[0] == 338:  # ExtraSamples: associated alpha
            struct.pack_into("<H", data, entry + 8, 1)
    assert Image.open(io.BytesIO(bytes(data))).mode == "La"
    pool = DecodePool(1, LIMITS.memory_mb)
    try:
        assert pool.decode(bytes(data), EvalPreset(image_size=32), LIMITS).shape == (3, 32, 32)
    finally:
        pool.close()
