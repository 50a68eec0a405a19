"""S3 image sources: an ``s3://bucket/key`` checked against the allowed buckets, the object read
with a ranged GET within its deadline (`serving.s3read`), and the boto3 clients that read it."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from serving.s3read import ReadTooSlow, read_body
from serving.sourceerrors import InputRejected, SourceUnavailable

MAX_S3_KEY_BYTES = 1024
# S3 errors of the credentials or the clock, not of the object: every request would fail alike,
# so they are infrastructure failures (not committed), not a dead letter per request.
CREDENTIAL_ERRORS = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "RequestTimeTooSkewed",
        "AccountProblem",
        "AllAccessDisabled",
    }
)


def split_s3_uri(uri: str) -> tuple[str, str]:
    """Split ``s3://bucket/key`` into bucket and key, checking only its shape.

    Raises:
        InputRejected: ``bad_schema`` for a malformed URI, ``forbidden_path`` for a key with a
            ``.`` or ``..`` segment.
    """
    if not uri.startswith("s3://"):
        raise InputRejected("bad_schema", f"s3 source must look like s3://bucket/key, got {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket or not key:
        raise InputRejected("bad_schema", f"s3 source must look like s3://bucket/key, got {uri!r}")
    if len(key.encode()) > MAX_S3_KEY_BYTES:
        raise InputRejected(
            "bad_schema",
            f"s3 key of {len(key.encode())} bytes; S3 keys are at most {MAX_S3_KEY_BYTES} bytes",
        )
    if any(segment in (".", "..") for segment in re.split(r"[/\\]", key)):
        raise InputRejected(
            "forbidden_path",
            f"s3 key {key[:200]!r} has a '.' or '..' segment: a server or proxy that resolves "
            "them (path-style URLs are /bucket/key) would read another key or bucket; "
            "name the object by its plain key",
        )
    return bucket, key


def parse_s3_uri(uri: str, allowed_buckets: Sequence[str]) -> tuple[str, str]:
    """Split ``s3://bucket/key`` and check the bucket is allowed.

    Raises:
        InputRejected: ``bad_schema`` for a malformed URI, ``forbidden_path`` for another bucket
            or a key with a ``.`` or ``..`` segment.
    """
    bucket, key = split_s3_uri(uri)
    if bucket not in allowed_buckets:
        valid = ", ".join(allowed_buckets) or "none configured (serving.allowed_buckets)"
        raise InputRejected("forbidden_path", f"bucket {bucket!r} is not allowed; allowed: {valid}")
    return bucket, key


def read_s3_object(
    client: Any, bucket: str, key: str, max_bytes: int, deadline_s: float = 30.0
) -> bytes:
    """Read at most ``max_bytes`` of an S3 object with a ranged GET within ``deadline_s``.

    Raises:
        InputRejected: ``not_found``, ``forbidden_path`` (access denied) or ``too_large``.
        SourceUnavailable: S3 could not be reached, answered with a server error, or sent the
            body slower than ``deadline_s`` allows (`serving.s3read`).
    """
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        response = client.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{max_bytes}")
        total = _total_size(response)
        if total is not None and total > max_bytes:
            raise InputRejected("too_large", f"s3://{bucket}/{key}: {total} bytes > {max_bytes}")
        length = response.get("ContentLength")
        data = read_body(response["Body"], max_bytes, deadline_s, length)
    except (ReadTooSlow, ConnectionError) as exc:
        raise SourceUnavailable(f"s3://{bucket}/{key}: {exc}") from exc
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code == "InvalidRange" or status == 416:  # no byte 0: the object exists, empty
            return b""
        if code in CREDENTIAL_ERRORS:
            raise SourceUnavailable(f"s3://{bucket}/{key}: {code} (check the credentials)") from exc
        if code == "KeyTooLongError":
            raise InputRejected("bad_schema", f"s3://{bucket}/{key[:60]}...: {code}") from None
        if code == "InvalidObjectState":  # archived (Glacier): the object must be restored first
            raise InputRejected(
                "forbidden_path", f"s3://{bucket}/{key}: archived, restore the object first"
            ) from None
        if code in ("NoSuchKey", "NoSuchBucket", "404") or status == 404:
            raise InputRejected("not_found", f"s3://{bucket}/{key}: {code}") from None
        if code in ("AccessDenied", "403") or status == 403:
            raise InputRejected("forbidden_path", f"s3://{bucket}/{key}: {code}") from None
        raise SourceUnavailable(f"s3://{bucket}/{key}: {exc}") from exc
    except BotoCoreError as exc:
        raise SourceUnavailable(f"s3://{bucket}/{key}: {exc}") from exc
    if len(data) > max_bytes:
        raise InputRejected("too_large", f"s3://{bucket}/{key}: more than {max_bytes} bytes")
    return bytes(data)


def _total_size(response: dict[str, Any]) -> int | None:
    content_range = str(response.get("ContentRange") or "")
    if "/" in content_range and content_range.rsplit("/", 1)[1].isdigit():
        return int(content_range.rsplit("/", 1)[1])
    return None


def boto3_s3_factory(endpoint_url: str | None, region: str) -> Callable[[], Any]:
    """A factory of boto3 S3 clients for `InputReader` (credentials from boto3's chain)."""

    def build() -> Any:
        import boto3
        from botocore.config import Config

        # read_timeout bounds one wait on the socket; the whole read has its own deadline.
        config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5,
                        read_timeout=10)  # fmt: skip
        return boto3.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)

    return build
