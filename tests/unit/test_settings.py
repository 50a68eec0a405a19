"""The settings layers and their error messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from conf.loader import SettingsError, SettingsSource, dump_settings, load_settings, update


def test_layers_apply_in_order(tmp_path: Path) -> None:
    extra = tmp_path / "extra.yaml"
    extra.write_text("train:\n  epochs: 7\n  lr: 0.5\n")
    env = {"HARMSCAN_TRAIN__EPOCHS": "9", "HARMSCAN_CONFIG": str(extra)}
    settings = load_settings("ci", ["train.batch_size=3"], env=env)
    assert settings.train.epochs == 9  # env beats the file
    assert settings.train.lr == 0.5  # the file beats the profile
    assert settings.train.batch_size == 3  # --set beats all
    assert settings.profile == "ci"


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("train.epochz=3", "did you mean epochs"),
        ("serving.runtime=tensorflow", "'tensorflow' is not one of onnx, torch"),
        ("train.models=[vgg16]", "'mobilenet_v2' or 'resnet50'"),
        ("nope.x=1", "valid keys at the top level"),
        ("etl.split={train: 0.5, val: 0.1, test: 0.1}", "sum to 1"),
        ("classes.safe=[Gun]", "both harmful and safe"),
        ("classes.never_safe=[Person]", "both never_safe and safe"),
        ("train.weights={vgg: none}", "valid: mobilenet_v2, resnet50"),
        ("mlflow.floors.acuracy=0.7", "valid keys here: accuracy, precision"),
        ('serving.allowed_buckets=["s3://images"]', "not S3 bucket names"),
    ],
)
def test_bad_setting_names_the_valid_choices(override: str, expected: str) -> None:
    with pytest.raises(SettingsError, match=expected.replace("(", r"\(")):
        load_settings("ci", [override], env={})


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        (["mlflow.floors.auc=0.8"], {"accuracy": 0.6, "auc": 0.8}),
        (
            ["mlflow.floors.f1=0.5", "mlflow.floors.auc=0.7"],
            {"accuracy": 0.6, "auc": 0.7, "f1": 0.5},
        ),
        ({"mlflow.floors.auc": 0.9}, {"accuracy": 0.6, "auc": 0.9}),
        (['mlflow.floors={"auc": 0.7}'], {"auc": 0.7}),  # a whole mapping replaces
    ],
)
def test_a_dotted_key_changes_one_entry_of_a_mapping_setting(how, expected) -> None:
    assert load_settings("ci", how, env={}).mlflow.floors == expected


def test_an_environment_variable_changes_one_entry_of_a_mapping_setting() -> None:
    env = {"HARMSCAN_MLFLOW__FLOORS__AUC": "0.75"}
    assert load_settings("ci", env=env).mlflow.floors == {"accuracy": 0.6, "auc": 0.75}


def test_floor_metrics_are_the_metrics_the_gate_computes() -> None:
    from typing import get_args

    from conf.settings import FloorMetric
    from harmscan.metrics import METRIC_NAMES

    assert set(get_args(FloorMetric)) == set(METRIC_NAMES)


def test_unknown_profile_lists_profiles() -> None:
    with pytest.raises(SettingsError, match=r"valid profiles: ci, compose, local$"):
        load_settings("prod", env={})
    with pytest.raises(SettingsError, match=r"ci, compose, local \(did you mean local\?\)$"):
        load_settings(None, env={"HARMSCAN_PROFILE": "lcoal"})


def test_unknown_env_variable_fails() -> None:
    with pytest.raises(SettingsError, match="HARMSCAN_KAFKA__BOOTSTRAP"):
        load_settings("ci", env={"HARMSCAN_KAFKA__BOOTSTRAP": "x:1"})


def test_settings_are_frozen_and_secrets_masked() -> None:
    sasl = ["kafka.security_protocol=SASL_SSL", "kafka.sasl_mechanism=PLAIN"]
    items = [*sasl, "kafka.sasl_username=u", "kafka.sasl_password=hunter2"]
    settings = load_settings("ci", items, env={})
    with pytest.raises(ValueError, match="frozen"):
        settings.train.epochs = 1  # type: ignore[misc]
    flat = dump_settings(settings)
    assert flat["kafka.sasl_password"] != "hunter2"
    assert "hunter2" not in str(flat)


@pytest.mark.parametrize(
    ("override", "attribute", "expected"),
    [
        # str fields keep the text exactly; YAML would make these False, 511 and 1.1.
        ("openimages.bucket=no", ("openimages", "bucket"), "no"),
        ("kafka.group_id=0777", ("kafka", "group_id"), "0777"),
        ("mlflow.experiment=1.10", ("mlflow", "experiment"), "1.10"),
        ("paths.root=/data, v2 #1", ("paths", "root"), Path("/data, v2 #1")),
        # typed fields convert the text by their type
        ("train.augment=no", ("train", "augment"), False),
        ("train.epochs=0777", ("train", "epochs"), 777),
        ("train.lr=1.10", ("train", "lr"), 1.1),
        ("train.limit_batches=null", ("train", "limit_batches"), None),
        ("openimages.s3_endpoint_url=null", ("openimages", "s3_endpoint_url"), None),
        ("classes.exclude=[no, '0777']", ("classes", "exclude"), ["no", "0777"]),
        ('classes.exclude=["a, b", "c #d"]', ("classes", "exclude"), ["a, b", "c #d"]),
        (
            "serving.allowed_roots=[/a, /b c]",
            ("serving", "allowed_roots"),
            [Path("/a"), Path("/b c")],
        ),
        ("mlflow.floors={auc: 0.7}", ("mlflow", "floors"), {"auc": 0.7}),
        ("train.weights.resnet50=/w, x #1.pth", ("train", "weights", "resnet50"), "/w, x #1.pth"),
    ],
)
def test_values_are_parsed_by_the_field_type(override, attribute, expected) -> None:
    key, raw = override.split("=", 1)
    variable = "HARMSCAN_" + key.upper().replace(".", "__")
    for settings in (
        load_settings("ci", [override], env={}),  # --set
        load_settings("ci", env={variable: raw}),  # the environment
    ):
        value: object = settings
        for part in attribute:
            value = value[part] if isinstance(value, dict) else getattr(value, part)
        assert value == expected


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.epochs=three", "'three' is not a whole number$"),
        ("train.augment=perhaps", "'perhaps' is not true or false$"),
        ("train.recipe=bogus", "'bogus' is not one of finetune, probe, lp-ft, prior$"),
        ("train.prior_mix=abc", "'abc' is not a number or null$"),
        ("train.wise_alpha=abc", "'abc' is not a number, auto or null$"),
        ("train.models=[vgg16]", r"each item one of mobilenet_v2, resnet50 \(at 0: .*'resnet50'"),
        ("train.models=vgg16", r"one of .*; 'vgg16' is not one of mobilenet_v2, resnet50$"),
        ("serving.allowed_roots=/a, /b", r'write \["/a, /b"\], for several \[/a, /b\]$'),
        ("mlflow.floors={acc: 0.5}", r"each key one of accuracy, .*\(key acc: "),
        ("mlflow.floors={auc:0.5}", "write a space after each colon"),
    ],
)
def test_a_value_its_field_cannot_take_is_named(override, message) -> None:
    with pytest.raises(SettingsError, match=message) as raised:
        load_settings("ci", [override], env={})
    assert len(str(raised.value).splitlines()) == 1
    assert "Literal[" not in str(raised.value)


@pytest.mark.parametrize(
    ("override", "line"),
    [
        ("train.recipe=prior", "train.recipe=prior needs train.head=prior"),
        ("train.weights={vgg: none}", "train.weights has unknown architectures ['vgg']; valid: "),
        ("train.calibration_photos=gateset", "train.calibration_photos names the gate set "),
    ],
)
def test_a_rule_across_values_says_it_once_without_the_whole_section(override, line) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings("ci", [override], env={})
    message = str(raised.value)
    assert message.splitlines()[1].startswith(f"  {line}")
    assert "Value error" not in message
    assert "{'" not in message  # not the section's every value


def test_update_is_typed_checked_and_returns_a_new_frozen_object() -> None:
    settings = load_settings("ci", env={})
    changed = update(settings, {"train.epochs": 3, "serving.allowed_roots": [Path("/img")]})
    assert changed.train.epochs == 3
    assert changed.serving.allowed_roots == [Path("/img")]
    assert settings.train.epochs != 3  # the original is untouched
    assert update(settings, {}) is settings
    with pytest.raises(SettingsError, match="did you mean epochs"):
        update(settings, {"train.epochz": 3})
    with pytest.raises(SettingsError, match=r"train\.epochs"):
        update(settings, {"train.epochs": 0})
    with pytest.raises(ValueError, match="frozen"):
        changed.train.epochs = 1  # type: ignore[misc]


def test_settings_source_from_the_command_line() -> None:
    source = SettingsSource.from_cli("ci", ["train.epochs=3", "kafka.group_id=0777"])
    assert source.overrides == {"train.epochs": 3, "kafka.group_id": "0777"}
    with pytest.raises(SettingsError, match="did you mean epochs"):
        SettingsSource.from_cli("ci", ["train.epochz=3"])


def test_test_suite_variables_are_not_settings() -> None:
    settings = load_settings("ci", env={"HARMSCAN_TEST_PREFECT_API_URL": "http://x"})
    assert settings.profile == "ci"


def test_bucket_names_are_the_ones_botocore_accepts() -> None:
    import botocore.handlers

    from conf.sections.serving import _BUCKET_NAME

    assert f"^{_BUCKET_NAME.pattern}$" == botocore.handlers.VALID_BUCKET.pattern
    assert load_settings("ci", ["serving.allowed_buckets=[images-2026, a_b.c]"], env={})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"train:\n  epochs: [1\n", r"is not valid YAML: line 3, column 1: expected ',' or '\]'"),
        (b"train:\n  epoch: 3\n", r"train.epoch: unknown key; .*\(did you mean epochs\?\)$"),
        (b"a: b\n\xff\xfe\n", r"is not a text \(UTF-8\) file$"),
        (b"- a\n", "must hold a mapping at the top, not list$"),
    ],
)
def test_a_bad_settings_file_is_named_with_what_is_wrong(
    tmp_path: Path, text: bytes, message: str
) -> None:
    path = tmp_path / "extra.yaml"
    path.write_bytes(text)
    with pytest.raises(SettingsError, match=message) as raised:
        load_settings("ci", config_file=path, env={})
    assert "Traceback" not in str(raised.value)
    with pytest.raises(SettingsError, match="is a folder, not a YAML file"):
        load_settings("ci", config_file=tmp_path, env={})


def test_secrets_given_with_set_reach_a_flow_through_the_environment_not_its_parameters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import click
    import typer

    from cli.context import CliState, source_of

    for name in ("HARMSCAN_KAFKA__SASL_PASSWORD", "HARMSCAN_REVIEW__TOKEN"):
        monkeypatch.setenv(name, "")  # recorded, so what source_of sets is undone after the test
        monkeypatch.delenv(name)
    sasl = [
        "kafka.security_protocol=SASL_SSL",
        "kafka.sasl_mechanism=PLAIN",
        "kafka.sasl_username=u",
    ]
    items = [*sasl, "kafka.sasl_password=s3cret-x1", "review.token=tok-x1", "train.epochs=2"]
    state = CliState("ci", items, None)
    ctx = typer.Context(click.Command("train"), obj=state)

    source = source_of(ctx)

    assert "s3cret-x1" not in source.model_dump_json()  # what Prefect stores and shows
    assert "tok-x1" not in source.model_dump_json()
    assert source.overrides == {
        "kafka.security_protocol": "SASL_SSL",
        "kafka.sasl_mechanism": "PLAIN",
        "kafka.sasl_username": "u",
        "train.epochs": 2,
    }
    settings = source.resolve()  # as the flow resolves it, in this process
    assert settings.kafka.sasl_password is not None
    assert settings.kafka.sasl_password.get_secret_value() == "s3cret-x1"
    assert settings.review.token is not None
    assert settings.review.token.get_secret_value() == "tok-x1"
    assert settings.train.epochs == 2
    cleared, env = SettingsSource.from_cli("ci", ["review.token=null"]).without_secrets()
    assert env == {"HARMSCAN_REVIEW__TOKEN": "null"}
    assert cleared.resolve(env).review.token is None


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("mlflow.floors.auc=5", "'5' is not a number, at least 0 and at most 1$"),
        ("mlflow.floors.ece=nan", "'nan' is not a number, at least 0 and at most 1$"),
        ("mlflow.floors={auc: 7}", r"each value a number, at least 0 and at most 1 \(at auc: "),
        ("train.wise_alphas=[2]", r"each item a number, at least 0 and at most 1 \(at 0: "),
        ("train.wise_alphas=[]", "train.wise_alphas: List should have at least 1 item"),
        ("train.models=[]", "train.models: List should have at least 1 item"),
        ("openimages.subsets=[]", "openimages.subsets: List should have at least 1 item"),
        ("stack.kafka_port=99999", "stack.kafka_port: Input should be less than or equal to 65535"),
        ("stack.mlflow_port=0", "stack.mlflow_port: Input should be greater than or equal to 1"),
        ("kafka.bootstrap_servers=", "kafka.bootstrap_servers: String should have at least 1"),
        ("train.lr=inf", "train.lr: Input should be a finite number"),
        ("profile=compose", "profile 'compose' cannot be a setting: choose it with --profile"),
    ],
)
def test_a_value_that_could_never_work_is_refused_at_start(override: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message) as raised:
        load_settings("ci", [override], env={})
    assert "Annotated[" not in str(raised.value)


def test_a_whole_section_set_at_once_merges_into_the_profile_as_a_yaml_layer_does() -> None:
    profile = load_settings("ci", env={})
    merged = load_settings("ci", ["train={epochs: 3, weights: {resnet50: imagenet}}"], env={})
    assert merged.train.epochs == 3
    assert (merged.train.recipe, merged.train.head) == (profile.train.recipe, profile.train.head)
    # its mapping settings merge too, as in a YAML layer: mobilenet_v2's weights stay
    assert merged.train.weights == {**profile.train.weights, "resnet50": "imagenet"}
    env = {"HARMSCAN_MLFLOW": "{gate_tolerance: 0.05}"}
    assert load_settings("ci", env=env).mlflow.floors == profile.mlflow.floors


def test_an_environment_variable_that_forgot_the_double_underscore_is_told_how_to_nest() -> None:
    with pytest.raises(SettingsError, match=r"for train\.epochs write HARMSCAN_TRAIN__EPOCHS"):
        load_settings("ci", env={"HARMSCAN_TRAIN_EPOCHS": "3"})
    assert load_settings("ci", env={"HARMSCAN_TRAIN__EPOCHS": "3"}).train.epochs == 3
