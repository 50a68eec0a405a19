"""Reading an S3 object's body within a deadline: a slow endpoint cannot hold a decode thread.

botocore's ``read_timeout`` bounds each wait on the socket, not the read: an endpoint (or a proxy
in front of it) sending a byte every few seconds kept ``Body.read`` going for as long as it liked,
the batch never finished, and past ``serving.max_poll_interval_ms`` the consumer lost its
partitions. The body is read one socket receive at a time (urllib3's ``read1``) with the deadline
checked between them; past it the read is an infrastructure failure (`SourceUnavailable`: the
batch is not committed and is retried), not the request's fault.
"""

from __future__ import annotations

import time
from typing import Any, Final

CHUNK_BYTES: Final = 1 << 20


class ReadTooSlow(TimeoutError):
    """The body was not read within its deadline."""


def read_body(body: Any, max_bytes: int, deadline_s: float, expected: int | None = None) -> bytes:
    """At most ``max_bytes + 1`` bytes of a botocore ``StreamingBody``, within ``deadline_s``.

    Args:
        body: The response's ``Body``.
        max_bytes: The cap; one byte more is read to tell an object over it.
        deadline_s: Seconds the whole read may take.
        expected: The response's ``ContentLength``: fewer bytes (the connection closed early)
            raise, as botocore's own ``read`` did.

    Raises:
        ReadTooSlow: The deadline passed first (how much had arrived is in the message).
        ConnectionError: The body ended before ``expected`` bytes.
    """
    raw = getattr(body, "_raw_stream", None)
    read_some = getattr(raw, "read1", None) or body.read
    deadline = time.monotonic() + deadline_s
    chunks: list[bytes] = []
    size = 0
    while size <= max_bytes:
        if time.monotonic() > deadline:
            body.close()
            raise ReadTooSlow(
                f"{size} bytes arrived in {deadline_s:g}s (serving.s3_read_deadline_s)"
            )
        chunk = read_some(min(CHUNK_BYTES, max_bytes + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if expected is not None and size < min(expected, max_bytes + 1):
        raise ConnectionError(f"the body ended after {size} of {expected} bytes")
    return b"".join(chunks)
