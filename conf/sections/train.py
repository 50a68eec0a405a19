"""Settings of training: architectures, recipes and heads, calibration and the operating point."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from conf.sections.base import Fraction, Section
from conf.sections.photosets import photo_set_names, refuse_gate_set, refuse_held_out

Arch = Literal["mobilenet_v2", "resnet50"]
_DEFAULT_ARCHS: tuple[Arch, ...] = ("mobilenet_v2", "resnet50")
Recipe = Literal["finetune", "probe", "lp-ft", "prior"]
# ImageNet-1k categories that are harmful by harmscan's definition (weapons, blades, explosives),
# by their exact torchvision names; the prior head scores their probability mass.
_IMAGENET_HARMFUL: tuple[str, ...] = (
    "assault rifle",
    "revolver",
    "rifle",
    "cannon",
    "missile",
    "projectile",
    "tank",
    "holster",
    "cleaver",
    "hatchet",
    "letter opener",
    "scabbard",
    "bow",
)


MAX_PROBE_VIEWS = 16
# MobileNetV2's ``features`` has blocks 0..18 (18: the last 1x1 convolution, 1280 channels).
MOBILENET_V2_BLOCKS = 19


class TrainSettings(Section):
    """Fine-tuning of the two architectures."""

    models: list[Arch] = Field(default_factory=lambda: list(_DEFAULT_ARCHS), min_length=1)
    # Per architecture: "imagenet" (torchvision's own), a path to a state dict, or "none".
    weights: dict[str, str] = Field(
        default_factory=lambda: {"mobilenet_v2": "none", "resnet50": "none"}
    )
    epochs: int = Field(default=6, ge=1)
    warmup_epochs: int = Field(default=1, ge=0, description="epochs with a frozen backbone")
    batch_size: int = Field(default=32, ge=1)
    optimizer: Literal["adamw", "sgd"] = "adamw"
    lr: float = Field(default=1e-3, gt=0, allow_inf_nan=False)
    backbone_lr_scale: float = Field(default=0.1, gt=0)
    weight_decay: float = Field(default=1e-4, ge=0)
    label_smoothing: float = Field(default=0.0, ge=0, lt=1)
    augment: bool = True
    class_weighting: bool = True
    early_stopping_patience: int = Field(default=3, ge=1)
    early_stopping_metric: Literal["val_auc", "val_loss", "val_f1", "val_accuracy"] = "val_auc"
    # The input size (px), chosen by the rule of docs/image-size.md (written before measuring):
    # the main job's model at 160 / 168 / 176 / 192 / 208 / 224 px on the gate set. Against 224,
    # 160 ties on AUC all / photo / emoji (0.956 / 0.980 / 0.953 vs 0.945 / 0.961 / 0.950; paired
    # bootstrap gaps +0.012 / +0.018 / +0.003, every 90 % interval across 0), meets the AUC-all
    # and <= 10 % flagged targets that 224 misses (harmful caught / safe flagged of 42 / 325:
    # 34 / 23 vs 35 / 34) and flags fewer everyday safe photos (gate set + lifepool: 29 vs 39 of
    # 149); held-out icons 0.935 vs 0.945 and the mirror's test split 0.867 vs 0.902 are within
    # their intervals. It is the cheapest: draft mode decodes a 1024x768 JPEG at 1/4 up to 168 px,
    # and serving takes 0.54x the CPU per image of 224 px (float and int8 alike).
    image_size: int = Field(default=160, ge=32)
    num_workers: int = Field(default=2, ge=0)
    threads: int = Field(default=2, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    seed: int = 1234
    target_recall: float = Field(default=0.90, gt=0, le=1)
    review_band: float = Field(default=0.15, ge=0, lt=0.5)
    limit_batches: int | None = Field(default=None, ge=1, description="for smoke runs")
    # How the model is trained (harmscan.recipes): finetune, probe, lp-ft, prior (no training).
    recipe: Recipe = "finetune"
    # linear: a new 2-class layer; prior: the ImageNet classifier's harmful-class mass plus a
    # linear term (harmscan.heads.PriorHead). recipe=prior needs head=prior.
    # prior-gated (recipe probe only): a photo-vs-drawing gate on the same features blends
    # two prior + probe mixes, gate_photo_mix for photo-like images and gate_drawing_mix for
    # drawings (harmscan.heads.GatedPriorHead); its photos are gate_photos (never the gate set).
    head: Literal["linear", "prior", "prior-gated"] = "linear"
    prior_classes: list[str] = Field(default_factory=lambda: list(_IMAGENET_HARMFUL))
    # With head=prior: 0..1 fixes the mix of the two standardised log-odds (0.5 = equal
    # weight); null fits the prior's weight jointly with the probe (on clip-art training data
    # that weight comes out near 0 and the photo knowledge is lost: README, train section).
    prior_mix: float | None = Field(default=0.5, ge=0, le=1)
    # Inverse L2 strength of the probe (scikit-learn's C on standardised features). 0.01, not
    # 0.1: higher AUC all / photo / emoji at 160 and 224 px with recall no lower at the stored
    # threshold (docs/training-measurements.md, "The probe's L2 strength";
    # bench/recipe_bench.py %C).
    probe_c: float = Field(default=0.01, gt=0, description="inverse L2 strength of the probe")
    # lp-ft: fine-tuning after the probe runs every layer at lr * lpft_lr_scale.
    lpft_lr_scale: float = Field(default=0.1, gt=0)
    # WiSE-FT weight of the fine-tuned end (0 = the start, 1 = the end, null = off); "auto"
    # picks it on validation among wise_alphas.
    wise_alpha: float | Literal["auto"] | None = None
    wise_alphas: list[Fraction] = Field(
        default_factory=lambda: [0.0, 0.25, 0.5, 0.75, 1.0], min_length=1
    )
    # Calibration on validation (folded into the exported model), then the threshold:
    # temperature (one parameter) or platt (temperature and a bias for the base-rate shift).
    # Measured (bench/recipe_bench.py, probe + prior, 160 px, validation + photopool mix): ECE
    # 0.221 uncalibrated, 0.259 after temperature alone, 0.052 after platt; same ranking.
    calibration: Literal["temperature", "platt", "none"] = "platt"
    # Weight of photos in the validation mix that calibration and the threshold are chosen on.
    calibration_photo_share: float = Field(default=0.5, ge=0, le=1)
    # The threshold is raised past target_recall's if it would flag more than this share of
    # the (weighted) safe validation images; null: no cap.
    max_safe_flagged: float | None = Field(default=0.10, ge=0, lt=1)
    # A photo set (folder with manifest.csv: file, label, domain) added to the validation split
    # for calibration and the threshold, e.g. objectpool or photopool; null: validation split only.
    calibration_photos: str | None = None
    # Pools of images the model also trains on (the probe's features, fine-tuning's batches),
    # each image with its manifest's domain: colourpool, drawpool, emojipool, glyphpool, iconpool,
    # objectpool, photopool or a folder with manifest.csv and VERSION (harmscan.trainsets).
    # Never the gate set, nor the held-out iconcheck.
    extra_train_sets: list[str] = Field(default_factory=list)
    gate_photos: list[str] = Field(default_factory=lambda: ["photopool"])
    # Pools of drawings the gate also learns "drawing" from (not the probe), e.g. drawpool.
    gate_drawings: list[str] = Field(default_factory=list)
    gate_photo_mix: float = Field(default=0.8, ge=0, le=1)
    gate_drawing_mix: float = Field(default=0.25, ge=0, le=1)
    gate_c: float = Field(default=0.1, gt=0, description="inverse L2 strength of the gate")
    # The gate's boundary moves towards the drawings until this share of the training drawings
    # counts as photo-like (a few dozen photos teach it too narrow a "photo"); null: as fitted.
    gate_drawings_as_photos: float | None = Field(default=0.02, ge=0, lt=1)
    # The gate's logit is multiplied by this (boundary unchanged): > 1 blends the branches less.
    gate_sharpness: float = Field(default=1.0, gt=0)
    # The gated head's threshold: mix (one, chosen on the calibration mix as for other heads) or
    # per-branch (the photo branch's on the calibration photos, the drawing branch's on the
    # other images, folded into the branches; harmscan.branchpoint). Other heads ignore it.
    gate_operating_point: Literal["mix", "per-branch"] = "mix"
    # With per-branch: the photo branch's threshold on the calibration photos alone (photos:
    # safe photos only, so the false-alarm cap sets it) or on the whole calibration mix scored
    # by the photo branch (mix: harmful drawings' recall and the cap on every safe image).
    gate_photo_threshold_on: Literal["photos", "mix"] = "photos"
    # With per-branch: where the drawing branch's threshold is chosen. none: on the calibration
    # mix's drawings (the validation split, the probe's own training style). sources: also on
    # out-of-fold scores of the training drawings, each pool image scored by a probe fitted
    # without its source package (the dataset's own images in cross_fit_folds folds); folds:
    # cross_fit_folds stratified folds over every training image (harmscan.crossfit).
    cross_fit: Literal["none", "sources", "folds"] = "none"
    cross_fit_folds: int = Field(default=5, ge=2, le=50)
    # With per-branch: how the drawing branch's threshold is chosen on those drawings. recall:
    # target_recall of the harmful ones, then the max_safe_flagged cap; false-alarm: where
    # drawing_false_alarm of the safe ones are flagged, recall whatever it then is (a quantile
    # of many safe scores with cross_fit; harmscan.branchpoint.false_alarm_threshold).
    drawing_threshold: Literal["recall", "false-alarm"] = "recall"
    drawing_false_alarm: float = Field(default=0.10, ge=0, lt=1)
    # With per-branch: after the per-branch shifts are folded in, platt refits a temperature
    # and the stored threshold on the calibration mix (every decision unchanged: it is a
    # monotone map of the margin to the threshold) so the served probabilities are calibrated
    # again; none: the shifts stay as folded (harmscan.branchfold.recalibrate_folded).
    branch_recalibration: Literal["none", "platt"] = "none"
    # Augmented views per training image that the probe's features are taken from
    # (harmscan.probeviews: TrainPreset.probe_view_preset, seeded per row by train.seed); 0: the
    # single un-augmented view. The probe then trains on N times the rows; not with cross_fit.
    probe_views: int = 0
    # What computes the views' backbone features: onnx (ONNX Runtime on the exported backbone,
    # equal to torch's to float32 rounding and ~4x less CPU per image on 2-core CPUs:
    # harmscan.featurepass) or torch (harmscan.recipes.extract_features). The un-augmented
    # passes (probe_views 0, the gate, validation) always run in torch.
    probe_view_engine: Literal["onnx", "torch"] = "onnx"
    # MobileNetV2 ``features`` blocks (0..18) whose pooled average and maximum are appended to
    # the 1280-d pooled features for the drawing branch's probe only (the ImageNet prior, the
    # photo branch and the gate read the 1280-d; harmscan.taps). []: the 1280-d alone. Only with
    # recipe probe on MobileNetV2: ResNet50 and the recipes that train the backbone run without
    # them (a warning says so).
    probe_layers: list[int] = Field(default_factory=list)

    @field_validator("probe_layers")
    @classmethod
    def _probe_layers_valid(cls, value: list[int]) -> list[int]:
        last = MOBILENET_V2_BLOCKS - 1
        outside = [v for v in value if not 0 <= v <= last]
        if outside:
            raise ValueError(
                f"train.probe_layers {outside} are not MobileNetV2 features blocks; valid: "
                f"0..{last} (e.g. [13] or [13, 16]), or [] for the pooled 1280-d alone"
            )
        repeated = sorted({v for v in value if value.count(v) > 1})
        if repeated:
            raise ValueError(f"train.probe_layers names blocks {repeated} more than once")
        return sorted(value)

    @field_validator("probe_views")
    @classmethod
    def _probe_views_in_range(cls, value: int) -> int:
        if not 0 <= value <= MAX_PROBE_VIEWS:
            raise ValueError(
                f"train.probe_views must be in 0..{MAX_PROBE_VIEWS} (0: the un-augmented view "
                f"alone), got {value}"
            )
        return value

    @field_validator("extra_train_sets", "gate_photos", "gate_drawings", "calibration_photos")
    @classmethod
    def _not_judging_sets(
        cls, value: list[str] | str | None, info: ValidationInfo
    ) -> list[str] | str | None:
        names = photo_set_names(value)
        refuse_gate_set(f"train.{info.field_name}", names)
        refuse_held_out(f"train.{info.field_name}", names)
        return value

    def photo_sets(self) -> dict[str, list[str]]:
        """The settings that name photo sets a model trains or is calibrated on, and their sets."""
        return {
            f"train.{name}": photo_set_names(getattr(self, name))
            for name in ("extra_train_sets", "gate_photos", "gate_drawings", "calibration_photos")
        }

    @model_validator(mode="after")
    def _recipe_head(self) -> TrainSettings:
        if self.recipe == "prior" and self.head != "prior":
            raise ValueError("train.recipe=prior needs train.head=prior")
        if isinstance(self.wise_alpha, float) and not 0 <= self.wise_alpha <= 1:
            raise ValueError(
                f"train.wise_alpha must be in [0, 1], auto or null, got {self.wise_alpha}"
            )
        if self.probe_views and self.cross_fit != "none":
            raise ValueError(
                f"train.probe_views={self.probe_views} needs train.cross_fit=none (an image's "
                f"views would fall in different folds), got {self.cross_fit!r}"
            )
        return self

    @model_validator(mode="after")
    def _weights_known(self) -> TrainSettings:
        unknown = sorted(set(self.weights) - {"mobilenet_v2", "resnet50"})
        if unknown:
            raise ValueError(
                f"train.weights has unknown architectures {unknown}; valid: mobilenet_v2, resnet50"
            )
        return self
