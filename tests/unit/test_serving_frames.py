"""Animated and multi-page images: frame selection, the worst-frame rule, and the limits."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harmscan.frames import decode_frames, select_frames, select_frames_by_time
from harmscan.frametimes import frame_durations
from harmscan.imagepolicy import ImageRejected
from serving.classifier import BatchClassifier, Rejection
from serving.inputs import InputReader
from serving.model import LoadedModel
from serving.schema import Result, decode_result, encode_request, encode_result
from serving.source import load_model_folder
from tests.serving_support import (
    BLUE,
    RED,
    animated_gif,
    image_bytes,
    many_frame_gif,
    save_local_model,
)

SAFE = [BLUE, (30, 40, 200), (40, 30, 210), (30, 50, 190), (50, 30, 180), (30, 60, 170)]


@pytest.mark.parametrize(
    ("n_frames", "max_frames", "expected"),
    [
        (1, 8, [0]),
        (5, 1, [0]),
        (3, 8, [0, 1, 2]),
        (8, 8, list(range(8))),
        (10, 4, [0, 3, 6, 9]),
        (100, 5, [0, 24, 49, 74, 99]),
        (100_000, 8, [0, 14285, 28571, 42856, 57142, 71427, 85713, 99999]),
    ],
)
def test_frames_are_evenly_spaced_first_included_and_capped(
    n_frames: int, max_frames: int, expected: list[int]
) -> None:
    chosen = select_frames(n_frames, max_frames)
    assert chosen == expected
    assert chosen[0] == 0
    assert len(chosen) == min(n_frames, max_frames) == len(set(chosen))


@pytest.mark.parametrize(("n_frames", "max_frames"), [(0, 8), (5, 0)])
def test_frame_selection_refuses_nonsense(n_frames: int, max_frames: int) -> None:
    with pytest.raises(ValueError, match="must be >= 1"):
        select_frames(n_frames, max_frames)


def _colour(image: Image.Image) -> tuple[int, int, int]:
    return image.getpixel((3, 3))  # type: ignore[return-value]


def test_decode_frames_reads_the_chosen_frames() -> None:
    data = animated_gif([*SAFE[:5], RED])  # frames 0-4 safe, 5 harmful
    got = decode_frames(data, _colour, max_frames=3)
    assert got.indices == [0, 2, 5]
    assert got.items[0] == BLUE
    assert got.items[2] == RED
    assert got.failed == 0
    assert decode_frames(data, _colour, max_frames=1).indices == [0]


def test_a_later_frame_that_does_not_decode_leaves_the_frames_before_it() -> None:
    data = animated_gif([BLUE, SAFE[1], RED, SAFE[2]], size=(64, 64))
    cut = data[: data.rindex(b"\x21\xf9\x04") + 40]  # the last frame's pixel data is truncated
    got = decode_frames(cut, _colour, max_frames=8)
    assert got.indices == [0, 1, 2]
    assert got.items[2] == RED
    assert got.failed == 1
    assert got.detail is not None
    assert "frame 3" in got.detail


def test_the_frames_share_one_pixel_budget() -> None:
    data = animated_gif(SAFE[:4], size=(100, 100))  # 10000 pixels a frame
    assert decode_frames(data, _colour, max_frames=4, max_pixels=40_000).indices == [0, 1, 2, 3]
    with pytest.raises(ImageRejected, match="40000 pixels together > max_pixels 39999"):
        decode_frames(data, _colour, max_frames=4, max_pixels=39_999)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    folder = save_local_model(tmp_path_factory.mktemp("frames") / "model")
    return load_model_folder(folder, name="m", version="1", runtime="onnx")


def _classifier(max_frames: int, timeout_s: float = 5.0) -> BatchClassifier:
    reader = InputReader([], [], max_bytes=8_000_000)
    return BatchClassifier(
        reader, workers=1, max_pixels=4_000_000, decode_timeout_s=timeout_s,
        max_frames=max_frames, max_request_bytes=12_000_000,
    )  # fmt: skip


def _inline(data: bytes, request_id: str) -> bytes:
    return encode_request(request_id, image_b64=base64.b64encode(data).decode())


def test_the_worst_frame_decides_and_is_named(model: LoadedModel) -> None:
    gif = animated_gif([*SAFE[:5], RED])
    still = image_bytes(BLUE)
    values = [_inline(gif, "gif"), _inline(still, "jpeg"), _inline(image_bytes(RED), "red")]
    results = {}
    for max_frames in (1, 8):
        clf = _classifier(max_frames)
        try:
            results[max_frames] = clf.classify(values, model, received_at=0.0)
        finally:
            clf.close()
    (gif1, jpeg1, red1), (gif8, jpeg8, red8) = results[1], results[8]
    for result in (gif1, jpeg1, red1, gif8, jpeg8, red8):
        assert isinstance(result, Result)
    assert (gif1.label, gif1.frames_scored, gif1.worst_frame) == ("safe", 1, 0)
    assert (gif8.label, gif8.frames_scored, gif8.worst_frame) == ("harmful", 6, 5)
    assert gif8.p_harmful > 0.9 > 0.1 > gif1.p_harmful
    # A still image is scored exactly as before, whatever max_frames is.
    for one, eight in ((jpeg1, jpeg8), (red1, red8)):
        assert dataclasses.replace(one, completed_at=0, latency_ms=0) == dataclasses.replace(
            eight, completed_at=0, latency_ms=0
        )
        assert (eight.frames_scored, eight.worst_frame, eight.frames_failed) == (1, 0, 0)


def test_a_gif_declaring_100000_frames_is_bounded_by_the_decode_timeout(
    model: LoadedModel,
) -> None:
    hostile = many_frame_gif(100_000, size=(16, 16))
    clf = _classifier(8, timeout_s=0.5)
    try:
        bomb, after = clf.classify(
            [_inline(hostile, "many"), _inline(image_bytes(RED), "after")], model, 0.0
        )
    finally:
        clf.close()
    assert isinstance(bomb, Rejection)
    assert bomb.reason == "too_large"
    assert "serving.decode_timeout_s" in bomb.detail
    assert isinstance(after, Result)
    assert after.label == "harmful"


def test_a_frame_budget_rejection_names_the_settings(model: LoadedModel) -> None:
    data = animated_gif(SAFE[:4], size=(1200, 1000))  # 1.2 M pixels a frame, 4 M budget
    clf = _classifier(8)
    try:
        (rejected,) = clf.classify([_inline(data, "big")], model, 0.0)
    finally:
        clf.close()
    assert isinstance(rejected, Rejection)
    assert rejected.reason == "too_large"
    assert "serving.max_pixels" in rejected.detail
    assert "serving.max_frames" in rejected.detail


def test_results_without_frame_fields_still_decode() -> None:
    result = Result(
        id="r", label="safe", p_harmful=0.1, threshold=0.5, review=False, model_name="m",
        model_version="1", source="inline", sent_at=None, received_at=0.0, completed_at=0.0,
        latency_ms=0.0,
    )  # fmt: skip
    body = json.loads(encode_result(result))
    assert (body["frames_scored"], body["worst_frame"], body["frames_failed"]) == (1, 0, 0)
    for key in ("frames_scored", "worst_frame", "frames_failed"):
        del body[key]
    assert decode_result(json.dumps(body).encode()) == result


def test_max_frames_setting_is_validated() -> None:
    from conf.loader import SettingsError, load_settings

    assert load_settings("ci", env={}).serving.max_frames == 8
    with pytest.raises(SettingsError, match=r"serving\.max_frames: Input should be greater"):
        load_settings("ci", ["serving.max_frames=0"], env={})


def test_frames_of_a_multipage_tiff(tmp_path: Path) -> None:
    pages = [Image.new("RGB", (32, 24), colour) for colour in (BLUE, SAFE[1], RED)]
    buffer = io.BytesIO()
    pages[0].save(buffer, "TIFF", save_all=True, append_images=pages[1:])
    got = decode_frames(buffer.getvalue(), _colour, max_frames=8)
    assert got.indices == [0, 1, 2]
    assert got.items[2] == RED
    assert np.array_equal(np.array(got.items[0]), np.array(BLUE))


def test_the_batch_limit_counts_frames(model: LoadedModel) -> None:
    seen: list[int] = []
    original, limit = model.predict, model.max_batch

    def counting(batch: np.ndarray) -> np.ndarray:
        seen.append(len(batch))
        return original(batch)

    gif = animated_gif([*SAFE[:5], RED])  # 6 frames
    clf = _classifier(8)
    try:
        model.predict, model.max_batch = counting, 4
        outcomes = clf.classify(
            [_inline(gif, "a"), _inline(image_bytes(BLUE), "b"), _inline(gif, "c")], model, 0.0
        )
    finally:
        model.predict, model.max_batch = original, limit
        clf.close()
    assert seen == [4, 4, 4, 1]  # 13 frames, at most 4 per model call
    a, b, c = outcomes
    assert isinstance(a, Result)
    assert isinstance(b, Result)
    assert isinstance(c, Result)
    assert (a.worst_frame, b.worst_frame, c.worst_frame) == (5, 0, 5)
    assert (a.label, b.label, c.label) == ("harmful", "safe", "harmful")


def test_a_second_picture_inside_a_jpeg_is_a_frame() -> None:
    """An MPO file (a JPEG with more pictures after the first) hides nothing either."""
    pictures = [Image.new("RGB", (64, 48), colour) for colour in (BLUE, RED)]
    buffer = io.BytesIO()
    pictures[0].save(buffer, "MPO", save_all=True, append_images=pictures[1:])
    assert decode_frames(buffer.getvalue(), _colour, max_frames=1).indices == [0]
    got = decode_frames(buffer.getvalue(), _colour, max_frames=8)
    assert got.indices == [0, 1]
    assert np.abs(np.array(got.items[1]) - np.array(RED)).max() < 8


def test_a_result_says_when_chosen_frames_did_not_decode(model: LoadedModel) -> None:
    data = animated_gif([BLUE, SAFE[1], RED, SAFE[2]], size=(64, 64))
    cut = data[: data.rindex(b"\x21\xf9\x04") + 40]  # the last frame's pixel data is truncated
    clf = _classifier(8)
    try:
        (result,) = clf.classify([_inline(cut, "cut")], model, 0.0)
    finally:
        clf.close()
    assert isinstance(result, Result)
    assert (result.label, result.frames_scored, result.worst_frame) == ("harmful", 3, 2)
    assert result.frames_failed == 1


def _two_page_tiff_second_without_width() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), RED).save(
        buffer, "TIFF", save_all=True, append_images=[Image.new("RGB", (8, 8), BLUE)]
    )
    data = bytearray(buffer.getvalue())
    first = struct.unpack("<I", data[4:8])[0]
    entries = struct.unpack("<H", data[first : first + 2])[0]
    second = struct.unpack("<I", data[first + 2 + 12 * entries : first + 6 + 12 * entries])[0]
    for index in range(struct.unpack("<H", data[second : second + 2])[0]):
        at = second + 2 + 12 * index
        if struct.unpack("<H", data[at : at + 2])[0] == 256:  # ImageWidth: now an unknown tag
            data[at : at + 2] = struct.pack("<H", 65000)
    return bytes(data)


def _gif_second_frame_declaring(width: int, height: int) -> bytes:
    data = bytearray(animated_gif([RED, BLUE]))
    second = data.index(b"\x21\xf9\x04", data.index(b"\x21\xf9\x04") + 1)
    descriptor = data.index(b"\x2c", second + 8)
    data[descriptor + 5 : descriptor + 9] = struct.pack("<HH", width, height)
    return bytes(data)


def test_a_broken_frame_table_scores_the_first_frame() -> None:
    # n_frames raised TypeError ("Missing dimensions"): the request was an internal_error.
    frames = decode_frames(_two_page_tiff_second_without_width(), _colour, max_frames=8)
    assert frames.indices == [0]


def test_a_later_frame_past_pillows_pixel_cap_rejects_the_image() -> None:
    # Seeking to it raised DecompressionBombError: the request was an internal_error.
    with pytest.raises(ImageRejected) as info:
        decode_frames(_gif_second_frame_declaring(0xFFFF, 0xFFFF), _colour, max_frames=8)
    assert info.value.reason == "decompression_bomb"
    assert "frame 1" in info.value.detail


def _apng_with_hidden_default(frames: int) -> bytes:
    """An APNG whose default image (blue) is not part of its animation (red frames): browsers
    and other APNG viewers never show the blue one."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), BLUE).save(
        buffer, "PNG", save_all=True, default_image=True,
        append_images=[Image.new("RGB", (16, 16), RED)] * frames,
    )  # fmt: skip
    return buffer.getvalue()


