"""Prefect task: download candidate images from the public S3 bucket and verify every one.

Unsigned boto3 requests (``botocore.UNSIGNED``) to ``s3_endpoint_url`` (None = AWS), keys
``{subset}/{ImageID}.jpg``, a bounded thread pool, botocore's retries plus our own backoff on
transient errors. Each image is decoded with `harmscan.imageio.decode_image`, stored upright in the
cache and recorded in ``verified.jsonl``; a later run skips what that record already holds (and
re-checks its sha256). Failures are counted by reason, never dropped silently.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from conf.settings import EtlSettings, OpenImagesSettings
from harmscan.digests import file_sha256
from harmscan.imagecheck import verify_image
from harmscan.manifest import EXTENSIONS
from harmscan.sampling import final_selection, next_candidates, side_targets
from tasks.openimages import retry_on

STATE_FILE = "verified.jsonl"
MISSING_CODES = {"NoSuchKey", "404", "NotFound", "NoSuchBucket"}
DENIED_CODES = {"AccessDenied", "403", "Forbidden", "AllAccessDisabled"}
# Failures worth remembering: the same bytes would fail the same way again. Not ``forbidden``:
# a bucket whose policy is fixed serves the image on the next run.
PERMANENT = {"missing_key", "corrupt", "truncated", "too_small", "too_large", "bad_metadata"}


def make_s3_client(openimages: OpenImagesSettings, etl: EtlSettings) -> Any:
    """An unsigned S3 client for the public bucket, with botocore's standard retries."""
    config = Config(
        signature_version=UNSIGNED,
        retries={"max_attempts": etl.retries + 1, "mode": "standard"},
        max_pool_connections=etl.download_workers,
        connect_timeout=openimages.http_timeout_s,
        read_timeout=openimages.http_timeout_s,
    )
    return boto3.client(
        "s3",
        endpoint_url=openimages.s3_endpoint_url,
        region_name=openimages.region,
        config=config,
    )


def s3_key(subset: str, image_id: str) -> str:
    """Object key of an image in the Open Images bucket."""
    return f"{subset}/{image_id}.jpg"


class AccessDenied(PermissionError):
    """S3 answered 403 for an object: a missing key of an unlistable bucket, or a private one."""


def fetch_bytes(client: Any, bucket: str, key: str, *, max_bytes: int, retries: int) -> bytes:
    """GET one object, retrying transient errors with exponential backoff.

    Raises:
        LookupError: The key (or bucket) does not exist.
        AccessDenied: HTTP 403 (not retried).
        ValueError: The object is larger than ``max_bytes``.
        ConnectionError: Still failing after ``retries`` extra attempts.
    """
    for attempt in range(retries + 1):
        try:
            response = client.get_object(Bucket=bucket, Key=key)
            if int(response.get("ContentLength", 0)) > max_bytes:
                response["Body"].close()
                raise ValueError(f"{key}: {response['ContentLength']} bytes > {max_bytes}")
            return bytes(response["Body"].read())
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in MISSING_CODES:
                raise LookupError(f"s3://{bucket}/{key} does not exist ({code})") from None
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            if code in DENIED_CODES or status == 403:
                raise AccessDenied(
                    f"s3://{bucket}/{key}: {code} (HTTP 403): S3 answers this for a missing key "
                    "when anonymous readers may not list the bucket, and for every key of a "
                    "bucket that is not public (the client is unsigned); check openimages.bucket "
                    "and its policy"
                ) from None
            if status and status < 500 and status != 429:
                raise ConnectionError(f"s3://{bucket}/{key}: {code} (HTTP {status})") from None
            error: Exception = exc
        except (BotoCoreError, OSError) as exc:
            error = exc
        if attempt < retries:
            time.sleep(min(8.0, 0.25 * 2**attempt))
    raise ConnectionError(f"s3://{bucket}/{key}: {error}")


