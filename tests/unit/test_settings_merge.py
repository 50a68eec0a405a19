"""A layer that names some entries of a mapping setting keeps the others, whichever layer it
is: a YAML file (profile, ``$HARMSCAN_CONFIG``, ``--config``), a whole section from a
``HARMSCAN_*`` variable or ``--set``, typed overrides, `update`. Only a whole mapping named at its
own key replaces."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import conf.loader
from conf.keys import SettingsError
from conf.loader import load_settings, update
from conf.settings import Settings

FLOORS = {"accuracy": 0.6, "auc": 0.7}  # the schema's accuracy floor, the layer's auc floor


def _yaml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "extra.yaml"
    path.write_text(text)
    return path


def _profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    (tmp_path / "floors.yaml").write_text("mlflow:\n  floors:\n    auc: 0.7\n")
    monkeypatch.setattr(conf.loader, "PROFILES_DIR", tmp_path)
    return load_settings("floors", env={})


LAYERS: dict[str, Callable[[Path, pytest.MonkeyPatch], Settings]] = {
    "profile": _profile,
    "--config": lambda tmp, _: load_settings(
        "ci", config_file=_yaml(tmp, "mlflow: {floors: {auc: 0.7}}\n"), env={}
    ),
    "HARMSCAN_CONFIG": lambda tmp, _: load_settings(
        "ci", env={"HARMSCAN_CONFIG": str(_yaml(tmp, "mlflow:\n  floors:\n    auc: 0.7\n"))}
    ),
    "section variable": lambda tmp, _: load_settings(
        "ci", env={"HARMSCAN_MLFLOW": "{floors: {auc: 0.7}}"}
    ),
    "dotted variable": lambda tmp, _: load_settings(
        "ci", env={"HARMSCAN_MLFLOW__FLOORS__AUC": "0.7"}
    ),
    "--set section": lambda tmp, _: load_settings("ci", ["mlflow={floors: {auc: 0.7}}"], env={}),
    "--set dotted": lambda tmp, _: load_settings("ci", ["mlflow.floors.auc=0.7"], env={}),
    "typed override": lambda tmp, _: load_settings(
        "ci", {"mlflow": {"floors": {"auc": 0.7}}}, env={}
    ),
    "update": lambda tmp, _: update(
        load_settings("ci", env={}), {"mlflow": {"floors": {"auc": 0.7}}}
    ),
}


@pytest.mark.parametrize("layer", LAYERS)
def test_every_layer_keeps_the_floors_it_does_not_name(
    layer: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert LAYERS[layer](tmp_path, monkeypatch).mlflow.floors == FLOORS


@pytest.mark.parametrize(
    ("how", "env"),
    [
        (["train={weights: {mobilenet_v2: imagenet}}"], {}),
        ([], {"HARMSCAN_TRAIN": "{weights: {mobilenet_v2: imagenet}}"}),
        ([], {"HARMSCAN_TRAIN__WEIGHTS__MOBILENET_V2": "imagenet"}),
    ],
)
def test_a_section_naming_one_architecture_keeps_the_others_weights(how, env) -> None:
    weights = load_settings("ci", how, env=env).train.weights
    assert weights == {"mobilenet_v2": "imagenet", "resnet50": "none"}  # ci: resnet50 none


def test_a_yaml_file_naming_one_metadata_file_keeps_the_others(tmp_path: Path) -> None:
    extra = _yaml(tmp_path, "openimages: {metadata_files: {hierarchy: h.json}}\n")
    files = load_settings("ci", config_file=extra, env={}).openimages.metadata_files
    assert files["hierarchy"] == "h.json"
    assert files["class_descriptions"] == "v7/oidv7-class-descriptions.csv"


@pytest.mark.parametrize(
    ("how", "env"),
    [(["mlflow.floors={auc: 0.7}"], {}), ([], {"HARMSCAN_MLFLOW__FLOORS": "{auc: 0.7}"})],
)
def test_a_whole_mapping_at_its_own_key_replaces(how, env) -> None:
    assert load_settings("ci", how, env=env).mlflow.floors == {"auc": 0.7}


def test_a_mapping_tagged_replace_in_a_yaml_file_replaces(tmp_path: Path) -> None:
    extra = _yaml(tmp_path, "mlflow:\n  floors: !replace {auc: 0.8}\n")
    assert load_settings("ci", config_file=extra, env={}).mlflow.floors == {"auc": 0.8}
    bad = _yaml(tmp_path, "mlflow:\n  floors: !replace [auc]\n")
    with pytest.raises(SettingsError, match="!replace tags a mapping"):
        load_settings("ci", config_file=bad, env={})


def test_the_stacks_settings_file_hands_flow_runs_exactly_the_resolved_mappings(
    tmp_path: Path,
) -> None:
    from stack.settings_file import write_settings_file

    resolved = load_settings("ci", overrides=["mlflow.floors={auc: 0.8}"], env={})
    assert resolved.mlflow.floors == {"auc": 0.8}  # the user dropped the accuracy floor
    path = write_settings_file(resolved, tmp_path / "settings.yaml")
    again = load_settings("ci", env={"HARMSCAN_CONFIG": str(path)})
    assert again.mlflow.floors == {"auc": 0.8}
    assert again.train.weights == resolved.train.weights
