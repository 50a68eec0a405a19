"""Multi-frame images (animated GIF, WebP, PNG; multi-page TIFF; MPO JPEG): which frames are scored.

A request is scored on up to ``max_frames`` frames, always including the first (with
``max_frames`` 1, an APNG whose default image is not part of its animation is scored on the first
frame it shows instead); its harmful probability is the maximum over them (the worst frame
decides). An animation that states how long each frame is shown (GIF, WebP, APNG:
`harmscan.frametimes`) has its frames chosen at evenly spaced moments of its display time first,
then, for the frames left, evenly spaced by index: a frame held for most of the time is always
scored, and a short one among long ones can still be. Without stated times (a multi-page TIFF,
an MPO) the frames are evenly spaced by index, first and last included.

The limits bound the work of all frames together: each frame's header is checked like a still
image's (pixel and aspect-ratio caps), the frames scored share one pixel budget (``max_pixels`` in
total), and the caller's CPU and wall-clock limits cover the whole request, including walking past
frames that are not scored (a GIF declaring 100000 frames; an APNG is counted by the frames it
holds, not the count it declares).

A frame that fails to decode after a good first frame ends the walk (in GIF and WebP a frame is
drawn on the ones before it, so the frames after a broken one cannot be trusted): the frames that
decoded are scored and the failure is counted (`FrameSet.failed`). A first frame that fails to
decode rejects the image, as for a still image.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from PIL import Image

from harmscan.frametimes import frame_durations
from harmscan.imageio import BROKEN_DATA, check_header, load_rgb, open_image
from harmscan.imagepolicy import (
    ALLOWED_FORMATS,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    ImageRejected,
)

T = TypeVar("T")
# A broken frame or frame table: corrupt GIF, TIFF or MPO frame chains raised TypeError, KeyError,
# IndexError or struct.error out of ``n_frames`` and ``seek``.
BROKEN_FRAME: Final = BROKEN_DATA
# Pillow's own pixel cap, checked when it seeks to a frame declaring a huge size.
_BOMBS: Final = (Image.DecompressionBombError, Image.DecompressionBombWarning)


class FrameBudgetExceeded(ImageRejected):
    """The frames to score hold more pixels together than the image budget allows."""


@dataclass(frozen=True)
class FrameSet(Generic[T]):
    """The converted frames of one image.

    Attributes:
        items: One converted frame per decoded frame, in frame order.
        indices: The frame index of each item in the image (the first is 0).
        failed: Frames selected for scoring that did not decode (after a good first frame).
        detail: Why the first of those failed, or None.
    """

    items: list[T]
    indices: list[int]
    failed: int = 0
    detail: str | None = None


def select_frames(n_frames: int, max_frames: int) -> list[int]:
    """Up to ``max_frames`` frame indices evenly spaced over ``n_frames``, first and last included.

    Raises:
        ValueError: ``n_frames`` or ``max_frames`` below 1.
    """
    if n_frames < 1 or max_frames < 1:
        raise ValueError(f"n_frames and max_frames must be >= 1, got {n_frames}, {max_frames}")
    count = min(n_frames, max_frames)
    if count == 1:
        return [0]
    # The step (n_frames - 1) / (count - 1) is at least 1, so the indices are distinct.
    return [i * (n_frames - 1) // (count - 1) for i in range(count)]


def select_frames_by_time(durations: list[float], max_frames: int) -> list[int]:
    """Up to ``max_frames`` frame indices, in order: the first frame, the frames on screen at
    evenly spaced moments from the first frame's start to the last one's, then frames evenly
    spaced by index (`select_frames`) until there are ``max_frames`` (or every frame). With equal
    durations the moments are the index spacing itself.

    Raises:
        ValueError: No durations, a negative one, or ``max_frames`` below 1.
    """
    if not durations or min(durations) < 0 or max_frames < 1:
        raise ValueError(f"durations must be non-negative, max_frames >= 1: {max_frames}")
    count = min(len(durations), max_frames)
    if count == 1 or len(set(durations)) == 1:
        return select_frames(len(durations), count)
    ends = list(itertools.accumulate(durations))
    span = ends[-1] - durations[-1]  # when the last frame comes on
    chosen = {0: None}  # insertion order is preference: the first `count` are taken
    for k in range(1, count):
        moment = k * span / (count - 1)
        chosen[min(bisect.bisect_right(ends, moment), len(durations) - 1)] = None
    for index in select_frames(len(durations), count):
        chosen[index] = None
    return sorted(list(chosen)[:count])


def frame_count(image: Image.Image) -> int:
    """How many frames an opened image has (1 for a still image or an unreadable count)."""
    try:
        return max(1, int(getattr(image, "n_frames", 1)))
    except BROKEN_FRAME:
        return 1  # an unreadable frame table: the image is scored on its first frame


def hidden_default_image(image: Image.Image) -> bool:
    """Whether ``image`` is an APNG whose default image (frame 0) is not part of its animation."""
    return image.format == "PNG" and bool(image.info.get("default_image"))


def png_frames_held(data: bytes, hidden_default: bool) -> int:
    """The frames an APNG holds: one per frame control chunk (``fcTL``), plus its default image
    when that is not part of the animation.

    Pillow counts the frames its ``acTL`` chunk declares, which a request writes: an APNG
    declaring 100000 frames had its frames chosen past its end (they failed, and the frames it
    holds after the first were never scored). The walk reads chunk headers only.
    """
    count, at = int(hidden_default), 8
    while at + 8 <= len(data):
        length = int.from_bytes(data[at : at + 4], "big")
        kind = data[at + 4 : at + 8]
        if kind == b"fcTL":
            count += 1
        elif kind == b"IEND":
            break
        at += 12 + length
    return count


def decode_frames(
    data: bytes,
    convert: Callable[[Image.Image], T],
    *,
    max_frames: int = 1,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    draft: tuple[int, int] | None = None,
    formats: tuple[str, ...] = ALLOWED_FORMATS,
    max_aspect_ratio: float | None = None,
) -> FrameSet[T]:
    """Decode the frames `select_frames` picks and ``convert`` each (one full frame at a time).

    A still image, or ``max_frames`` 1, costs what `decode_image` costs: no frame is counted.

    Args:
        data: The encoded image.
        convert: Turns one upright RGB frame into what is kept (e.g. the model's input array).
        max_frames: Most frames to decode.
        max_pixels: Cap per frame (from its header) and on the sum over the decoded frames.
        max_bytes, draft, formats, max_aspect_ratio: As for `decode_image`.

    Raises:
        ImageRejected: The first frame is bad, a frame's header breaks a cap, or the frames
            together exceed ``max_pixels`` (`FrameBudgetExceeded`).
    """
    image = open_image(
        data,
        max_pixels=max_pixels,
        max_bytes=max_bytes,
        draft=draft,
        formats=formats,
        max_aspect_ratio=max_aspect_ratio,
    )
    hidden = hidden_default_image(image)
    try:
        total = frame_count(image) if max_frames > 1 or hidden else 1
    except _BOMBS as exc:
        raise FrameBudgetExceeded("decompression_bomb", f"a frame of the image: {exc}") from None
    if image.format == "PNG" and total > 1:
        total = max(1, min(total, png_frames_held(data, hidden)))
    if total == 1:
        return FrameSet([convert(load_rgb(image, 1))], [0])
    items: list[T] = []
    indices: list[int] = []
    spent = 0
    # One frame of an APNG whose default image is not part of its animation is the first frame
    # it shows: its viewers never show the default image (only viewers without APNG do).
    selected = (
        [1] if hidden and max_frames == 1 else _chosen(data, image, hidden, total, max_frames)
    )
    for position, index in enumerate(selected):
        try:
            if index:
                image.seek(index)
            spent += _pixels(image, max_pixels, max_aspect_ratio)
            if spent > max_pixels:
                raise FrameBudgetExceeded(
                    "too_large",
                    f"{position + 1} of {len(selected)} frames to score ({total} in the image) "
                    f"hold {spent} pixels together > max_pixels {max_pixels}",
                )
            items.append(convert(load_rgb(image, 1)))
            indices.append(index)
        except FrameBudgetExceeded:
            raise
        except _BOMBS as exc:  # a hostile frame is never skipped: the image is rejected
            raise FrameBudgetExceeded(
                "decompression_bomb", f"frame {index} declares more than max_pixels: {exc}"
            ) from None
        except (ImageRejected, *BROKEN_FRAME) as exc:
            if not items:
                raise _as_rejection(exc, index) from None
            return FrameSet(items, indices, len(selected) - position, f"frame {index}: {exc}")
    return FrameSet(items, indices)


def _chosen(
    data: bytes, image: Image.Image, hidden: bool, total: int, max_frames: int
) -> list[int]:
    """The frames to score: by display time when the headers state one time per frame
    (``hidden``: an APNG whose default image is not part of its animation)."""
    durations = frame_durations(data, str(image.format), hidden)
    if durations is None or len(durations) != total:
        return select_frames(total, max_frames)
    return select_frames_by_time(durations, max_frames)


def _pixels(image: Image.Image, max_pixels: int, max_aspect_ratio: float | None) -> int:
    """The pixels of the image's current frame, once its header passed the caps.

    Raises:
        FrameBudgetExceeded: The frame breaks the pixel or aspect-ratio cap (a hostile frame is
            never skipped: the image is rejected).
    """
    try:
        check_header(image, max_pixels, max_aspect_ratio)
    except ImageRejected as exc:
        raise FrameBudgetExceeded(exc.reason, f"frame {image.tell()}: {exc.detail}") from None
    return int(image.size[0] * image.size[1])


def _as_rejection(exc: BaseException, index: int) -> ImageRejected:
    if isinstance(exc, ImageRejected):
        return exc
    return ImageRejected("corrupt", f"frame {index}: {exc}")
