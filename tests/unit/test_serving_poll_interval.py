"""A batch of decodes that can outlast max.poll.interval.ms is refused when the settings load.

The consumer polls between batches only. With ``serving.batch_size=8``, one decode worker,
``serving.decode_timeout_s=2`` and ``serving.max_poll_interval_ms=10000``, eight CPU-heavy JPEGs
took the consumer past the poll interval twice: the broker dropped it from its group mid-batch
and the batch was decoded again (it recovered after 144 s). Such settings now fail at load,
naming the four settings and a poll interval that fits.
"""

from __future__ import annotations

import pytest

from conf.loader import SettingsError, load_settings
from conf.sections.serving import DECODE_WALL_FACTOR
from serving.decoding import WALL_FACTOR


def _serving(*overrides: str):
    return load_settings("ci", list(overrides), env={}).serving


def test_the_defaults_fit_with_room() -> None:
    serving = _serving()
    # 16 images over 2 workers, 3 x 5 s each: 120 s against 300 s.
    assert serving.worst_batch_decode_s == 120.0
    assert serving.worst_batch_decode_s < serving.max_poll_interval_ms / 1000


def test_a_batch_longer_than_the_poll_interval_is_refused_naming_the_fix() -> None:
    with pytest.raises(SettingsError) as refused:
        _serving("serving.batch_size=8", "serving.decode_workers=1",
                 "serving.decode_timeout_s=2", "serving.max_poll_interval_ms=10000")  # fmt: skip
    text = str(refused.value)
    assert "48 s" in text
    for key in ("serving.batch_size=8", "serving.decode_workers=1",
                "serving.decode_timeout_s=2", "serving.max_poll_interval_ms=10000"):  # fmt: skip
        assert key in text
    assert "above 48000" in text


def test_the_suggested_poll_interval_is_accepted() -> None:
    serving = _serving(
        "serving.batch_size=8", "serving.decode_workers=1",
        "serving.decode_timeout_s=2", "serving.max_poll_interval_ms=49000",
    )  # fmt: skip
    assert serving.worst_batch_decode_s == 48.0


def test_more_workers_share_the_batch() -> None:
    # ceil(8 / 3) = 3 decodes each: 18 s fits in 20 s where one worker's 48 s did not.
    serving = _serving(
        "serving.batch_size=8", "serving.decode_workers=3",
        "serving.decode_timeout_s=2", "serving.max_poll_interval_ms=20000",
    )  # fmt: skip
    assert serving.worst_batch_decode_s == 18.0


def test_the_check_uses_the_watchdogs_own_factor() -> None:
    assert DECODE_WALL_FACTOR == WALL_FACTOR
