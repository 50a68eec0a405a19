"""Image decoding in worker processes with hard limits: hostile bytes never touch the consumer.

Each worker is a small process forked from a ``forkserver`` that has already imported Pillow and
numpy (a replacement starts in ~25 ms, not ~0.8 s). In the worker, ``RLIMIT_AS`` caps the address
space at its start-up size plus ``memory_mb`` and, before every decode, ``RLIMIT_CPU`` allows at
most ``timeout_s`` more CPU seconds (the kernel kills an overrun with ``SIGXCPU``). The parent waits
at most `WALL_FACTOR` x ``timeout_s`` of wall-clock time for an answer (CPU time is the bound; a
busy host only delays a decode); a worker that overran, died or ran out of memory is killed and
replaced, never abandoned still running. A worker decodes *and* preprocesses
(`EvalPreset.array`), so what travels back is one model-sized array per frame scored.

Decoding itself is `harmscan.frames.decode_frames` (`harmscan.imageio.decode_image` for a still
image), with the pixel and aspect-ratio caps checked from each frame's header first. The limits
cover the whole request: all its frames share the CPU and wall-clock time of one decode, the
memory of one worker and ``max_pixels`` in total.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import io
import logging
import math
import multiprocessing
import os
import queue
import resource
import signal
import threading
from dataclasses import dataclass
from multiprocessing import context as mp_context
from multiprocessing import forkserver, popen_forkserver, reduction, spawn, util
from multiprocessing.connection import Connection
from typing import Any, Final

import numpy as np

from harmscan.frames import FrameBudgetExceeded, decode_frames
from harmscan.imagepolicy import ImageRejected
from harmscan.presets import EvalPreset
from serving.decodecost import check_decode_memory

logger = logging.getLogger(__name__)

# Imported once in the forkserver, so no worker pays for them (Pillow's plugins load on first use).
PRELOAD: Final = [
    "numpy",
    "PIL.Image",
    *(f"PIL.{name}ImagePlugin" for name in ("Jpeg", "Png", "WebP", "Gif", "Bmp", "Tiff")),
    "harmscan.imageio",
    "harmscan.frames",
    "harmscan.presets",
    __name__,
]
# The wall-clock watchdog allows this many times decode_timeout_s: the CPU limit is the real bound,
# the watchdog catches a worker that is stuck without using CPU (on a busy host a decode waits).
WALL_FACTOR: Final = 3.0


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


class _LeanPopen(popen_forkserver.Popen):
    """A forkserver start that does not re-run the parent's ``__main__`` in the worker.

    multiprocessing imports the parent's main script again in every child (for targets defined
    there). The worker's target lives in this module, so that import is pure cost: the ``harmscan``
    CLI (~0.5 s and ~40 MB per worker) or a script importing torch (seconds on a busy host: the
    first decodes of a new worker then overran the wall-clock watchdog). This is CPython's
    ``popen_forkserver.Popen._launch`` (3.11, 3.12) with the main-module entries left out.
    """

    def _launch(self, process_obj: Any) -> None:
        prep_data = {
            key: value
            for key, value in spawn.get_preparation_data(process_obj._name).items()
            if key not in ("init_main_from_path", "init_main_from_name")
        }
        buf = io.BytesIO()
        mp_context.set_spawning_popen(self)
        try:
            reduction.dump(prep_data, buf)
            reduction.dump(process_obj, buf)
        finally:
            mp_context.set_spawning_popen(None)
        self.sentinel, w = forkserver.connect_to_new_process(self._fds)  # type: ignore[attr-defined]
        parent_w = os.dup(w)  # the child's sentinel of its parent, as in CPython
        close_fds = util.close_fds  # type: ignore[attr-defined]
        self.finalizer = util.Finalize(self, close_fds, (parent_w, self.sentinel))
        with open(w, "wb", closefd=True) as f:
            f.write(buf.getbuffer())
        self.pid = forkserver.read_signed(self.sentinel)


class WorkerProcess(mp_context.ForkServerProcess):
    """A forkserver process started without the parent's main module (see `_LeanPopen`)."""

    @staticmethod
    def _Popen(process_obj: Any) -> Any:
        return _LeanPopen(process_obj)


class WorkerLost(RuntimeError):
    """The worker overran its time, died or left; it has been replaced.

    Attributes:
        reason: The dead-letter reason: ``too_large`` for an overrun (time, memory), ``corrupt``
            for a decoder that crashed on the image (a fault signal).
    """

    def __init__(self, detail: str, reason: str = "too_large") -> None:
        super().__init__(detail)
        self.reason = reason


# Signals of a decoder that crashed on its input (not of a limit: SIGXCPU, SIGKILL).
CRASH_SIGNALS: Final = frozenset(
    {signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGABRT}
)


