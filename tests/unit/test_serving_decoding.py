"""Decode worker processes: what they run at start-up and what travels between the processes."""

from __future__ import annotations

import io
import os
import platform
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harmscan.imagepolicy import ImageRejected
from harmscan.presets import EvalPreset
from serving import decoding
from serving.decodeworker import DecodeLimits
from serving.decoding import DecodePool

REPO = Path(__file__).resolve().parents[2]


def test_a_worker_does_not_run_the_parents_main_script(tmp_path: Path) -> None:
    """multiprocessing re-imports the parent's ``__main__`` in its children by default: a CLI or
    a script importing torch then costs every worker (and every replacement) seconds."""
    marker = tmp_path / "imported-by.txt"
    script = tmp_path / "main_script.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import os
            import sys

            sys.path.insert(0, {str(REPO)!r})
            with open({str(marker)!r}, "a") as log:
                log.write(f"{{os.getpid()}}\\n")

            if __name__ == "__main__":
                from harmscan.presets import EvalPreset
                from serving.decodeworker import DecodeLimits
                from serving.decoding import DecodePool
                import io
                from PIL import Image

                pool = DecodePool(2, 256)
                limits = DecodeLimits(max_pixels=1_000_000, max_aspect_ratio=None,
                                      timeout_s=5.0, memory_mb=256)
                try:
                    jpeg = io.BytesIO()
                    Image.new("RGB", (320, 240), (220, 30, 30)).save(jpeg, "JPEG")
                    for _ in range(4):
                        pool.decode(jpeg.getvalue(), EvalPreset(), limits)
                    print(os.getpid(), *pool.pids())
                finally:
                    pool.close()
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    parent, *workers = done.stdout.split()
    assert len(workers) == 2
    assert marker.read_text().split() == [parent]  # written by the script alone, not its workers


def _minor_faults(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[7])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="tunes glibc's malloc")
def test_a_worker_reuses_its_decode_buffers() -> None:
    """Each decode's buffers used to be mapped afresh (~400 page faults per 1024x768 JPEG)."""
    y, x = np.mgrid[0:768, 0:1024]
    pixels = np.stack([x % 256, y % 256, (x + y) % 256], axis=-1).astype(np.uint8)
    jpeg = io.BytesIO()
    Image.fromarray(pixels).save(jpeg, "JPEG", quality=90)
    limits = DecodeLimits(max_pixels=2_000_000, max_aspect_ratio=None, timeout_s=5.0, memory_mb=256)
    pool = DecodePool(1, 256)
    try:
        for _ in range(3):
            pool.decode(jpeg.getvalue(), EvalPreset(), limits)
        (pid,) = pool.pids()
        before = _minor_faults(pid)
        for _ in range(10):
            array = pool.decode(jpeg.getvalue(), EvalPreset(), limits)
        per_decode = (_minor_faults(pid) - before) / 10
    finally:
        pool.close()
    assert array.shape == (3, 224, 224)
    assert per_decode < 50


def test_a_decode_past_the_memory_cap_is_too_large_naming_the_setting() -> None:
    """A mostly-zero RGBA PNG under the pixel cap (~100 kB) that needs more memory than allowed."""
    png = io.BytesIO()
    Image.new("RGBA", (4000, 4000)).save(png, "PNG")
    limits = DecodeLimits(max_pixels=50_000_000, max_aspect_ratio=20.0, timeout_s=5.0, memory_mb=64)
    pool = DecodePool(1, 64)
    try:
        with pytest.raises(ImageRejected) as caught:
            pool.decode(png.getvalue(), EvalPreset(), limits)
        assert pool.decode(png_bytes(), EvalPreset(), limits).shape == (3, 224, 224)  # replaced
    finally:
        pool.close()
    assert caught.value.reason == "too_large"
    assert caught.value.detail == "decoding needs more than 64 MB (serving.decode_memory_mb)"


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (320, 240), (220, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def test_a_large_transparent_png_decodes_within_the_worker_memory_cap() -> None:
    side = 7000
    rows = (b"\x00" + b"\x80" * 4 * side) * side
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 6, 0, 0, 0)
    payload = b"\x89PNG\r\n\x1a\n" + b"".join(
        struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        for kind, body in ((b"IHDR", ihdr), (b"IDAT", zlib.compress(rows, 9)), (b"IEND", b""))
    )
    pool = DecodePool(1, 768)
    try:
        limits = DecodeLimits(max_pixels=50_000_000, max_aspect_ratio=20, timeout_s=20,
                              memory_mb=768)  # fmt: skip
        assert pool.decode(payload, EvalPreset(image_size=32), limits).shape == (3, 32, 32)
    finally:
        pool.close()


@pytest.mark.parametrize(
    ("used", "timeout_s", "limit"), [(0.0, 2.0, 2), (0.9, 2.0, 3), (1.95, 2.0, 4), (3.0, 5.0, 8)]
)
def test_a_decode_gets_at_least_its_cpu_seconds(used: float, timeout_s: float, limit: int) -> None:
    from serving.decodeworker import cpu_limit

    # Rounded down, a worker that had used 0.9 s was killed 1.1 s into a 2 s budget.
    assert cpu_limit(used, timeout_s) == limit
    assert cpu_limit(used, timeout_s) - used >= timeout_s


