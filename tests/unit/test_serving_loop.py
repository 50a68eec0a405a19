"""When the loop decodes the next batch ahead of the one in flight (pure, no broker)."""

from __future__ import annotations

import pytest

from conf.loader import load_settings
from serving.batches import decodes_ahead


@pytest.mark.parametrize(
    ("mode", "inflight", "batch_size", "expected"),
    [
        ("full", 16, 16, True),  # a full batch: requests are queueing, overlap for throughput
        ("full", 15, 16, False),  # a partial one: no backlog, finish it first (latency)
        ("full", 1, 16, False),
        ("full", 1, 1, True),
        ("always", 1, 16, True),  # the loop before
        ("always", 16, 16, True),
        ("never", 16, 16, False),
        ("never", 1, 16, False),
    ],
)
def test_decodes_ahead_only_under_a_backlog(
    mode: str, inflight: int, batch_size: int, expected: bool
) -> None:
    assert decodes_ahead(mode, inflight, batch_size) is expected


def test_decode_ahead_defaults_to_full_and_refuses_other_modes() -> None:
    assert load_settings("ci", [], env={}).serving.decode_ahead == "full"
    with pytest.raises(ValueError, match="decode_ahead"):
        load_settings("ci", ["serving.decode_ahead=sometimes"], env={})
