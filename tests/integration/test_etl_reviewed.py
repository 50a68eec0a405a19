"""The ETL's reviewed source against the real broker: decisions (last wins) and inline images from
the review topic become verified files and selection rows."""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harmscan.decisions import Decision
from review.kafka import DecisionWriter, ensure_review_topics
from serving.headers import H_INLINE_REQUEST
from serving.schema import encode_request
from tasks.reviewed import reviewed_rows
from tests.review_support import review_result, review_settings, send_review
from tests.serving_support import BLUE, RED, image_bytes

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def decided(request_id: str, verdict: str, source: str) -> Decision:
    return Decision(request_id, verdict, "ana", 1.0, "harmscan", "1", "safe", 0.5, 0.5, source)  # type: ignore[arg-type]


def test_collect_reviewed(
    make_settings: Callable[..., Any],
    kafka_bootstrap: str,
    unique: Callable[[str], str],
    tmp_path: Path,
) -> None:
    root = tmp_path / "images"
    root.mkdir()
    red = root / "red.jpg"
    red.write_bytes(image_bytes(RED, size=(80, 64)))
    settings = review_settings(make_settings, kafka_bootstrap, unique, [root])
    ensure_review_topics(settings)
    b64 = base64.b64encode(image_bytes(BLUE, "PNG", size=(80, 64))).decode()
    send_review(
        kafka_bootstrap,
        settings.kafka.review_topic,
        [review_result("inline-1", "inline")],
        {"inline-1": [(H_INLINE_REQUEST, encode_request("inline-1", image_b64=b64))]},
    )
    writer = DecisionWriter(settings)
    writer.write(decided("path-1", "safe", str(red)))
    writer.write(decided("path-1", "harmful", str(red)))  # the last decision wins
    writer.write(decided("inline-1", "safe", "inline"))
    writer.write(decided("outside", "harmful", "/etc/passwd"))
    writer.close()

    frame = reviewed_rows(
        settings.kafka, settings.serving, settings.etl, tmp_path / "cache", logging.getLogger()
    )
    assert len(frame) == 2, frame
    assert sorted(frame["label"]) == ["harmful", "safe"]
    assert set(frame["license"]) == {"unknown"}
    assert all(frame["image_id"].str.startswith("reviewed-"))
    for file in frame["file"]:
        assert (tmp_path / "cache" / file).stat().st_size > 0