@pytest.mark.parametrize("frames", [1, 5])
def test_one_frame_of_an_apng_is_a_frame_it_shows_not_its_hidden_default(frames: int) -> None:
    # With max_frames 1 only the default image was scored, which an APNG viewer never shows:
    # harmful animation frames behind a harmless default image went unseen.
    decoded = decode_frames(_apng_with_hidden_default(frames), _colour, max_frames=1)
    assert decoded.indices == [1]
    assert decoded.items == [RED]


def test_more_frames_of_an_apng_still_score_its_default_image_too() -> None:
    decoded = decode_frames(_apng_with_hidden_default(5), _colour, max_frames=8)
    assert decoded.indices == [0, 1, 2, 3, 4, 5]


def _apng_declaring(declared: int, *, hidden_default: bool) -> bytes:
    """A blue first frame (the default image) then two red ones, its acTL chunk declaring
    ``declared`` frames."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), BLUE).save(
        buffer, "PNG", save_all=True, default_image=hidden_default,
        append_images=[Image.new("RGB", (16, 16), RED)] * 2,
    )  # fmt: skip
    data = bytearray(buffer.getvalue())
    at = data.index(b"acTL")
    struct.pack_into(">I", data, at + 4, declared)
    struct.pack_into(">I", data, at + 12, zlib.crc32(bytes(data[at : at + 12])))
    return bytes(data)


@pytest.mark.parametrize("hidden_default", [False, True])
def test_an_apng_declaring_more_frames_than_it_holds_is_scored_on_the_frames_it_holds(
    hidden_default: bool,
) -> None:
    # The frames were chosen from the declared count: frame 0 and frames past the end, which
    # failed, so the red frames were never scored (the blue first frame alone decided).
    decoded = decode_frames(
        _apng_declaring(100_000, hidden_default=hidden_default), _colour, max_frames=8
    )
    assert RED in decoded.items
    assert decoded.indices == [0, 1, 2]  # the blue first frame and both red ones
    assert decoded.failed == 0


def _animation(fmt: str, colours: list[tuple[int, int, int]], durations: list[int]) -> bytes:
    frames = [Image.new("RGB", (48, 40), colour) for colour in colours]
    buffer = io.BytesIO()
    options = {"lossless": True} if fmt == "WEBP" else {}
    frames[0].save(
        buffer, fmt, save_all=True, append_images=frames[1:], duration=durations, loop=0,
        **options,
    )  # fmt: skip
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_frame_durations_are_read_from_the_headers(fmt: str) -> None:
    durations = [20, 60_000, 0, 500]
    data = _animation(fmt, [BLUE, RED, SAFE[1], SAFE[2]], durations)
    # a delay of at most 10 ms is shown for 100 ms, as browsers do
    assert frame_durations(data, fmt) == [20.0, 60_000.0, 100.0, 500.0]
    assert frame_durations(data[: len(data) // 3], fmt) in (None, [20.0])  # cut: never wrong
    assert frame_durations(image_bytes(BLUE, "JPEG"), "JPEG") is None
    if fmt == "PNG":  # an APNG's default image outside its animation is never shown
        buffer = io.BytesIO()
        frames = [Image.new("RGB", (8, 8), c) for c in (BLUE, RED, SAFE[1])]
        frames[0].save(buffer, "PNG", save_all=True, append_images=frames[1:],
                       duration=[500, 40, 60_000], default_image=True)  # fmt: skip
        assert frame_durations(buffer.getvalue(), "PNG", hidden_default=True) == [0.0, 500.0, 40.0]


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_a_frame_held_for_most_of_the_time_is_scored(fmt: str) -> None:
    # 50 frames of 20 ms, frame 3 held for a minute: by index alone, frames 0, 7, 14, ... were
    # scored and frame 3, what a viewer sees, was not
    colours = [SAFE[i % 5 + 1] for i in range(50)]
    colours[3] = RED
    durations = [20] * 50
    durations[3] = 60_000
    got = decode_frames(_animation(fmt, colours, durations), _colour, max_frames=8)
    assert 3 in got.indices
    assert RED in got.items
    assert len(got.indices) == 8
    assert got.indices[0] == 0


def test_frames_by_time_match_the_index_spacing_for_equal_times_and_fill_up() -> None:
    for n, k in ((6, 3), (10, 4), (100, 8)):
        assert select_frames_by_time([100.0] * n, k) == select_frames(n, k)
    held = [20.0] * 50
    held[3] = 60_000.0
    chosen = select_frames_by_time(held, 8)
    assert chosen[:2] == [0, 3]
    assert len(chosen) == len(set(chosen)) == 8
    assert select_frames_by_time([0.0, 100.0, 100.0], 8) == [0, 1, 2]
    with pytest.raises(ValueError, match="non-negative"):
        select_frames_by_time([], 3)
