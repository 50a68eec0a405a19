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


SASL = [
    "kafka.security_protocol=SASL_SSL",
    "kafka.sasl_mechanism=SCRAM-SHA-512",
    "kafka.sasl_username=harmscan",
    "kafka.sasl_password=s3cret",
]


@pytest.mark.parametrize("protocol", ["SASL_SSL", "SASL_PLAINTEXT"])
@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_protocol_with_mechanism_and_credentials_loads(protocol: str, mechanism: str) -> None:
    items = [*SASL[2:], f"kafka.security_protocol={protocol}", f"kafka.sasl_mechanism={mechanism}"]
    config = load_settings("ci", items, env={}).kafka.client_config()
    assert (config["security.protocol"], config["sasl.mechanism"]) == (protocol, mechanism)


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (
            ["kafka.security_protocol=SASL_PLAINTEXT"],
            "kafka.security_protocol SASL_PLAINTEXT needs kafka.sasl_mechanism, "
            "kafka.sasl_username, kafka.sasl_password (kafka.sasl_mechanism: one of PLAIN, "
            "SCRAM-SHA-256, SCRAM-SHA-512",
        ),
        (
            [i for i in SASL if "username" not in i],
            "kafka.security_protocol SASL_SSL needs kafka.sasl_username (",
        ),
        (
            [i for i in SASL if "password" not in i],
            "needs kafka.sasl_password (kafka.sasl_mechanism: one of PLAIN, SCRAM-SHA-256, "
            "SCRAM-SHA-512; the password as HARMSCAN_KAFKA__SASL_PASSWORD)",
        ),
        (
            ["kafka.sasl_mechanism=PLAIN"],
            "kafka.sasl_mechanism is set, but kafka.security_protocol PLAINTEXT sends no SASL "
            "credentials: set kafka.security_protocol to SASL_SSL",
        ),
        (
            ["kafka.security_protocol=SSL", *SASL[1:]],
            "kafka.sasl_mechanism, kafka.sasl_username, kafka.sasl_password are set, but "
            "kafka.security_protocol SSL sends no SASL credentials",
        ),
    ],
)
def test_sasl_settings_are_checked_together(items: list[str], expected: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings("ci", items, env={})
    assert expected in str(caught.value)
    assert "s3cret" not in str(caught.value)
