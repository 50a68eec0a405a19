"""Safe resolution of a request's image source into bytes: local path, S3 object, or inline.

Every payload is hostile. A local path is resolved (``realpath``: ``..`` and symlinks included)
and must land under one of the allowed roots before anything is opened; the file is opened with
``O_NONBLOCK | O_NOFOLLOW``, must be a regular file, and at most its cap + 1 bytes are read,
so a FIFO or ``/dev/zero`` never blocks or floods. S3 objects must live in an allowed bucket
(`serving.s3source`). Problems of the input raise `InputRejected` with a typed reason;
infrastructure failures (S3 unreachable) raise `SourceUnavailable`, which the consumer does not
commit (both in `serving.sourceerrors`).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, cast

from conf.settings import ServingSettings
from harmscan.imagefile import read_image_file
from harmscan.imagepolicy import ImageRejected
from serving.headers import RejectReason
from serving.links import opened_file_check, root_of
from serving.s3source import boto3_s3_factory, parse_s3_uri, read_s3_object
from serving.schema import Request, log_safe
from serving.sourceerrors import InputRejected, SourceUnavailable

PATH_MAX: Final = 4096  # Linux: longer paths fail with ENAMETOOLONG


def resolve_allowed_path(raw: str, allowed_roots: Sequence[Path]) -> Path:
    """Resolve ``raw`` (symlinks, ``..``) and check it lies under an allowed root.

    Relative paths are taken relative to the consumer's working directory. Nothing is opened.

    Raises:
        InputRejected: ``bad_schema`` for a malformed path, ``forbidden_path`` outside the roots.
    """
    if "\x00" in raw:
        raise InputRejected("bad_schema", "path contains a NUL byte")
    if len(raw.encode(errors="surrogatepass")) > PATH_MAX:
        # realpath walks a path component by component in Python: a 900 kB path took 30 s of
        # the consumer's CPU (holding the GIL), and no longer path can be opened anyway.
        raise InputRejected(
            "bad_schema",
            f"path of {len(raw.encode(errors='surrogatepass'))} bytes; a path is at most "
            f"{PATH_MAX} bytes (PATH_MAX)",
        )
    if not allowed_roots:
        raise InputRejected("forbidden_path", f"{raw!r}: no serving.allowed_roots configured")
    resolved = Path(os.path.realpath(raw))
    for root in allowed_roots:
        real_root = Path(os.path.realpath(root))
        if resolved == real_root or resolved.is_relative_to(real_root):
            return resolved
    roots = ", ".join(str(r) for r in allowed_roots)
    hint = ""
    if raw.startswith("file:"):
        hint = "; send a plain absolute path, not a file: URI"
    elif not os.path.isabs(raw):
        hint = "; a relative path resolves against the consumer's folder: send an absolute one"
    raise InputRejected(
        "forbidden_path",
        f"{raw!r} resolves to {resolved}, outside serving.allowed_roots ({roots}){hint}",
    )


def read_regular_file(path: Path, max_bytes: int, root: Path | None = None) -> bytes:
    """Read a regular file of at most ``max_bytes`` without ever blocking on a special file.

    Symlinks are not followed: the path was resolved against the allowed roots already, so a
    symlink found here was swapped in since. With ``root`` (the allowed root ``path`` lies
    under), the file opened must lie under it (a folder of the path swapped for a link since is
    caught) and a hard link to another owner's file is refused (`serving.links`).

    Raises:
        InputRejected: ``not_found``, ``forbidden_path`` (a symlink swapped in, another owner's
            hard link, no permission), ``not_a_file`` (FIFO, device, directory) or ``too_large``.
    """
    check = opened_file_check(path, root) if root is not None else None
    try:
        return read_image_file(path, max_bytes=max_bytes, follow_symlinks=False, check=check)
    except ImageRejected as exc:
        raise InputRejected(cast(RejectReason, exc.reason), exc.detail) from None


def decode_inline(text: str, max_bytes: int) -> bytes:
    """Decode inline base64 image bytes, refusing oversize input before decoding it.

    Raises:
        InputRejected: ``too_large`` or ``bad_schema`` (not base64).
    """
    if len(text) > (max_bytes + 2) // 3 * 4 + 4:
        raise InputRejected(
            "too_large",
            f"inline image of {len(text)} base64 characters (over {max_bytes} bytes decoded) > "
            f"serving.max_inline_bytes={max_bytes}; send it by path or s3 instead",
        )
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputRejected(
            "bad_schema", f"image_b64 is not valid base64: {_b64_problem(text, exc)}"
        ) from None
    if len(data) > max_bytes:
        raise InputRejected(
            "too_large", f"inline image of {len(data)} bytes > serving.max_inline_bytes={max_bytes}"
        )
    return data


_B64_OTHER = re.compile(r"[^A-Za-z0-9+/=]")


def _b64_problem(text: str, exc: Exception) -> str:
    """What makes ``text`` invalid, in terms a client can act on."""
    wanted = "standard base64 (A-Z a-z 0-9 + /, '=' padding) on one line"
    if text[:5].lower() == "data:":
        shown = log_safe(text[:40])
        cause = f"it is a data: URL ({shown}...); send only the base64 after the comma"
        return f"{cause}; wanted {wanted}"
    found = _B64_OTHER.search(text)
    if found is None:
        return f"{exc}; wanted {wanted}"
    char = found.group()
    if char.isspace():
        cause = "it holds line breaks or spaces (MIME-style wrapping)"
    elif char in "-_":
        cause = "it uses the URL-safe alphabet (- and _)"
    else:
        cause = f"character {char!r} at position {found.start()}"
    return f"{cause}; wanted {wanted}"


class InputReader:
    """Turns a request into image bytes under the serving limits.

    Args:
        allowed_roots: Folders local paths must resolve into.
        allowed_buckets: Buckets S3 sources may name.
        max_bytes: The default cap of all three sources, in bytes.
        s3_client_factory: Builds a boto3 S3 client on first S3 use.
        max_file_bytes: Largest local file (default ``max_bytes``).
        max_object_bytes: Largest S3 object (default ``max_bytes``).
        max_inline_bytes: Largest inline image, decoded (default ``max_bytes``).
        s3_read_deadline_s: Seconds reading one S3 object may take.
    """

    def __init__(
        self,
        allowed_roots: Sequence[Path],
        allowed_buckets: Sequence[str],
        max_bytes: int = 20 * 1024 * 1024,
        s3_client_factory: Callable[[], Any] | None = None,
        *,
        max_file_bytes: int | None = None,
        max_object_bytes: int | None = None,
        max_inline_bytes: int | None = None,
        s3_read_deadline_s: float = 30.0,
    ) -> None:
        self.allowed_roots = list(allowed_roots)
        self.allowed_buckets = list(allowed_buckets)
        self.max_file_bytes = max_file_bytes or max_bytes
        self.max_object_bytes = max_object_bytes or max_bytes
        self.max_inline_bytes = max_inline_bytes or max_bytes
        self.s3_read_deadline_s = s3_read_deadline_s
        self._s3_factory = s3_client_factory
        self._s3: Any = None

    def read(self, request: Request) -> bytes:
        """The image bytes of a request (thread-safe; boto3 clients are).

        Raises:
            InputRejected: The input is bad (typed reason).
            SourceUnavailable: The source's infrastructure failed.
        """
        if request.kind == "image_b64":
            return decode_inline(request.source, self.max_inline_bytes)
        if request.kind == "s3":
            bucket, key = parse_s3_uri(request.source, self.allowed_buckets)
            client = self._s3_client()
            return read_s3_object(client, bucket, key, self.max_object_bytes,
                                  self.s3_read_deadline_s)  # fmt: skip
        path = resolve_allowed_path(request.source, self.allowed_roots)
        return read_regular_file(path, self.max_file_bytes, root_of(path, self.allowed_roots))

    def _s3_client(self) -> Any:
        if self._s3 is None:
            if self._s3_factory is None:
                raise SourceUnavailable("no S3 client configured")
            self._s3 = self._s3_factory()
        return self._s3


def reader_for(serving: ServingSettings) -> InputReader:
    """The input reader with the serving settings' roots, buckets and size cap."""
    return InputReader(
        serving.allowed_roots,
        serving.allowed_buckets,
        s3_client_factory=boto3_s3_factory(serving.s3_endpoint_url, serving.s3_region),
        max_file_bytes=serving.max_file_bytes,
        max_object_bytes=serving.max_object_bytes,
        max_inline_bytes=serving.max_inline_bytes,
        s3_read_deadline_s=serving.s3_read_deadline_s,
    )
