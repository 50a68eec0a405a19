"""Settings of registration: the MLflow registry and its promotion gate, and the int8 model."""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from conf.sections.base import Fraction, Section
from conf.sections.photosets import refuse_gate_set, refuse_held_out

FloorMetric = Literal["accuracy", "precision", "recall", "f1", "auc", "pr_auc", "ece"]

# Tracking URIs MLflow reads: a server (http, https), a database (sqlite:///file.db, or
# <dialect>[+driver]://... of SQLAlchemy), a local store (file:///dir; MLflow asks for
# MLFLOW_ALLOW_FILE_STORE=true), Databricks. A bare path or host:port is refused: MLflow would take
# it for a local folder and fail much later with an error that never names the setting.
_SERVER_SCHEMES = ("http", "https", "postgresql", "mysql", "mssql")
_TRACKING_URI_FORMS = (
    "http(s)://host[:port], sqlite:///path/mlflow.db, postgresql://…, mysql://…, mssql://…, "
    "file:///path/mlruns, databricks[://profile]"
)


def tracking_uri_problem(uri: str) -> str | None:
    """Why MLflow cannot use ``uri`` as a tracking URI, or None when it is one of its forms."""
    if not uri or uri != uri.strip() or re.search(r"\s", uri):
        return "has white space" if uri else "is empty"
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 (raises on a port that is not a number in 0..65535)
    except ValueError as exc:
        return f"is not a URI ({exc})"
    if uri.lower() == "databricks":
        return None
    scheme = parts.scheme.lower().split("+")[0]
    if scheme in _SERVER_SCHEMES:
        return None if parts.hostname else f"names no host after {parts.scheme}://"
    if scheme == "sqlite":
        named = uri.startswith("sqlite:///") and parts.path.strip("/")
        return None if named else "names no database file (sqlite:///relative.db)"
    if scheme == "file":
        return None if parts.path.strip("/") else "names no folder after file://"
    if scheme == "databricks":
        return None
    if not parts.scheme:
        return "has no scheme"
    return f"has a scheme MLflow does not read ({parts.scheme}:)"


class MlflowSettings(Section):
    """Tracking server and model registry."""

    tracking_uri: str = "http://127.0.0.1:5000"
    experiment: str = "harmscan"
    registered_model: str = "harmscan"
    promotion_metric: Literal["auc", "pr_auc", "f1", "accuracy", "recall", "precision"] = "auc"
    min_improvement: float = Field(default=0.0, ge=0)
    # Keys: harmscan.metrics.METRIC_NAMES (a unit test keeps the two lists equal).
    # Every gate metric lies in [0, 1]: a floor outside it could never be met (or never fail).
    floors: dict[FloorMetric, Fraction] = Field(
        default_factory=lambda: {"accuracy": 0.6, "auc": 0.6}  # type: ignore[arg-type]
    )
    # The fixed photo set the gate scores candidate, champion and prior on (null: test only).
    gate_set: str | None = None
    # On the gate set a candidate may score at most this much below the champion / the prior.
    gate_tolerance: float = Field(default=0.02, ge=0, le=1)
    # Held-out check sets (e.g. iconcheck: icon families no pool trains on) scored after training
    # and logged as <folder>_<domain>_<metric> (iconcheck_emoji_auc, ...); they never train,
    # calibrate or gate a model (harmscan.trainsets refuses them as training sets).
    check_sets: list[str] = Field(default_factory=list)

    @field_validator("tracking_uri")
    @classmethod
    def _a_tracking_uri(cls, value: str) -> str:
        problem = tracking_uri_problem(value)
        if problem is not None:
            raise ValueError(
                f"mlflow.tracking_uri {value!r} {problem}: write the MLflow server's address "
                f"with its scheme, e.g. http://127.0.0.1:5000 (valid forms: {_TRACKING_URI_FORMS})"
            )
        return value


class Int8Settings(Section):
    """The int8 model made at registration beside the float one (harmscan.quantize)."""

    enabled: bool = True
    # Training images whose activations calibrate the int8 ranges, and how they are reduced.
    calibration_images: int = Field(default=64, ge=1, le=10_000)
    calibration_method: Literal["minmax", "entropy", "percentile"] = "minmax"
    # Photo pools (photopool, or folders with manifest.csv and VERSION) whose images are added to
    # the calibration sample: the training images are clip-art; never the gate set (it judges).
    calibration_photos: list[str] = Field(default_factory=list)
    per_channel: bool = True
    # uint8 activations (U8S8): every convolution runs in int8 kernels on x86. int8 (S8S8) left a
    # third of MobileNetV2's convolutions in float there (bench/int8_configs.py).
    activations: Literal["uint8", "int8"] = "uint8"
    # Keep the nodes after the global pooling (the classifier, the prior head) in float: same
    # speed, less AUC lost on a trained probe + prior model (docs/int8-measurements.md).
    float_head: bool = True
    # More nodes kept in float: auto (the blocks whose float version brings the logits measurably
    # closer to float on training images that did not calibrate; harmscan.sensitivity), none, or
    # node names of the pre-processed graph. auto keeps at most max_float_nodes nodes and scores
    # on selection_images images. Measured (docs/int8-measurements.md): auto brings the logits
    # 1.5-2.5x closer to float, but the check passed as often without it (2 of 4 trained-model /
    # seed pairs each; at 160 px auto was better, at 224 px - then the main job's size;
    # 160 px since - all-int8 passed both times) and it adds a quantization per block to every
    # registration: opt-in.
    float_nodes: Literal["auto", "none"] | list[str] = "none"
    max_float_nodes: int = Field(default=9, ge=0, le=1000)
    selection_images: int = Field(default=128, ge=1, le=10_000)
    # Refit the head (gate, probe, calibration, per-branch thresholds) on the int8 backbone's own
    # pooled features, for the same training, gate and validation rows, and serve that head in
    # the int8 graph (its threshold folded onto the float spec's). Needs a frozen backbone
    # (train.recipe probe or prior). Off: on the main job's gated model it halves the validation
    # emoji's AUC loss but still failed the check at 160 px, and at 224 px passed with one
    # training set and failed with today's (docs/int8-measurements.md); it adds a refit to
    # registration.
    refit_head: bool = False
    # Largest ROC AUC the int8 model may lose against float, overall and in every judged group.
    tolerance: float = Field(default=0.005, ge=0.0, le=1.0)
    # The groups judged besides all: split-domain (each check set's domains apart: val/emoji,
    # gate/emoji, ...) or domain (each domain with every check set's images of it pooled: emoji =
    # validation + gate-set emoji; the per-set groups are still logged: metrics, int8_reason).
    check_groups: Literal["split-domain", "domain"] = "split-domain"

    @field_validator("calibration_photos")
    @classmethod
    def _not_judging_sets(cls, value: list[str]) -> list[str]:
        refuse_gate_set("int8.calibration_photos", value)
        refuse_held_out("int8.calibration_photos", value)
        return value
