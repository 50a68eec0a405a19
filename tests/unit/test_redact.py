"""Passwords written into addresses are masked wherever harmscan shows the address."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli.app import _register_areas, app
from conf.loader import SettingsSource, dump_settings, load_settings
from conf.redact import mask_credentials
from registry.client import Registry


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://mlflow:s3cret@db:5432/mlflow", "postgresql://mlflow:***@db:5432/mlflow"),
        ("https://u:p%40ss@mlflow.example/", "https://u:***@mlflow.example/"),
        ("mysql://root:p@ss@h/db", "mysql://root:***@h/db"),  # an "@" in the password too
        (
            "cannot reach https://a:b@c:1/x, nor mysql://r:q@d/y",
            "cannot reach https://a:***@c:1/x, nor mysql://r:***@d/y",
        ),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),  # a port is not a password
        ("http://user@host/api", "http://user@host/api"),  # a user alone
        ("sqlite:///mlflow.db", "sqlite:///mlflow.db"),
        ("no address here: a:b@c", "no address here: a:b@c"),
    ],
)
def test_mask_credentials(text: str, expected: str) -> None:
    assert mask_credentials(text) == expected


URI = "postgresql://mlflow:hunter2@db.internal:5432/mlflow"


def test_the_settings_dump_masks_a_password_in_an_address() -> None:
    settings = load_settings("ci", [f"mlflow.tracking_uri={URI}"], env={})
    flat = dump_settings(settings)
    assert flat["mlflow.tracking_uri"] == "postgresql://mlflow:***@db.internal:5432/mlflow"
    assert "hunter2" not in str(flat)
    assert settings.mlflow.tracking_uri == URI  # only the display is masked


def test_harmscan_settings_prints_no_password() -> None:
    _register_areas()
    result = CliRunner().invoke(
        app, ["--profile", "ci", "--set", f"mlflow.tracking_uri={URI}", "settings"]
    )
    assert result.exit_code == 0, result.output
    assert "mlflow.tracking_uri = postgresql://mlflow:***@db.internal" in result.output
    assert "hunter2" not in result.output


def test_registry_messages_mask_the_password() -> None:
    registry = Registry(URI)
    assert "hunter2" not in repr(registry)
    error = registry._unavailable("models:/harmscan@champion", OSError(f"refused by {URI}"))
    assert "hunter2" not in str(error)
    assert "postgresql://mlflow:***@db.internal" in str(error)
    assert registry.tracking_uri == URI  # MLflow still gets the real address


def test_an_address_with_a_password_reaches_a_flow_through_its_environment() -> None:
    source = SettingsSource.from_cli("ci", [f"mlflow.tracking_uri={URI}", "train.epochs=2"])
    kept, env = source.without_secrets()
    assert env == {"HARMSCAN_MLFLOW__TRACKING_URI": URI}
    assert "hunter2" not in str(kept.overrides)  # the flow's parameters, shown by Prefect
    assert kept.resolve(env).mlflow.tracking_uri == URI
    assert kept.resolve(env).train.epochs == 2