class DecodeWorker:
    """One worker process and the parent's end of its pipe."""

    def __init__(self, memory_mb: int) -> None:
        self.conn, child = multiprocessing.Pipe(duplex=True)
        self.process = WorkerProcess(
            target=worker_main, args=(child, memory_mb), name="harmscan-decode", daemon=True
        )
        self.process.start()
        child.close()

    def run(self, data: bytes, preset: EvalPreset, limits: DecodeLimits) -> tuple[Any, ...]:
        """Send one decode and wait for its answer.

        Raises:
            WorkerLost: No answer within ``limits.timeout_s`` or the worker died (it is dead now).
        """
        try:
            self.conn.send((data, preset, limits))
            if self.conn.poll(limits.timeout_s * WALL_FACTOR):
                answer: tuple[Any, ...] = self.conn.recv()
                if answer[0] == "rejected" and answer[1] == "too_large":
                    self.kill()  # it left after a MemoryError
                return answer
        except (EOFError, OSError, BrokenPipeError):
            # The worker died: let it finish exiting, so its exit code (SIGXCPU...) is known and
            # a death is not reported as a wall-clock overrun.
            self.process.join(1.0)
        alive = self.process.is_alive()
        self.kill()
        code = self.process.exitcode
        if alive:
            wall = limits.timeout_s * WALL_FACTOR
            raise WorkerLost(
                f"not decoded within {wall:g}s of wall-clock time, {WALL_FACTOR:g}x "
                "serving.decode_timeout_s (worker killed)"
            )
        if code == -signal.SIGXCPU:
            raise WorkerLost(
                f"decoding used more than {limits.timeout_s}s of CPU, serving.decode_timeout_s "
                "(worker killed)"
            )
        if code is not None and code < 0 and -code in CRASH_SIGNALS:
            name = signal.Signals(-code).name
            raise WorkerLost(
                f"the decoder crashed on this image ({name}; worker replaced): a malformed file "
                "that the decoder does not survive; re-encode it",
                "corrupt",
            )
        raise WorkerLost(f"the decode worker died (exit code {code})")

    @property
    def alive(self) -> bool:
        """Whether the process still runs."""
        return self.process.is_alive()

    def kill(self) -> None:
        """Kill the process and reap it."""
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()


class DecodePool:
    """A fixed number of decode worker processes, each used by one thread at a time.

    Args:
        workers: Number of processes (the classifier runs as many threads).
        memory_mb: Address space each may add to its start-up size.
    """

    def __init__(self, workers: int, memory_mb: int) -> None:
        self.memory_mb = memory_mb
        multiprocessing.get_context("forkserver").set_forkserver_preload(PRELOAD)
        self._idle: queue.Queue[DecodeWorker] = queue.Queue()
        self._lock = threading.Lock()
        self._all: list[DecodeWorker] = []
        self.replaced = 0
        for _ in range(workers):
            self._idle.put(self._spawn())

    def _spawn(self) -> DecodeWorker:
        worker = DecodeWorker(self.memory_mb)
        with self._lock:
            self._all = [w for w in self._all if w.alive] + [worker]
        return worker

    def decode(self, data: bytes, preset: EvalPreset, limits: DecodeLimits) -> np.ndarray:
        """Decode and preprocess ``data`` in a worker: the first scored frame's model-sized array.

        Raises:
            ImageRejected: As for `frames`.
        """
        return self.frames(data, preset, limits).array[0]

    def frames(self, data: bytes, preset: EvalPreset, limits: DecodeLimits) -> Decoded:
        """Decode and preprocess ``data`` in a worker: one model-sized array per frame scored.

        Raises:
            ImageRejected: The image is bad, too costly (``too_large`` for a decode that overran
                its time or memory), or the decoder failed unexpectedly (``internal_error``).
        """
        # Before a worker: a WebP too big for its memory would be allocated at open and kill it.
        check_decode_memory(data, memory_mb=limits.memory_mb, max_pixels=limits.max_pixels,
                            max_aspect_ratio=limits.max_aspect_ratio)  # fmt: skip
        worker = self._idle.get()
        try:
            answer = worker.run(data, preset, limits)
        except WorkerLost as exc:
            logger.warning("decode worker pid %s replaced: %s", worker.process.pid, exc)
            answer = ("rejected", exc.reason, str(exc))
        finally:
            if not worker.alive:
                self.replaced += 1
                worker = self._spawn()
            self._idle.put(worker)
        if answer[0] == "ok":
            decoded: Decoded = answer[1]
            return decoded
        if answer[0] == "rejected":
            raise ImageRejected(answer[1], answer[2])
        raise ImageRejected("internal_error", f"decoder error {answer[1]}: {answer[2]}")

    def pids(self) -> list[int]:
        """Process ids of the live workers."""
        with self._lock:
            return [w.process.pid for w in self._all if w.alive and w.process.pid]

    def close(self) -> None:
        """Kill every worker."""
        with self._lock:
            workers, self._all = self._all, []
        for worker in workers:
            worker.kill()


def pool_rss_bytes(pool: DecodePool) -> int:
    """Resident memory of the pool's workers together (for measurements)."""
    total = 0
    for pid in pool.pids():
        try:
            with open(f"/proc/{pid}/statm") as statm:
                total += int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            continue
    return total
