"""The settings layers and their error messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from conf.loader import SettingsError, dump_settings, load_settings


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
        ("serving.runtime=tensorflow", "'onnx' or 'torch'"),
        ("train.models=[vgg16]", "'mobilenet_v2' or 'resnet50'"),
        ("nope.x=1", "valid keys at the top level"),
        ("etl.split={train: 0.5, val: 0.1, test: 0.1}", "sum to 1"),
        ("classes.safe=[Gun]", "both harmful and safe"),
        ("train.weights={vgg: none}", "valid: mobilenet_v2, resnet50"),
    ],
)
def test_bad_setting_names_the_valid_choices(override: str, expected: str) -> None:
    with pytest.raises(SettingsError, match=expected.replace("(", r"\(")):
        load_settings("ci", [override], env={})


def test_unknown_profile_lists_profiles() -> None:
    with pytest.raises(SettingsError, match="valid profiles: ci, compose, local"):
        load_settings("prod", env={})


def test_unknown_env_variable_fails() -> None:
    with pytest.raises(SettingsError, match="HARMSCAN_KAFKA__BOOTSTRAP"):
        load_settings("ci", env={"HARMSCAN_KAFKA__BOOTSTRAP": "x:1"})


def test_settings_are_frozen_and_secrets_masked() -> None:
    settings = load_settings("ci", ["kafka.sasl_password=hunter2"], env={})
    with pytest.raises(ValueError, match="frozen"):
        settings.train.epochs = 1  # type: ignore[misc]
    flat = dump_settings(settings)
    assert flat["kafka.sasl_password"] != "hunter2"
    assert "hunter2" not in str(flat)