def test_a_decoder_that_crashes_is_corrupt_not_too_large() -> None:
    # A fault signal (here sent from outside, as a decoder bug would raise it) was reported as
    # "too_large: the decode worker died (exit code -11)".
    import os
    import signal
    import threading

    from tests.serving_support import jpeg_scan_bomb

    pool = DecodePool(1, 768)
    try:
        (pid,) = pool.pids()
        threading.Timer(1.0, os.kill, (pid, signal.SIGSEGV)).start()
        limits = DecodeLimits(max_pixels=50_000_000, max_aspect_ratio=None, timeout_s=30,
                              memory_mb=768)  # fmt: skip
        with pytest.raises(ImageRejected) as info:
            pool.decode(jpeg_scan_bomb(), EvalPreset(image_size=32), limits)
        assert info.value.reason == "corrupt"
        assert "SIGSEGV" in info.value.detail
        assert len(pool.pids()) == 1
        assert pool.pids() != [pid]  # replaced
    finally:
        pool.close()


def _small_jpeg() -> bytes:
    jpeg = io.BytesIO()
    Image.new("RGB", (320, 240), (40, 160, 90)).save(jpeg, "JPEG")
    return jpeg.getvalue()


def _stopped_worker_pool(timeout_s: float) -> tuple[DecodePool, DecodeLimits, int]:
    """A pool of one warm worker, then stopped (SIGSTOP): it neither answers nor uses CPU."""
    pool = DecodePool(1, 256)
    limits = DecodeLimits(
        max_pixels=1_000_000, max_aspect_ratio=None, timeout_s=timeout_s, memory_mb=256
    )
    pool.decode(_small_jpeg(), EvalPreset(), limits)  # warm: imports done
    (pid,) = pool.pids()
    os.kill(pid, signal.SIGSTOP)
    deadline = time.monotonic() + 10
    while (decoding.cpu_state(pid) or ("?", 0.0))[0] != "T":  # the signal is delivered later
        assert time.monotonic() < deadline, f"worker {pid} did not stop"
        time.sleep(0.01)
    return pool, limits, pid


def test_a_worker_stuck_without_cpu_is_killed_at_the_watchdog() -> None:
    pool, limits, pid = _stopped_worker_pool(timeout_s=0.2)
    try:
        state = decoding.cpu_state(pid)
        assert state is not None
        assert state[0] == "T"
        started = time.monotonic()
        with pytest.raises(ImageRejected) as lost:
            pool.decode(_small_jpeg(), EvalPreset(), limits)
        waited = time.monotonic() - started
        assert lost.value.reason == "too_large"
        assert "no longer using CPU" in lost.value.detail
        assert "serving.decode_timeout_s" in lost.value.detail
        # Killed at the first window (3 x 0.2 s), long before the cap (12 x 0.2 s).
        assert waited < 0.2 * decoding.WALL_CAP_FACTOR
        assert pid not in pool.pids()
        assert pool.replaced == 1
    finally:
        pool.close()


def test_a_worker_the_busy_host_still_runs_is_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    """At a load average of ~230 a good JPEG overran the 3 x decode_timeout_s watchdog and was
    dead-lettered as too_large. A worker that is runnable (here: reported so while stopped) gets
    more time; it answers once it runs again."""
    pool, limits, pid = _stopped_worker_pool(timeout_s=0.5)
    monkeypatch.setattr(decoding, "cpu_state", lambda _pid: ("R", 1.0))
    # Resumed at twice the watchdog (3 s): 3 s before the cap (12 x 0.5 s) for a tiny decode.
    resume = threading.Timer(0.5 * decoding.WALL_FACTOR * 2, os.kill, (pid, signal.SIGCONT))
    resume.start()
    try:
        array = pool.decode(_small_jpeg(), EvalPreset(), limits)
        assert array.shape == (3, 224, 224)
        assert pool.replaced == 0
        assert pool.pids() == [pid]
    finally:
        resume.cancel()
        os.kill(pid, signal.SIGCONT)
        pool.close()


def test_a_starved_worker_is_killed_at_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    pool, limits, pid = _stopped_worker_pool(timeout_s=0.2)
    monkeypatch.setattr(decoding, "cpu_state", lambda _pid: ("R", 1.0))
    try:
        started = time.monotonic()
        with pytest.raises(ImageRejected) as lost:
            pool.decode(_small_jpeg(), EvalPreset(), limits)
        waited = time.monotonic() - started
        assert lost.value.reason == "too_large"
        assert "too busy" in lost.value.detail
        assert waited >= 0.2 * decoding.WALL_CAP_FACTOR * 0.95
        assert pid not in pool.pids()
    finally:
        pool.close()


@pytest.mark.parametrize(
    ("before", "now", "expected"),
    [
        (("R", 1.0), ("R", 1.0), True),  # runnable, waiting for a core
        (("S", 1.0), ("S", 1.5), True),  # gained CPU since
        (("S", 1.0), ("S", 1.0), False),  # asleep, no CPU: stuck
        (("T", 1.0), ("T", 1.0), False),  # stopped
        (None, ("S", 1.0), False),
        (("R", 1.0), None, False),  # no /proc: the watchdog kills as before
    ],
)
def test_starved_means_runnable_or_gaining_cpu(
    before: tuple[str, float] | None, now: tuple[str, float] | None, expected: bool
) -> None:
    assert decoding.starved(before, now) is expected
