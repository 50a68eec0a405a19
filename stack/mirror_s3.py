"""The mirror's S3 side: seed a bucket with the images in the Open Images layout, delete it.

Moto's S3 server (`stack.mirror.MirrorServers`) does not check signatures, so unsigned
(anonymous) boto3 clients read the seeded bucket as they read the public Open Images bucket.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# moto accepts any credentials; these only let boto3 sign the seeding requests.
DUMMY_CREDENTIALS = {"aws_access_key_id": "mirror", "aws_secret_access_key": "mirror-secret"}


def iter_images(images_dir: Path) -> Iterator[tuple[str, Path]]:
    """(key, path) of every file below images_dir, the key being its relative POSIX path."""
    for path in sorted(images_dir.rglob("*")):
        if path.is_file():
            yield path.relative_to(images_dir).as_posix(), path


def s3_client(endpoint: str, region: str = "us-east-1") -> Any:
    """A signed boto3 S3 client for the mirror (dummy credentials; moto ignores them)."""
    import boto3  # lazy: boto3 is heavy and only needed here

    return boto3.client("s3", endpoint_url=endpoint, region_name=region, **DUMMY_CREDENTIALS)


def seed_bucket(
    endpoint: str, bucket: str, images_dir: Path, region: str = "us-east-1", workers: int = 8
) -> int:
    """Create ``bucket`` (if absent), make it public-read and upload every file below images_dir.

    Keys are the paths relative to images_dir, so ``mirror/images`` gives the real Open Images
    layout ``{train,validation,test}/{ImageID}.jpg``. Returns the number of objects uploaded.
    """
    if not images_dir.is_dir():
        raise FileNotFoundError(
            f"images folder {images_dir} does not exist (expected mirror/images)"
        )
    client = s3_client(endpoint, region)
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        client.create_bucket(Bucket=bucket)
    # Like the real Open Images bucket: anyone may read, unsigned. moto needs both the policy
    # (GET) and public-read object ACLs (its HEAD checks the action "s3:HeadObject", which no
    # valid policy names); servers without ACLs (MinIO) get the policy only.
    client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(_public_read_policy(bucket)))
    use_acl = _acl_supported(client, bucket)

    def upload(item: tuple[str, Path]) -> None:
        key, path = item
        extra = {"ACL": "public-read"} if use_acl else {}
        client.put_object(
            Bucket=bucket, Key=key, Body=path.read_bytes(), ContentType="image/jpeg", **extra
        )

    items = list(iter_images(images_dir))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(upload, items))
    logger.info("seeded s3://%s at %s with %d objects", bucket, endpoint, len(items))
    return len(items)


def _acl_supported(client: Any, bucket: str) -> bool:
    """Whether the server takes a public-read ACL on an object (it rejects the probe if not)."""
    from botocore.exceptions import ClientError

    probe = ".harmscan-acl-probe"
    try:
        client.put_object(Bucket=bucket, Key=probe, Body=b"", ACL="public-read")
    except ClientError as exc:
        logger.info("S3 server refuses object ACLs (%s); relying on the bucket policy", exc)
        return False
    client.delete_object(Bucket=bucket, Key=probe)
    return True


def _public_read_policy(bucket: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "PublicRead",
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
            }
        ],
    }


def delete_bucket(endpoint: str, bucket: str, region: str = "us-east-1") -> None:
    """Delete every object of ``bucket`` and the bucket itself."""
    client = s3_client(endpoint, region)
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys})
    client.delete_bucket(Bucket=bucket)
