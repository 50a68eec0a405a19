"""Reading an image file's bytes safely: a regular file only, never blocking, at most a cap."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path

from harmscan.imagepolicy import DEFAULT_MAX_BYTES, ImageRejected


def read_image_file(
    path: Path | str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    follow_symlinks: bool = True,
    check: Callable[[int, os.stat_result], None] | None = None,
) -> bytes:
    """Read a regular file's bytes without ever blocking on a FIFO, device or socket.

    The caller resolves and authorises the path; this only refuses what is not a regular file and
    reads at most ``max_bytes + 1`` bytes.

    Args:
        path: The file.
        max_bytes: Refuse files larger than this.
        follow_symlinks: With False, a symlink at ``path`` (one swapped in after the caller
            resolved it) is refused as ``forbidden_path``.
        check: Called with the opened file's descriptor and ``fstat`` before reading; it may
            raise `ImageRejected` (the caller's own policy on the very file read).

    Raises:
        ImageRejected: ``not_found``, ``not_a_file``, ``forbidden_path`` or ``too_large``.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    if not follow_symlinks:
        flags |= os.O_NOFOLLOW
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise ImageRejected("not_found", f"no such file: {path}") from None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EACCES, errno.EPERM):
            raise ImageRejected("forbidden_path", f"{path}: {exc.strerror}") from None
        if exc.errno in (errno.ENOTDIR, errno.ENAMETOOLONG):
            raise ImageRejected("not_found", f"{path}: {exc.strerror}") from None
        raise ImageRejected("not_a_file", f"cannot open {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ImageRejected("not_a_file", f"{path} is not a regular file")
        if check is not None:
            check(fd, info)
        if info.st_size > max_bytes:
            raise ImageRejected("too_large", f"{info.st_size} bytes > limit {max_bytes}")
        chunks: list[bytes] = []
        size = 0
        while size <= max_bytes:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > max_bytes:
        raise ImageRejected("too_large", f"{path} grew beyond {max_bytes} bytes while read")
    return b"".join(chunks)
