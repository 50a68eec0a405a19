"""What the file a path request opened must be: under its allowed root as the kernel opened it
(`opened_file_check`), and not another owner's hard link.

Hard links under an allowed root give a name inside the root to a file that may live outside it.
``realpath`` resolves ``..`` and symlinks, but a hard link has no target to resolve: every name of
the file is equally real, and one of them may lie outside ``serving.allowed_roots`` (a user who can
write into the root links ``/etc/shadow`` or another tenant's image there). A file's other names
cannot be listed, so the rule goes by who made it: a file with more than one name is read only
if it belongs to the owner of the allowed root it was found under (a dataset built by the ETL
hard-links its images, all of one owner, and keeps serving). With the kernel's
``fs.protected_hardlinks`` (the default on most distributions) a user can only link files they
own or may read and write, so an owner's own link gives nothing away; any other is
``forbidden_path``, checked on the opened file (the very one read, not a name checked earlier).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from harmscan.imagepolicy import ImageRejected


def root_of(path: Path, allowed_roots: Sequence[Path]) -> Path | None:
    """The allowed root a resolved ``path`` lies under (resolved itself), or None."""
    for root in allowed_roots:
        real_root = Path(os.path.realpath(root))
        if path == real_root or path.is_relative_to(real_root):
            return real_root
    return None


def opened_path(fd: int) -> Path | None:
    """Where the kernel says an open descriptor's file is (``/proc/self/fd``), or None."""
    try:
        return Path(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        return None


def opened_file_check(path: Path, root: Path) -> Callable[[int, os.stat_result], None]:
    """The check `harmscan.imagefile.read_image_file` runs on the opened file: it must lie under
    ``root`` as the kernel opened it, and follow the hard-link rule (see the module).

    ``O_NOFOLLOW`` guards only the last component: a directory of the path swapped for a
    symlink between ``realpath`` and ``open`` (``root/user`` -> ``/etc``) was followed, and a
    file outside the root read. The kernel's own name for the opened file tells.

    Raises (when called):
        ImageRejected: ``forbidden_path`` outside the root, or another owner's hard link.
    """
    owner = os.stat(root).st_uid

    def check(fd: int, info: os.stat_result) -> None:
        where = opened_path(fd)
        if where is not None and not (where == root or where.is_relative_to(root)):
            raise ImageRejected(
                "forbidden_path",
                f"{path} opened {where}, outside {root}: a folder of the path was swapped for a "
                "link after it was resolved",
            )
        if info.st_nlink > 1 and info.st_uid != owner:
            raise ImageRejected(
                "forbidden_path",
                f"{path} is a hard link ({info.st_nlink} names) to a file of uid {info.st_uid}, "
                f"not of the allowed root's owner (uid {owner}): its other names may lie outside "
                f"{root}; copy the image into the root instead of linking it",
            )

    return check
