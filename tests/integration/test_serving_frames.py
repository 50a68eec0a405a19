"""An animated GIF through the consumer on the real broker: a harmful later frame is seen.

The GIF's first frame is safe and a later one harmful (for the deterministic colour model the
serving tests register: red is harmful, blue safe). The same requests are served twice, with
``serving.max_frames`` 1 (the first frame only) and 8: the harmful frame is missed by the first and
decides the second, and a still JPEG's result is the same in both.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from serving.producer import RequestProducer
from tests.kafka_support import ConsumerThread, has_ids, read_topic, results_by_id
from tests.serving_support import (
    BLUE,
    RED,
    animated_gif,
    register_model,
    serving_overrides,
    write_image,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SAFE_FRAMES = [BLUE, (30, 40, 200), (40, 30, 210), (30, 50, 190), (50, 30, 180)]


def test_a_harmful_later_frame_decides_with_max_frames(
    mlflow_server: str,
    kafka_topics: Callable[..., str],
    kafka_bootstrap: str,
    make_settings: Callable[..., object],
    tmp_path: Path,
) -> None:
    name = f"frames-{os.urandom(4).hex()}"
    register_model(mlflow_server, name, tmp_path / "model")
    root = tmp_path / "images"
    root.mkdir()
    gif = root / "animated.gif"
    gif.write_bytes(animated_gif([*SAFE_FRAMES, RED]))  # frame 5 is the harmful one
    jpeg = write_image(root / "still.jpg", BLUE)
    requests = kafka_topics("requests", partitions=2)
    served = {}
    for max_frames in (1, 8):
        topics = {
            "requests": requests,
            **{kind: kafka_topics(kind) for kind in ("results", "review", "dead_letter")},
        }
        settings = make_settings(
            *serving_overrides(
                bootstrap=kafka_bootstrap, tracking_uri=mlflow_server, model_name=name,
                topics=topics, group=f"g-{os.urandom(4).hex()}", roots=[root],
            ),
            f"serving.max_frames={max_frames}",
        )  # fmt: skip
        if max_frames == 1:
            producer = RequestProducer(settings)
            ids = {"gif": producer.send_path(gif), "jpeg": producer.send_path(jpeg)}
            assert not producer.flush().failed
        with ConsumerThread(settings):
            messages = read_topic(
                kafka_bootstrap, topics["results"], until=has_ids(set(ids.values())), timeout=90
            )
        grouped = results_by_id(messages)
        served[max_frames] = {key: grouped[i][-1] for key, i in ids.items()}

    first_only, eight = served[1]["gif"], served[8]["gif"]
    assert (first_only.label, first_only.frames_scored, first_only.worst_frame) == ("safe", 1, 0)
    assert (eight.label, eight.frames_scored, eight.worst_frame) == ("harmful", 6, 5)
    assert first_only.p_harmful < eight.p_harmful
    assert eight.frames_failed == 0
    still_1, still_8 = served[1]["jpeg"], served[8]["jpeg"]
    assert (still_1.p_harmful, still_1.label) == (still_8.p_harmful, still_8.label)
    assert (still_8.frames_scored, still_8.worst_frame) == (1, 0)
