"""Prefect task: reviewers' decisions into labelled images beside Open Images.

Reads the compacted decisions topic to its end (the last decision per request wins) and the
review topic for the inline requests' bytes, reads each image the way serving does (a path must
resolve under ``serving.allowed_roots``, no symlink followed, size capped; inline bytes from the
review message; ``s3://`` sources are not fetched by the ETL and are counted), verifies it like
every ETL image, and writes it below ``<image folder>/reviewed/``. Returns a selection of rows
(`harmscan.reviewed.reviewed_row`) for `tasks.dataset.build_dataset`. A broker that cannot be
reached leaves the dataset without reviewed images and says so; it does not fail the ETL.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from conf.settings import EtlSettings, KafkaSettings, ServingSettings
from harmscan.decisions import (
    INLINE_REQUEST_HEADER,
    Decision,
    DecisionError,
    decode_decision,
)
from harmscan.imagecheck import verify_image
from harmscan.imagefile import read_image_file
from harmscan.imagepolicy import ImageRejected
from harmscan.reviewed import FOLDER, latest_decisions, reviewed_image_id, reviewed_row


def read_topic_to_end(kafka: KafkaSettings, topic: str, timeout: float = 10.0) -> list[Any]:
    """Every message of ``topic`` from its start to its current end (empty if it is missing),
    oldest first (`kafkaio.reading.read_to_end`)."""
    from kafkaio.reading import read_to_end

    messages = read_to_end(kafka, topic, timeout, purpose="etl", missing_ok=True)
    return sorted(messages, key=lambda m: (m.timestamp()[1], m.partition(), m.offset()))


def image_bytes(decision: Decision, inline: dict[str, bytes], serving: ServingSettings) -> bytes:
    """The bytes of a reviewed image, under the serving rules: the bytes the reviewer judged,
    when the decision names their digest.

    Raises:
        ImageRejected: Outside the roots, missing, not a file, too large, or not available;
            ``changed`` when the source now holds other bytes than those reviewed (the
            reviewer's label belongs to the image that was there).
    """
    data = _source_bytes(decision, inline, serving)
    if decision.sha256 is not None and hashlib.sha256(data).hexdigest() != decision.sha256:
        raise ImageRejected("changed", f"{decision.source} changed after it was reviewed")
    return data


def _source_bytes(decision: Decision, inline: dict[str, bytes], serving: ServingSettings) -> bytes:
    if decision.source == "inline":
        return _inline_bytes(inline.get(decision.id), serving.max_inline_bytes)
    if decision.source.startswith("s3://"):
        raise ImageRejected("not_found", "s3 sources are not fetched by the ETL")
    resolved = Path(os.path.realpath(decision.source))
    roots = [Path(os.path.realpath(r)) for r in serving.allowed_roots]
    if not any(resolved == r or resolved.is_relative_to(r) for r in roots):
        raise ImageRejected("forbidden_path", f"{decision.source} is outside serving.allowed_roots")
    return read_image_file(resolved, max_bytes=serving.max_file_bytes, follow_symlinks=False)


def _inline_bytes(request: bytes | None, max_bytes: int) -> bytes:
    try:
        text = json.loads(request or b"null")["image_b64"]
        data = base64.b64decode(text[: (max_bytes + 2) // 3 * 4 + 4], validate=True)
    except (TypeError, KeyError, ValueError, binascii.Error):
        raise ImageRejected("not_found", "the inline request is not on the review topic") from None
    return data


@task(cache_policy=NO_CACHE)
def collect_reviewed(
    kafka: KafkaSettings,
    serving: ServingSettings,
    etl: EtlSettings,
    image_folder: Path,
    out_dir: Path,
) -> Path | None:
    """The reviewed images as selection rows (files written below ``image_folder/reviewed``).

    Returns:
        ``out_dir/reviewed.parquet``: one row per usable decision (columns of
        `harmscan.reviewed.reviewed_row`); None when there are none or Kafka is unreachable.
    """
    rows = reviewed_rows(kafka, serving, etl, image_folder, get_run_logger())
    if rows.empty:
        return None
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "reviewed.parquet"
    rows.to_parquet(path, index=False)
    return path


def reviewed_rows(
    kafka: KafkaSettings,
    serving: ServingSettings,
    etl: EtlSettings,
    image_folder: Path,
    logger: Any,
) -> pd.DataFrame:
    """The work of `collect_reviewed`: the rows, images written (empty frame if none)."""
    from confluent_kafka import KafkaException

    try:
        decisions_raw = read_topic_to_end(kafka, kafka.decisions_topic)
        review_raw = read_topic_to_end(kafka, kafka.review_topic) if decisions_raw else []
    except (KafkaException, TimeoutError) as exc:
        where = kafka.bootstrap_servers
        logger.warning("no reviewed images: Kafka at %s not readable (%s)", where, exc)
        return pd.DataFrame()
    decisions: list[Decision] = []
    for message in decisions_raw:
        try:
            decisions.append(decode_decision(message.value()))
        except DecisionError as exc:
            logger.warning("skipping a decision that is not one: %s", exc)
    inline = {
        message.key().decode(errors="replace"): value
        for message in review_raw
        for name, value in message.headers() or []
        if name == INLINE_REQUEST_HEADER and message.key()
    }
    rows, skipped = [], Counter[str]()
    for decision in latest_decisions(decisions).values():
        try:
            data = image_bytes(decision, inline, serving)
        except ImageRejected as exc:
            skipped[exc.reason] += 1
            continue
        verified = verify_image(data, min_side=etl.min_image_side, max_bytes=etl.max_image_bytes)
        if isinstance(verified, str):
            skipped[verified.split(":", 1)[0]] += 1
            continue
        file = f"{FOLDER}/{reviewed_image_id(decision.id)}.jpg"
        verified.write(image_folder / file)
        rows.append(reviewed_row(decision, {"file": file, **verified.record()}))
    logger.info("reviewed images: %d taken, skipped %s", len(rows), dict(skipped))
    return pd.DataFrame(rows)
