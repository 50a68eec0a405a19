"""Settings that are refused when the settings load, not minutes later in a command: each error
names the setting and what it takes."""

from __future__ import annotations

import pytest

from conf.loader import SettingsError, load_settings


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1:5000",
        "https://mlflow.example.com/tracking",
        "sqlite:///mlflow.db",
        "sqlite:////var/lib/mlflow/mlflow.db",
        "postgresql+psycopg2://mlflow@db:5432/mlflow",
        "file:///tmp/mlruns",
        "databricks",
        "databricks://team",
    ],
)
def test_tracking_uri_takes_the_forms_mlflow_reads(uri: str) -> None:
    assert load_settings("ci", [f"mlflow.tracking_uri={uri}"], env={}).mlflow.tracking_uri == uri


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("notaurl", "has no scheme"),
        ("127.0.0.1:5000", "has no scheme"),
        ("localhost:5000", "has a scheme MLflow does not read (localhost:)"),
        ("./mlruns", "has no scheme"),
        ("http://", "names no host"),
        ("http://127.0.0.1:99999", "is not a URI"),
        ("sqlite://", "names no database file"),
        ("ftp://host/x", "has a scheme MLflow does not read (ftp:)"),
        (" http://127.0.0.1:5000", "has white space"),
    ],
)
def test_tracking_uri_without_a_scheme_is_refused(uri: str, why: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings("ci", [f"mlflow.tracking_uri={uri}"], env={})
    message = str(caught.value)
    assert f"mlflow.tracking_uri {uri!r} {why}" in message
    assert "e.g. http://127.0.0.1:5000" in message
