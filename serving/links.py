"""Hard links under an allowed root: a name inside the root for a file that may live outside it.

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

from harmscan.imageio import ImageRejected


def root_of(path: Path, allowed_roots: Sequence[Path]) -> Path | None:
    """The allowed root a resolved ``path`` lies under (resolved itself), or None."""
    for root in allowed_roots:
        real_root = Path(os.path.realpath(root))
        if path == real_root or path.is_relative_to(real_root):
            return real_root
    return None


def hard_link_check(path: Path, root: Path) -> Callable[[os.stat_result], None]:
    """The check `harmscan.imageio.read_image_file` runs on the opened file (see the module).

    Raises (when called):
        ImageRejected: ``forbidden_path`` for another owner's file with more than one name.
    """
    owner = os.stat(root).st_uid

    def check(info: os.stat_result) -> None:
        if info.st_nlink > 1 and info.st_uid != owner:
            raise ImageRejected(
                "forbidden_path",
                f"{path} is a hard link ({info.st_nlink} names) to a file of uid {info.st_uid}, "
                f"not of the allowed root's owner (uid {owner}): its other names may lie outside "
                f"{root}; copy the image into the root instead of linking it",
            )

    return check
