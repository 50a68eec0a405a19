"""The one typed settings schema of harmscan.

Each section is a frozen pydantic model; `Settings` is their root. Unknown keys are rejected
(``extra="forbid"``) so a typo fails at start instead of being silently ignored. The sections live
in `conf.sections` (one module per concern) and are importable from here. How the values are
layered (YAML defaults, profile, ``HARMSCAN_*`` variables, ``--set`` overrides) lives in
`conf.loader`.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from conf.sections.base import Section
from conf.sections.data import (
    ClassesSettings,
    EtlSettings,
    OpenImagesSettings,
    OpenImagesSubset,
    PathsSettings,
)
from conf.sections.photosets import refuse_gate_set
from conf.sections.registration import FloorMetric, Int8Settings, MlflowSettings
from conf.sections.services import PrefectSettings, ReviewSettings, StackSettings
from conf.sections.serving import KafkaSettings, ServingSettings
from conf.sections.train import Arch, Recipe, TrainSettings

__all__ = [
    "Arch",
    "ClassesSettings",
    "EtlSettings",
    "FloorMetric",
    "Int8Settings",
    "KafkaSettings",
    "MlflowSettings",
    "OpenImagesSettings",
    "OpenImagesSubset",
    "PathsSettings",
    "PrefectSettings",
    "Recipe",
    "ReviewSettings",
    "Section",
    "ServingSettings",
    "Settings",
    "StackSettings",
    "TrainSettings",
]


class Settings(Section):
    """The root of all settings; build it with `conf.loader.load_settings`."""

    profile: str = "local"
    paths: PathsSettings = Field(default_factory=PathsSettings)
    openimages: OpenImagesSettings = Field(default_factory=OpenImagesSettings)
    classes: ClassesSettings
    etl: EtlSettings = Field(default_factory=EtlSettings)
    train: TrainSettings = Field(default_factory=TrainSettings)
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)
    int8: Int8Settings = Field(default_factory=Int8Settings)
    prefect: PrefectSettings = Field(default_factory=PrefectSettings)
    stack: StackSettings = Field(default_factory=StackSettings)
    review: ReviewSettings = Field(default_factory=ReviewSettings)

    @model_validator(mode="after")
    def _gate_set_never_trains(self) -> Settings:
        gate = self.mlflow.gate_set
        if gate:
            named = self.train.photo_sets()
            named["int8.calibration_photos"] = self.int8.calibration_photos
            for setting, names in named.items():
                refuse_gate_set(setting, names, gate_set=gate)
        return self
