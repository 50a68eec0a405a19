"""Inside a decode worker process: its limits, the decode, and the loop that answers the parent.

The worker caps its own address space (``RLIMIT_AS``: start-up size plus ``memory_mb``) and, before
every decode, allows at most ``timeout_s`` more CPU seconds (``RLIMIT_CPU``; the kernel kills an
overrun with ``SIGXCPU``). The parent side (pool, watchdog, replacement) is `serving.decoding`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import resource
import signal
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Final

import numpy as np

from harmscan.frames import FrameBudgetExceeded, decode_frames
from harmscan.imagepolicy import ImageRejected
from harmscan.presets import EvalPreset


@dataclass(frozen=True)
class DecodeLimits:
    """What one decode may cost and what it may produce.

    Attributes:
        max_pixels: Largest image (width x height from the header).
        max_aspect_ratio: Largest longer/shorter side ratio (from the header).
        timeout_s: Wall-clock and CPU seconds one decode may take.
        memory_mb: Address space a worker may add to its start-up size.
        jpeg_draft: Whether JPEGs are decoded at a reduced scale near the model size.
        max_frames: Most frames of an animated or multi-page image to decode (evenly spaced).
    """

    max_pixels: int
    max_aspect_ratio: float | None
    timeout_s: float
    memory_mb: int
    jpeg_draft: bool = True
    max_frames: int = 1


@dataclass(frozen=True)
class Decoded:
    """What a decode produced: one model-sized array per frame.

    Attributes:
        array: The frames' model inputs, shape ``(frames, ...)``.
        indices: Each row's frame index in the image (0 first).
        failed: Frames selected for scoring that did not decode after a good first frame.
        detail: Why the first of those failed, or None.
    """

    array: np.ndarray
    indices: tuple[int, ...] = (0,)
    failed: int = 0
    detail: str | None = None


FRAME_BUDGET_HINT: Final = (
    " (serving.max_pixels bounds each frame and the frames scored together; "
    "serving.max_frames how many are scored)"
)


def _vm_size() -> int:
    """This process's current address space in bytes (``VmSize``)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_limit(used: float, timeout_s: float) -> int:
    """The ``RLIMIT_CPU`` soft limit (whole seconds) that leaves at least ``timeout_s`` more CPU
    seconds to a process that has used ``used``.

    Rounded up: rounded down (as it was), a worker that had used 0.9 s was killed after 1.1 s of
    a 2 s budget, and legitimate large images were dead-lettered as ``too_large``.
    """
    return math.ceil(used + timeout_s)


def _decode(data: bytes, preset: EvalPreset, limits: DecodeLimits) -> tuple[Any, ...]:
    """One decode inside the worker: ("ok", array) | ("rejected", reason, detail)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_limit(_cpu_seconds(), limits.timeout_s), hard))
    try:
        frames = decode_frames(
            data,
            preset.model_input,
            max_frames=limits.max_frames,
            max_pixels=limits.max_pixels,
            max_bytes=len(data),  # the source's cap was applied when it was read
            max_aspect_ratio=limits.max_aspect_ratio,
            draft=preset.draft_size if limits.jpeg_draft else None,
        )
    except FrameBudgetExceeded as exc:
        return ("rejected", exc.reason, exc.detail + FRAME_BUDGET_HINT)
    except ImageRejected as exc:
        return ("rejected", exc.reason, exc.detail)
    # A still image travels as before: its one array, viewed with a frame axis (no copy).
    array = frames.items[0][None] if len(frames.items) == 1 else np.stack(frames.items)
    return ("ok", Decoded(array, tuple(frames.indices), frames.failed, frames.detail))


# glibc malloc in a worker: buffers below REUSE_BELOW come from the heap, and up to KEEP_FREE of
# freed heap stays mapped. By default each decode's buffers (~2 MB for a 1024x768 JPEG) were
# mapped, page-faulted in and unmapped again: ~400-480 page faults and ~15 % of the CPU of a decode
# (measured interleaved with an in-process decode: 3.7-4.2 against 4.4-4.5 ms per image). Bigger
# buffers (a large but allowed image) still go back to the system at once; RLIMIT_AS bounds it all.
REUSE_BELOW: Final = 4 * 1024 * 1024
KEEP_FREE: Final = 32 * 1024 * 1024
_M_TRIM_THRESHOLD: Final = -1
_M_MMAP_THRESHOLD: Final = -3


def _keep_decode_buffers() -> bool:
    """Tune glibc malloc as described at `REUSE_BELOW`; False where there is no glibc."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, REUSE_BELOW)) and bool(
        mallopt(_M_TRIM_THRESHOLD, KEEP_FREE)
    )


def worker_main(conn: Connection, memory_mb: int) -> None:
    """The worker loop: receive (data, preset, limits), answer, until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _keep_decode_buffers()
    limit = _vm_size() + memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # SIGXCPU would otherwise dump core
    while True:
        try:
            data, preset, limits = conn.recv()
        except (EOFError, OSError):
            return
        try:
            answer = _decode(data, preset, limits)
        except MemoryError:
            conn.send(
                (
                    "rejected",
                    "too_large",
                    f"decoding needs more than {memory_mb} MB (serving.decode_memory_mb)",
                )
            )
            return  # leave with a clean slate: the parent starts a fresh worker
        except Exception as exc:  # a decoder bug is reported, not fatal
            answer = ("error", type(exc).__name__, str(exc)[:500])
        del data
        conn.send(answer)
