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
    "colourpool",
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


def photo_set_names(value: Iterable[str] | str | None) -> list[str]:
    """The sets a setting names: one (a str), none (None) or a list."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def refuse_gate_set(setting: str, names: Iterable[str], gate_set: str | None = None) -> None:
    """Refuse the gate set (`GATE_SET`, or the configured ``gate_set``, by folder name).

    Raises:
        ValueError: ``setting`` names it; the message lists the valid choices.
    """
    gates = {GATE_SET} | ({Path(gate_set).name} if gate_set else set())
    named = [n for n in names if Path(n).name in gates]
    if named:
        which = f"mlflow.gate_set {gate_set!r}" if gate_set else "the gate set"
        raise ValueError(
            f"{setting} names {which} {named}: models are judged on it, never trained or "
            f"calibrated on it; {valid_training_sets()} other than the gate set"
        )


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
