"""The repository's photo sets by role, for the validators of the settings that name them.

Which sets may train or calibrate a model is checked again at run time by their contents
(`harmscan.trainsets`: sha256 overlap with the gate set and the held-out sets); here a setting
that names a set that judges (the gate set) or measures (a held-out check set) is refused when
the settings are loaded.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

# The repository's pools that may train or calibrate a model.
TRAINING_POOLS = (
    "drawpool",
    "emojipool",
    "glyphpool",
    "iconpool",
    "lifepool",
    "objectpool",
    "photopool",
)
# The set models are judged on (mlflow.gate_set defaults to it).
GATE_SET = "gateset"
# Held-out check sets (mlflow.check_sets): scored only, never trained on or calibrated with.
HELD_OUT_SETS = ("iconcheck",)


def valid_training_sets() -> str:
    """What a training or calibration set setting may name (for error messages)."""
    return f"valid: {', '.join(TRAINING_POOLS)} or a folder with manifest.csv and VERSION"


def refuse_held_out(setting: str, names: Iterable[str]) -> None:
    """Refuse a held-out check set (`HELD_OUT_SETS`, by folder name) among ``names``.

    Raises:
        ValueError: ``setting`` names one; the message lists the valid choices.
    """
    named = [n for n in names if Path(n).name in HELD_OUT_SETS]
    if named:
        raise ValueError(
            f"{setting} names the held-out check set {named}: it measures models and never "
            f"trains or calibrates one (list it in mlflow.check_sets); {valid_training_sets()}"
        )
