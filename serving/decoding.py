"""Image decoding in worker processes with hard limits: hostile bytes never touch the consumer.

Each worker is a small process forked from a ``forkserver`` that has already imported Pillow and
numpy (a replacement starts in ~25 ms, not ~0.8 s). In the worker, ``RLIMIT_AS`` caps the address
space at its start-up size plus ``memory_mb`` and, before every decode, ``RLIMIT_CPU`` allows at
most ``timeout_s`` more CPU seconds (the kernel kills an overrun with ``SIGXCPU``). The parent waits
at most `WALL_FACTOR` x ``timeout_s`` of wall-clock time for an answer (CPU time is the bound; a
busy host only delays a decode); past that a worker the scheduler still runs, or that still gains
CPU time, is starved rather than stuck and gets more time, up to `WALL_CAP_FACTOR` x ``timeout_s``
in all. A worker that overran, died or ran out of memory is killed and replaced, never abandoned
still running. A worker decodes *and* preprocesses
(`EvalPreset.array`), so what travels back is one model-sized array per frame scored. The
worker's side is `serving.decodeworker`; its lean start `serving.workerprocess`.

Decoding itself is `harmscan.frames.decode_frames` (`harmscan.imageio.decode_image` for a still
image), with the pixel and aspect-ratio caps checked from each frame's header first. The limits
cover the whole request: all its frames share the CPU and wall-clock time of one decode, the
memory of one worker and ``max_pixels`` in total.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import signal
import threading
from pathlib import Path
from typing import Any, Final

import numpy as np

from harmscan.imagepolicy import ImageRejected
from harmscan.presets import EvalPreset
from serving.decodecost import check_decode_memory
from serving.decodeworker import Decoded, DecodeLimits, worker_main
from serving.workerprocess import WorkerProcess

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
# conf.sections.serving.DECODE_WALL_FACTOR is the same figure (the settings check that a batch of
# such decodes fits in serving.max_poll_interval_ms; not imported: the decode workers' forkserver
# stays free of pydantic), pinned equal by tests/unit/test_serving_poll_interval.py.
WALL_FACTOR: Final = 3.0
# Past WALL_FACTOR, a worker that is runnable or still gaining CPU time is waited for in windows of
# decode_timeout_s, up to this many times decode_timeout_s in all: on a 2-core host at load ~230 a
# good 1024x768 JPEG overran the 15 s watchdog and was dead-lettered as too_large.
WALL_CAP_FACTOR: Final = 12.0


def cpu_state(pid: int | None) -> tuple[str, float] | None:
    """A process's scheduler state letter (``R`` runnable, ``S`` asleep, ``T`` stopped, ...) and
    the CPU seconds it has used (user + system), from ``/proc``; None where that cannot be read."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return fields[0], (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def starved(before: tuple[str, float] | None, now: tuple[str, float] | None) -> bool:
    """Whether a worker that has not answered is kept waiting for: still runnable, or it used CPU
    since ``before``. Unknown (no ``/proc``) is not starved: the watchdog kills as it always did."""
    if now is None:
        return False
    state, cpu = now
    return state == "R" or (before is not None and cpu > before[1])


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
        waited, busy = 0.0, False
        try:
            self.conn.send((data, preset, limits))
            answered, waited, busy = self._wait(limits)
            if answered:
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
        if alive and busy:
            raise WorkerLost(
                f"not decoded within {waited:g}s of wall-clock time, {WALL_CAP_FACTOR:g}x "
                "serving.decode_timeout_s, on a host too busy to run the decode (worker killed)"
            )
        if alive:
            raise WorkerLost(
                f"not decoded within {waited:g}s of wall-clock time, at least {WALL_FACTOR:g}x "
                "serving.decode_timeout_s, and no longer using CPU (worker killed)"
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

    def _wait(self, limits: DecodeLimits) -> tuple[bool, float, bool]:
        """Wait for the answer: whether it came, the seconds waited, and whether a worker that did
        not answer was still starved (not stuck) when the wait ended.

        The first window is `WALL_FACTOR` x ``timeout_s``; while the worker is `starved` (a busy
        host, not a stuck decoder) further windows of ``timeout_s`` follow, up to
        `WALL_CAP_FACTOR` x ``timeout_s`` in all.
        """
        pid = self.process.pid
        window = limits.timeout_s * WALL_FACTOR
        cap = limits.timeout_s * WALL_CAP_FACTOR
        waited = 0.0
        before = cpu_state(pid)
        while True:
            if self.conn.poll(window):
                return True, waited, False
            waited += window
            now = cpu_state(pid)
            busy = starved(before, now)
            if not busy or waited >= cap - 1e-9:
                return False, waited, busy
            logger.info(
                "decode worker pid %s still decoding after %.3gs on a busy host: waiting longer",
                pid, waited,
            )  # fmt: skip
            before = now
            window = min(limits.timeout_s, cap - waited)

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
