"""What every flow shares: its time limit and its failure note (pure: no Prefect server)."""

from __future__ import annotations

import time

import pytest

from flows.common import FlowTimeout, failure_markdown, time_limit


def test_a_flow_past_its_time_limit_fails_naming_the_setting(make_settings) -> None:
    import prefect.utilities.timeout  # noqa: F401  (imported before the clock starts)

    settings = make_settings("prefect.etl_timeout_s=0.5")
    started = time.monotonic()
    with pytest.raises(FlowTimeout, match=r"raise prefect\.etl_timeout_s"):
        _sleep_within(settings, 5.0)
    assert time.monotonic() - started < 3


def test_no_limit_when_the_setting_is_null(make_settings) -> None:
    settings = make_settings("prefect.etl_timeout_s=null")
    with time_limit(settings, "etl"):
        time.sleep(0.1)


def test_the_failure_note_has_the_error_and_the_settings_that_matter(make_source) -> None:
    source = make_source("etl.max_per_side=7")
    text = failure_markdown(
        "etl",
        "Flow run encountered an exception: EmptySelection: check openimages.bucket",
        {"source": source.model_dump(mode="json"), "seed": 3, "subsets": None},
    )
    assert "# etl failed" in text
    assert "check openimages.bucket" in text
    assert "| seed | `3` |" in text
    assert "| etl.max_per_side | `7` |" in text
    assert "| openimages.bucket |" in text
    assert "train.epochs" not in text  # only what shapes the ETL


def test_the_failure_note_survives_settings_that_do_not_resolve() -> None:
    text = failure_markdown("train", "boom", {"source": {"profile": "nope"}})
    assert "did not resolve" in text
    assert "unknown profile 'nope'" in text


def _sleep_within(settings, seconds: float) -> None:
    with time_limit(settings, "etl"):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.05)
