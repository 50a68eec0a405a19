"""How long an animation shows each frame, read from the container's headers (no pixel decoded).

An animated GIF, WebP or PNG states a delay per frame. Frames chosen by index alone can miss
the one a viewer sees most (49 frames of a cat at 20 ms and a knife held for a minute scored
safe), so `harmscan.frames` chooses by display time too. The walks read block and chunk headers
only, in one pass bounded by the data's length, and give up (None) on anything they do not
understand: the caller then chooses by index as before.

Delays of at most `MIN_DELAY_MS` count as `SHOWN_DELAY_MS`, as browsers show them.
"""

from __future__ import annotations

from typing import Final

MIN_DELAY_MS: Final = 10.0
SHOWN_DELAY_MS: Final = 100.0


def frame_durations(
    data: bytes, image_format: str, hidden_default: bool = False
) -> list[float] | None:
    """Milliseconds each frame is shown, in frame order (as Pillow numbers the frames), or None
    when the format states none or the headers cannot be walked.

    Args:
        data: The encoded image.
        image_format: Pillow's format name (``GIF``, ``WEBP``, ``PNG``; others give None).
        hidden_default: An APNG whose default image is not part of its animation: Pillow's
            frame 0 is that image, which APNG viewers never show (0 ms).
    """
    walk = {"GIF": _gif, "WEBP": _webp, "PNG": _apng}.get(image_format)
    if walk is None:
        return None
    try:
        delays = walk(data)
    except (IndexError, ValueError):
        return None
    if not delays:
        return None
    shown = [SHOWN_DELAY_MS if d <= MIN_DELAY_MS else d for d in delays]
    if image_format == "PNG" and hidden_default:
        shown = [0.0, *shown]
    return shown


def _gif(data: bytes) -> list[float] | None:
    """One delay per image descriptor: that of the graphic control extension before it."""
    if data[:6] not in (b"GIF87a", b"GIF89a"):
        return None
    at = 13 + _colour_table(data[10])  # header, logical screen descriptor, global colours
    delays: list[float] = []
    delay = 0.0
    while at < len(data):
        block = data[at]
        if block == 0x3B:  # trailer
            break
        if block == 0x21:  # extension: label, then sub-blocks
            if data[at + 1] == 0xF9 and data[at + 2] >= 4:  # graphic control
                delay = 10.0 * int.from_bytes(data[at + 4 : at + 6], "little")
            at = _skip_sub_blocks(data, at + 2)
        elif block == 0x2C:  # image descriptor, local colours, LZW code size, sub-blocks
            if at + 10 > len(data):
                break
            at = _skip_sub_blocks(data, at + 10 + _colour_table(data[at + 9]) + 1)
            delays.append(delay)
            delay = 0.0
        else:
            return None
    return delays


def _colour_table(packed: int) -> int:
    """Bytes of the colour table a GIF descriptor's packed field announces."""
    return 3 * (1 << ((packed & 7) + 1)) if packed & 0x80 else 0


def _skip_sub_blocks(data: bytes, at: int) -> int:
    """The offset after a chain of GIF sub-blocks (each a size byte and that many bytes)."""
    while True:
        size = data[at]
        at += 1 + size
        if size == 0:
            return at


def _webp(data: bytes) -> list[float] | None:
    """One duration per ``ANMF`` chunk (a still WebP has none)."""
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    delays: list[float] = []
    at = 12
    while at + 8 <= len(data):
        kind, size = data[at : at + 4], int.from_bytes(data[at + 4 : at + 8], "little")
        if kind == b"ANMF":
            if size < 16 or at + 24 > len(data):
                return None
            delays.append(float(int.from_bytes(data[at + 20 : at + 23], "little")))
        at += 8 + size + (size & 1)
    return delays


def _apng(data: bytes) -> list[float] | None:
    """One delay per ``fcTL`` chunk (``delay_num / delay_den`` s; a denominator of 0 is 100)."""
    delays: list[float] = []
    at = 8
    while at + 8 <= len(data):
        length = int.from_bytes(data[at : at + 4], "big")
        kind = data[at + 4 : at + 8]
        if kind == b"fcTL":
            if length < 26 or at + 8 + 24 > len(data):
                return None
            num = int.from_bytes(data[at + 8 + 20 : at + 8 + 22], "big")
            den = int.from_bytes(data[at + 8 + 22 : at + 8 + 24], "big") or 100
            delays.append(1000.0 * num / den)
        elif kind == b"IEND":
            break
        at += 12 + length
    return delays
