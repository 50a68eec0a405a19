"""Settings that are refused when the settings load, not minutes later in a command: each error
names the setting and what it takes."""

from __future__ import annotations

from pathlib import Path

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


GOOD_CRONS = [
    "0 2 * * *",
    "30 1 * * mon-fri",
    "*/15 6-22 * * *",
    "0 3 1,15 * *",
    "0 0 L * *",
    "0 4 * JAN-MAR 0",
    "0 2 * * 7",
    "0 2 * * 5#2",
    "0 2 * * mon#2",
    "0 2 ? * *",
    "0 2 * * ?",
    "@daily",
    "@Hourly",
]


@pytest.mark.parametrize("cron", GOOD_CRONS)
def test_a_cron_string_prefect_takes_loads(cron: str) -> None:
    assert (
        load_settings("ci", [f"prefect.retrain_cron={cron}"], env={}).prefect.retrain_cron == cron
    )


@pytest.mark.parametrize("cron", GOOD_CRONS)
def test_what_loads_passes_the_deploy_check(cron: str) -> None:
    pytest.importorskip("prefect")
    from stack.deploy import validate_schedule

    validate_schedule(cron, "UTC")  # the full check of `harmscan deploy` agrees


@pytest.mark.parametrize(
    ("cron", "why"),
    [
        ("every night", "has 2 fields, not 5"),
        ("0 2 * *", "has 4 fields, not 5"),
        ("0 2 * * * 0", "has 6 fields, not 5"),
        ("61 2 * * *", "has '61' in its minute field (0-59)"),
        ("0 24 * * *", "has '24' in its hour field (0-23)"),
        ("0 2 0 * *", "has '0' in its day-of-month field (1-31)"),
        ("0 2 * 13 *", "has '13' in its month field (1-12, jan-dec)"),
        ("0 2 * * 8", "has '8' in its day-of-week field (0-7, sun-sat)"),
        ("0 2 * * monday", "has 'monday' in its day-of-week field"),
        ("H 2 * * *", "has 'H' in its minute field"),
        ("*/0 * * * *", "has '*/0' in its minute field"),
        ("@reboot", "is not a nickname Prefect takes"),
        ("0 2 ? ? ?", "has '?' in its month field"),  # "?" is for the day fields only
        ("? 2 * * *", "has '?' in its minute field"),
    ],
)
def test_a_bad_cron_string_is_refused_at_load(cron: str, why: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings("ci", [f"prefect.retrain_cron={cron}"], env={})
    message = str(caught.value)
    assert f"prefect.retrain_cron {cron!r} {why}" in message
    assert "minute hour day-of-month month day-of-week (e.g. '0 2 * * *'" in message


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/New_York"])
def test_an_iana_time_zone_loads(zone: str) -> None:
    assert load_settings("ci", [f"prefect.timezone={zone}"], env={}).prefect.timezone == zone


def test_a_zone_prefect_does_not_know_is_blamed_on_the_zone_not_the_cron() -> None:
    pytest.importorskip("prefect")
    from stack.deploy import DeployError, validate_schedule

    with pytest.raises(DeployError, match=r"prefect\.timezone 'posixrules' is not a time zone"):
        validate_schedule("0 2 * * *", "posixrules")


# posixrules and the posix/ and right/ copies open as zones here but Prefect refuses them.
@pytest.mark.parametrize(
    "zone",
    [
        "Mars/Olympus",
        "CEST+2",
        "",
        "../etc/passwd",
        "posixrules",
        "right/UTC",
        "posix/Europe/Berlin",
    ],
)
def test_a_bad_time_zone_is_refused_at_load(zone: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings("ci", [f"prefect.timezone={zone}"], env={})
    assert f"prefect.timezone {zone!r} is not an IANA time zone (valid examples: UTC" in str(
        caught.value
    )


def _refusal(items: list[str], env: dict[str, str] | None = None, **kwargs: object) -> str:
    with pytest.raises(SettingsError) as caught:
        load_settings(kwargs.pop("profile", "ci"), items, env=env or {}, **kwargs)  # type: ignore[arg-type]
    return str(caught.value)


def test_an_unknown_floor_gets_a_did_you_mean(tmp_path) -> None:
    assert _refusal(["mlflow.floors.acc=0.5"]).endswith(
        "mlflow.floors.acc: unknown key; valid keys here: accuracy, precision, recall, f1, auc, "
        "pr_auc, ece (did you mean accuracy, auc?)"
    )
    extra = tmp_path / "floors.yaml"
    extra.write_text("mlflow: {floors: {pr-auc: 0.7}}\n")
    assert "mlflow.floors.pr-auc: unknown key; valid keys here: accuracy" in _refusal(
        [], config_file=extra
    )
    assert "(did you mean pr_auc" in _refusal([], config_file=extra)
    assert "(key acc: unknown key (did you mean accuracy, auc?))" in _refusal(
        ["mlflow.floors={acc: 0.5}"]
    )


def test_a_list_item_that_is_no_choice_names_the_choices() -> None:
    message = _refusal(["train.models=mobilenet"])
    assert message.endswith(
        "'mobilenet' is not one of mobilenet_v2, resnet50 (did you mean mobilenet_v2?)"
    )
    assert "[mobilenet]" not in message
    assert _refusal(["train.models=mobilenet_v2"]).endswith("for one item write [mobilenet_v2]")


def test_an_unknown_profile_from_the_environment_names_the_variable() -> None:
    assert _refusal([], env={"HARMSCAN_PROFILE": "prod"}, profile=None).startswith(
        "unknown profile 'prod' (from HARMSCAN_PROFILE); valid profiles: ci, compose, local"
    )
    assert _refusal([], profile="prod").startswith("unknown profile 'prod'; valid profiles")


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (
            "train:\n  epochs: 3\ntrain:\n  lr: 0.1\n",
            "line 3, column 1: duplicate key 'train' (first on line 1)",
        ),
        (
            "mlflow:\n  floors:\n    auc: 0.7\n    auc: 0.8\n",
            "line 4, column 5: duplicate key 'auc' (first on line 3)",
        ),
        (
            "train: {epochs: 3, epochs: 4}\n",
            "line 1, column 20: duplicate key 'epochs' (first on line 1)",
        ),
    ],
)
def test_a_key_written_twice_in_a_settings_file_is_refused(tmp_path, text: str, where: str) -> None:
    extra = tmp_path / "twice.yaml"
    extra.write_text(text)
    assert _refusal([], config_file=extra) == f"{extra} is not valid YAML: {where}"
    env = {"HARMSCAN_CONFIG": str(extra)}
    assert _refusal([], env=env) == f"{extra} is not valid YAML: {where}"