class VerifiedState:
    """The append-only record of images already fetched and checked (or known to be bad)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / STATE_FILE
        self.records: dict[str, dict[str, Any]] = {}
        # This run's failures that are not recorded (network, forbidden): image id -> reason.
        self.unsettled: dict[str, str] = {}
        self._lock = threading.Lock()
        if self.path.is_file():
            for line in self.path.read_text().splitlines():
                if line.strip():
                    record = json.loads(line)
                    self.records[record["image_id"]] = record

    def usable(self, image_id: str) -> dict[str, Any] | None:
        """The record of an image that needs no new GET (verified and intact, or known bad)."""
        record = self.records.get(image_id)
        if record is None:
            return None
        if record["status"] == "failed":
            return record
        path = self.folder / record["file"]
        if path.is_file() and file_sha256(path) == record["sha256"]:
            return record
        return None

    def add(self, record: dict[str, Any]) -> None:
        """Record one outcome durably (flushed at once, so an interrupted run keeps it)."""
        with self._lock:
            self.records[record["image_id"]] = record
            self.folder.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as handle:
                handle.write(json.dumps(record, sort_keys=True) + "\n")


def _one(
    client: Any,
    row: dict[str, Any],
    openimages: OpenImagesSettings,
    etl: EtlSettings,
    state: VerifiedState,
) -> dict[str, Any]:
    """Fetch, verify and store one image; settled outcomes go to the state at once."""
    record = _fetch_verify(client, row, openimages, etl, state.folder)
    if record["status"] == "ok" or record["reason"] in PERMANENT:
        state.add(record)
    else:
        state.unsettled[record["image_id"]] = record["reason"]
    return record


def _fetch_verify(
    client: Any, row: dict[str, Any], openimages: OpenImagesSettings, etl: EtlSettings, folder: Path
) -> dict[str, Any]:
    image_id, subset = row["image_id"], row["subset"]
    base = {"image_id": image_id, "subset": subset}
    try:
        data = fetch_bytes(
            client,
            openimages.bucket,
            s3_key(subset, image_id),
            max_bytes=etl.max_image_bytes,
            retries=etl.retries,
        )
    except LookupError as exc:
        return base | {"status": "failed", "reason": "missing_key", "detail": str(exc)}
    except AccessDenied as exc:
        return base | {"status": "failed", "reason": "forbidden", "detail": str(exc)}
    except ValueError as exc:
        return base | {"status": "failed", "reason": "too_large", "detail": str(exc)}
    except ConnectionError as exc:
        return base | {"status": "failed", "reason": "network", "detail": str(exc)}
    outcome = verify_image(
        data,
        rotation=row.get("rotation"),
        min_side=etl.min_image_side,
        max_bytes=etl.max_image_bytes,
    )
    if isinstance(outcome, str):
        return base | {"status": "failed", "reason": outcome.split(":", 1)[0], "detail": outcome}
    rel = f"{subset}/{image_id}.{EXTENSIONS[outcome.format]}"
    outcome.write(folder / rel)
    return base | {"status": "ok", "file": rel, **outcome.record()}


def fetch_round(
    rows: pd.DataFrame,
    client: Any,
    state: VerifiedState,
    openimages: OpenImagesSettings,
    etl: EtlSettings,
) -> Counter[str]:
    """Fetch and verify ``rows`` (those the state does not already settle); return GET count."""
    todo = [r for r in rows.to_dict("records") if state.usable(r["image_id"]) is None]
    stats: Counter[str] = Counter(skipped=len(rows) - len(todo))
    columns = (TextColumn("images"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    pool = ThreadPoolExecutor(etl.download_workers)
    try:
        with Progress(*columns) as progress:
            bar = progress.add_task("images", total=len(todo))
            futures = [pool.submit(_one, client, r, openimages, etl, state) for r in todo]
            for future in as_completed(futures):
                record = future.result()
                stats["fetched"] += 1
                stats[record.get("reason", "ok")] += 1
                progress.advance(bar)
    except BaseException:
        # Ctrl-C, SIGTERM or a failed fetch: the GETs under way end, the queued ones never
        # start (a `with` block would run every one of them first); the next run resumes.
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return stats


@task(
    retries=2,
    retry_delay_seconds=[5.0, 30.0],
    retry_condition_fn=retry_on(BotoCoreError, ClientError, ConnectionError, TimeoutError),
    cache_policy=NO_CACHE,
)
def download_images(
    candidates: Path, openimages: OpenImagesSettings, etl: EtlSettings, folder: Path, out_dir: Path
) -> dict[str, Any]:
    """Download and verify images in rank order until each side reaches its target.

    Failed images are replaced by the next candidates in line for up to ``etl.refill_rounds``
    extra rounds.

    Args:
        candidates: Parquet of the ranked candidates (from `select_candidates`).
        openimages: Bucket, endpoint, region, timeouts.
        etl: Caps, balance, workers, retries, verification limits.
        folder: The image cache (``{subset}/{ImageID}.jpg`` and ``verified.jsonl``).
        out_dir: Where ``selection.parquet`` goes.

    Returns:
        ``selection`` (parquet path, in rank order), ``targets``, ``gets`` (GET calls made),
        ``selected`` per side, ``failures`` by reason and ``failed_ids`` by reason.
    """
    logger = get_run_logger()
    ranked = pd.read_parquet(candidates)
    available = ranked["label"].value_counts().to_dict()
    targets = side_targets(available, max_per_side=etl.max_per_side, balance=etl.balance)
    state = VerifiedState(folder)
    client = make_s3_client(openimages, etl)
    tried: set[str] = set()
    gets = 0
    for round_no in range(etl.refill_rounds + 1):
        have = [i for i in tried if state.records.get(i, {}).get("status") == "ok"]
        batch = next_candidates(ranked, targets=targets, have=have, tried=tried)
        if batch.empty:
            break
        stats = fetch_round(batch, client, state, openimages, etl)
        gets += stats["fetched"]
        tried |= set(batch["image_id"])
        logger.info("round %d: %d candidates, %s", round_no, len(batch), dict(stats))
    return _report(ranked, state, tried, targets, etl, out_dir, gets)


def _report(
    ranked: pd.DataFrame,
    state: VerifiedState,
    tried: set[str],
    targets: dict[str, int],
    etl: EtlSettings,
    out_dir: Path,
    gets: int,
) -> dict[str, Any]:
    failed_ids: dict[str, list[str]] = {}
    ok: dict[str, dict[str, Any]] = {}
    for image_id in sorted(tried):
        record = state.records.get(image_id)
        if record is None:  # not remembered (network, forbidden): retried by the next run
            failed_ids.setdefault(state.unsettled.get(image_id, "network"), []).append(image_id)
        elif record["status"] == "failed":
            failed_ids.setdefault(record["reason"], []).append(image_id)
        else:
            ok[image_id] = record
    failures = {reason: len(ids) for reason, ids in sorted(failed_ids.items())}
    chosen = final_selection(ranked, ok, balance=etl.balance)
    verified = pd.DataFrame(list(ok.values()))
    if not verified.empty:
        if "format" not in verified:  # records written before the format was kept
            verified["format"] = None
        verified["format"] = verified["format"].fillna("jpeg")
        verified = verified[["image_id", "file", "format", "sha256", "bytes", "width", "height"]]
        chosen = chosen.merge(verified, on="image_id", how="left")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "selection.parquet"
    chosen.to_parquet(path, index=False)
    get_run_logger().info(
        "selected %s; failures %s", chosen["label"].value_counts().to_dict(), dict(failures)
    )
    return {
        "selection": path,
        "targets": targets,
        "gets": gets,
        "selected": {str(k): int(v) for k, v in chosen["label"].value_counts().items()},
        "failures": failures,
        "failed_ids": failed_ids,
    }
