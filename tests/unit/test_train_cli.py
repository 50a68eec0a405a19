"""Parameter plumbing of the train/retrain flows and CLI (pure: nothing runs)."""

from __future__ import annotations

import pytest
import typer

from cli.failures import USAGE
from cli.train import _models, _weights
from flows.common import resolve
from flows.train import preflight, train_changes
from harmscan.models import WeightsError


def test_typed_parameters_become_settings_keys() -> None:
    assert train_changes(["resnet50"], 3, {"resnet50": "none"}, 2) == {
        "train.models": ["resnet50"],
        "train.epochs": 3,
        "train.limit_batches": 2,
        "train.weights.resnet50": "none",
    }
    assert {k: v for k, v in train_changes(None, None, None).items() if v is not None} == {}


def test_parameters_apply_to_settings(make_source, tmp_path) -> None:
    odd = f"{tmp_path}/weights, mine #2.pth"
    settings = resolve(make_source(), train_changes(["mobilenet_v2"], 5, {"mobilenet_v2": odd}))
    assert settings.train.models == ["mobilenet_v2"]
    assert settings.train.epochs == 5
    assert settings.train.weights["mobilenet_v2"] == odd  # a path with ", " and " #" survives
    assert settings.train.weights["resnet50"] == "none"  # untouched


@pytest.mark.parametrize("bad", ["vgg=none", "mobilenet_v2", "=none"])
def test_cli_weights_option_names_valid_choices(bad: str) -> None:
    with pytest.raises(typer.BadParameter, match="mobilenet_v2, resnet50"):
        _weights([bad])


def test_cli_weights_and_models_parse() -> None:
    assert _weights(["resnet50=none", "mobilenet_v2=/w.pth"]) == {
        "resnet50": "none",
        "mobilenet_v2": "/w.pth",
    }
    assert _models(["resnet50"]) == ["resnet50"]
    assert _models(None) is None
    with pytest.raises(typer.BadParameter, match="valid: mobilenet_v2, resnet50"):
        _models(["alexnet"])


def test_preflight_catches_a_missing_weights_file(make_settings) -> None:
    preflight(make_settings())  # the ci profile's shared weights file exists
    with pytest.raises(WeightsError, match=r"missing\.pth"):
        preflight(make_settings("train.weights.mobilenet_v2=missing.pth"))


def test_an_unknown_prior_class_is_a_usage_error_named_with_suggestions(
    make_settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from cli.app import _report
    from harmscan.heads import PriorClassError

    settings = make_settings("train.prior_classes=[revolvr]", "train.head=prior-gated")
    with pytest.raises(PriorClassError) as raised:
        preflight(settings)
    assert _report(raised.value) == USAGE  # what `harmscan train` exits with, and prints:
    line = capsys.readouterr().err.strip()
    assert line.startswith("error: unknown ImageNet categories in train.prior_classes: 'revolvr'")
    assert "did you mean 'revolver'" in line
    assert len(line.splitlines()) == 1
