"""The etl flow's typed parameters and how they override the settings."""

from __future__ import annotations

import pytest
import requests
from prefect.states import Failed
from prefect.utilities.callables import parameter_schema

from conf.loader import SettingsError, SettingsSource
from flows.common import resolve
from flows.etl import etl, work_key
from harmscan.classtree import ClassResolutionError
from tasks.download import DownloadError
from tasks.openimages import download_metadata


def test_flow_parameters_are_typed_for_the_ui():
    schema = parameter_schema(etl.fn).model_dump()
    props = schema["properties"]
    assert {"source", "max_per_side", "max_per_label", "seed", "subsets"} <= set(props)
    types = {p.get("type") for p in props["max_per_side"]["anyOf"]}
    assert types == {"integer", "null"}
    subsets = next(p for p in props["subsets"]["anyOf"] if p.get("type") == "array")
    assert "validation" in str(subsets["items"])


def test_typed_parameters_become_settings(make_source):
    base = make_source("etl.balance=false")
    changes = {
        "etl.max_per_side": 7,
        "etl.max_per_label": 3,
        "etl.seed": 99,
        "openimages.subsets": ["validation"],
    }
    settings = resolve(base, changes)
    assert settings.etl.max_per_side == 7
    assert settings.etl.max_per_label == 3
    assert settings.etl.seed == 99
    assert settings.etl.balance is False
    assert settings.openimages.subsets == ["validation"]
    assert settings.paths == base.resolve().paths  # the rest is untouched
    assert work_key(settings) != work_key(base.resolve())


def test_parameters_left_out_change_nothing(make_source):
    base = make_source()
    assert base.with_overrides({"etl.seed": None}) is base


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"etl.max_per_side": 0}, "max_per_side"),
        ({"nosuch.section.key": 1}, "valid keys at the top level"),
        ({"etl.max_per_sid": 1}, "did you mean max_per_side"),
    ],
)
def test_bad_parameters_fail_clearly(make_source, changes, message):
    with pytest.raises(SettingsError, match=message):
        resolve(make_source(), changes)


def test_the_flow_parameter_round_trips_exactly_through_json(make_source, tmp_path):
    """What a deployment stores and a worker reads back is the same settings."""
    odd = tmp_path / "data, v2 #1"
    sasl = [
        "kafka.security_protocol=SASL_SSL",
        "kafka.sasl_mechanism=PLAIN",
        "kafka.sasl_username=u",
    ]
    source = make_source(
        f"paths.root={odd}", "kafka.group_id=0777", *sasl, "kafka.sasl_password=no"
    )
    again = SettingsSource.model_validate_json(source.model_dump_json())
    assert again == source
    settings = again.resolve(env={})
    assert settings.paths.root == odd
    assert settings.kafka.group_id == "0777"
    assert settings.kafka.sasl_password is not None
    assert settings.kafka.sasl_password.get_secret_value() == "no"
    assert settings == source.resolve(env={})


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
