"""The recipe bench's configuration names: ``NAME[@MIX][%C][/POOL]``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.recipe_bench import _calibrated_by, _configs, config
from conf.settings import TrainSettings


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("prior+probe", {"prior_mix": 0.5}),
        ("prior+probe%0.01", {"prior_mix": 0.5, "probe_c": 0.01}),
        ("prior+probe@0.4%0.003", {"prior_mix": 0.4, "probe_c": 0.003}),
        ("prior+probe@0.25%1e-2", {"prior_mix": 0.25, "probe_c": 0.01}),
        ("probe%0.5/drawpool", {"probe_c": 0.5, "extra_train_sets": ["drawpool"]}),
        ("lp-ft%0.05", {"recipe": "lp-ft", "probe_c": 0.05}),
        ("prior+probe+gate@0.9:0.2%0.05", {"gate_photo_mix": 0.9, "probe_c": 0.05}),
        (
            "prior+probe+gate-branch+mixpoint@1.0:0.25%0.01/drawpool",
            {"gate_photo_mix": 1.0, "gate_photo_threshold_on": "mix", "probe_c": 0.01},
        ),
    ],
)
def test_probe_c_suffix(name: str, expected: dict[str, Any]) -> None:
    cfg = config(name)
    assert {k: cfg[k] for k in expected} == expected
    if "probe_c" not in expected:
        assert "probe_c" not in cfg
    # what run_config builds from it: the settings carry that C to the probe
    settings = TrainSettings(**cfg)
    assert settings.probe_c == expected.get("probe_c", TrainSettings().probe_c)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("prior+probe%0", r"'0' is not a positive number; valid: NAME\[@MIX"),
        ("prior+probe@0.4%-0.1", "'-0.1' is not a positive number"),
        ("prior+probe%abc", "'abc' is not a positive number"),
        ("prior+probe%", "'' is not a positive number"),
        ("prior+probe%nan", "'nan' is not a positive number"),
        ("prior+probe@x%0.1", "'x' is not a number"),
        ("prior%0.1", "'prior' fits no probe; valid with the probe and lp-ft recipes"),
        ("finetune%0.1", "'finetune' fits no probe"),
        ("nonsense%0.1", r"unknown configuration 'nonsense%0.1'; valid: prior, .*\[%C\]"),
    ],
)
def test_bad_probe_c_suffix_names_the_valid_form(name: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        config(name)


def test_tilde_names_the_calibration_sets_of_one_configuration() -> None:
    default = [Path("objectpool")]
    assert _calibrated_by("prior+probe%0.01", default) == ("prior+probe%0.01", default)
    assert _calibrated_by("prior+probe%0.01~photopool", default) == (
        "prior+probe%0.01",
        [Path("photopool")],
    )
    assert _calibrated_by("prior+probe+gate-branch/drawpool~objectpool+photopool", default) == (
        "prior+probe+gate-branch/drawpool",
        [Path("objectpool"), Path("photopool")],
    )
    assert _configs("prior+probe%0.01~photopool,prior") == "prior+probe%0.01~photopool,prior"