def test_a_yaml_merge_key_is_not_a_duplicate(tmp_path) -> None:
    extra = tmp_path / "merge.yaml"
    extra.write_text("train:\n  <<: {epochs: 3}\n  lr: 0.1\n")
    train = load_settings("ci", config_file=extra, env={}).train
    assert (train.epochs, train.lr) == (3, 0.1)


def test_two_services_of_the_stack_on_one_port_are_refused() -> None:
    clash = r"stack\.kafka_port and stack\.mlflow_port are the same"
    with pytest.raises(SettingsError, match=clash):
        load_settings("ci", ["stack.mlflow_port=9092", "stack.kafka_port=9092"], env={})
    assert load_settings("local", env={}).stack.kafka_port == 9092  # the defaults are apart
    for profile in ("ci", "compose"):
        load_settings(profile, env={})


@pytest.mark.parametrize(
    ("yaml_text", "key", "message"),
    [
        ("train:\n  epochs: true\n", "train.epochs", "true is a yes/no, not a number"),
        ("train:\n  lr: false\n", "train.lr", "false is a yes/no, not a number"),
        ("train:\n  wise_alphas: [0.5, true]\n", "train.wise_alphas", "true or false is a yes/no"),
        ("mlflow:\n  floors: {auc: true}\n", "mlflow.floors", "true or false is a yes/no"),
    ],
)
def test_a_yes_no_where_a_number_belongs_is_refused(
    tmp_path: Path, yaml_text: str, key: str, message: str
) -> None:
    # pydantic would read true as 1 and false as 0: one epoch, a learning rate of 0.
    path = tmp_path / "settings.yaml"
    path.write_text(yaml_text)
    with pytest.raises(SettingsError, match=rf"{key}: {message}"):
        load_settings("ci", [], config_file=path, env={})


def test_yes_no_settings_and_numbers_still_load(tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text(
        "train:\n  epochs: 2\n  batch_size: 8.0\n  augment: false\nserving:\n  gc_freeze: true\n"
    )
    settings = load_settings("ci", [], config_file=path, env={})
    assert (settings.train.epochs, settings.train.batch_size) == (2, 8)
    assert settings.train.augment is False
    assert settings.serving.gc_freeze is True
