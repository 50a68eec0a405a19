"""The etl flow's typed parameters and how they override the settings."""

from __future__ import annotations

import pytest
import requests
from prefect.states import Failed
from prefect.utilities.callables import parameter_schema

from conf.loader import SettingsError
from flows.etl import apply_overrides, etl, typed_overrides, work_key
from harmscan.openimages import ClassResolutionError
from tasks.openimages import DownloadError, download_metadata


def test_flow_parameters_are_typed_for_the_ui():
    schema = parameter_schema(etl.fn).model_dump()
    props = schema["properties"]
    assert {
        "settings",
        "profile",
        "overrides",
        "max_per_side",
        "max_per_label",
        "seed",
        "subsets",
    } <= set(props)
    types = {p.get("type") for p in props["max_per_side"]["anyOf"]}
    assert types == {"integer", "null"}
    subsets = next(p for p in props["subsets"]["anyOf"] if p.get("type") == "array")
    assert "validation" in str(subsets["items"])


def test_typed_overrides_become_settings(make_settings):
    base = make_settings()
    extra = typed_overrides(max_per_side=7, max_per_label=3, seed=99, subsets=["validation"])
    settings = apply_overrides(base, [*extra, "etl.balance=false"])
    assert settings.etl.max_per_side == 7
    assert settings.etl.max_per_label == 3
    assert settings.etl.seed == 99
    assert settings.etl.balance is False
    assert settings.openimages.subsets == ["validation"]
    assert settings.paths == base.paths  # the rest is untouched
    assert work_key(settings) != work_key(base)


def test_no_overrides_keeps_the_same_object(make_settings):
    base = make_settings()
    assert apply_overrides(base, []) is base
    assert typed_overrides(None, None, None, None) == []


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("etl.max_per_side=0", "max_per_side"),
        ("etl", "key=value"),
        ("nosuch.section.key=1", "not a section"),
        ("etl.no_such_key=1", "no_such_key"),
    ],
)
def test_bad_overrides_fail_clearly(make_settings, override, message):
    with pytest.raises(SettingsError, match=message):
        apply_overrides(make_settings(), [override])


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (DownloadError("short body"), True),
        (requests.ConnectionError("reset"), True),
        (ValueError("openimages.metadata_files lacks ..."), False),
        (ClassResolutionError("unknown Open Images class 'Gnu'"), False),
    ],
)
def test_metadata_task_retries_only_transient_errors(error, retried):
    condition = download_metadata.retry_condition_fn
    assert condition(download_metadata, None, Failed(data=error)) is retried
