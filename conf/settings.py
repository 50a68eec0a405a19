"""The one typed settings schema of harmscan.

Each section is a frozen pydantic model; `Settings` is their root. Unknown keys are rejected
(``extra="forbid"``) so a typo fails at start instead of being silently ignored. How the values are
layered (YAML defaults, profile, ``HARMSCAN_*`` variables, ``--set`` overrides) lives in
`conf.loader`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

Arch = Literal["mobilenet_v2", "resnet50"]
OpenImagesSubset = Literal["train", "validation", "test"]
_DEFAULT_SUBSETS: tuple[OpenImagesSubset, ...] = ("validation",)
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


class Section(BaseModel):
    """Base of every settings section: frozen, and unknown keys are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class PathsSettings(Section):
    """Where harmscan keeps its data, caches and local service state."""

    root: Path = Path(".harmscan")

    @property
    def data(self) -> Path:
        """Datasets: the split image folders and manifests."""
        return self.root / "data"

    @property
    def cache(self) -> Path:
        """Downloaded Open Images metadata and images."""
        return self.root / "cache"

    @property
    def runs(self) -> Path:
        """Training checkpoints and local outputs."""
        return self.root / "runs"

    @property
    def services(self) -> Path:
        """State, data and logs of the local services (Kafka, MLflow, Prefect, mirror)."""
        return self.root / "services"


class OpenImagesSettings(Section):
    """Where Open Images V7 is read from: metadata over HTTP, images from S3."""

    source: Literal["openimages", "mirror"] = "mirror"
    metadata_base_url: str = "https://storage.googleapis.com/openimages"
    # Logical name -> path below metadata_base_url, in the exact OIDv7 layout.
    metadata_files: dict[str, str] = Field(
        default_factory=lambda: {
            "class_descriptions": "v7/oidv7-class-descriptions.csv",
            "hierarchy": "2018_04/bbox_labels_600_hierarchy.json",
            "labels_train": "v7/oidv7-train-annotations-human-imagelabels.csv",
            "labels_validation": "v7/oidv7-val-annotations-human-imagelabels.csv",
            "labels_test": "v7/oidv7-test-annotations-human-imagelabels.csv",
            "images_train": "v6/oidv6-train-images-with-labels-with-rotation.csv",
            "images_validation": "2018_04/validation/validation-images-with-rotation.csv",
            "images_test": "2018_04/test/test-images-with-rotation.csv",
        }
    )
    s3_endpoint_url: str | None = None
    bucket: str = "open-images-dataset"
    region: str = "us-east-1"
    subsets: list[OpenImagesSubset] = Field(default_factory=lambda: list(_DEFAULT_SUBSETS))
    http_timeout_s: float = Field(default=60.0, gt=0)
    # Path below metadata_base_url of a CSV ``ImageID,Domain`` (photo, illustration or emoji): a
    # harmscan side file that the offline mirror serves; Open Images has none. None: all photos.
    domains_file: str | None = None


class ClassesSettings(Section):
    """The harmful and safe class sets, by Open Images display name."""

    # No defaults here: conf/default.yaml is where the class sets are named.
    harmful: list[str]
    safe: list[str]
    # Not harmful enough to train on (Ammunition, Blade, ...), but an image carrying one of these
    # is never a safe example; with a harmful label too, it is harmful.
    never_safe: list[str] = Field(default_factory=list)
    expand_hierarchy: bool = True
    # Names listed here are never counted, even when the hierarchy reaches them.
    exclude: list[str] = Field(default_factory=list)
    # A display name shared by several class ids: "error" fails and lists the ids (name one id,
    # e.g. "/m/0gxl3", instead); "all" takes every id carrying that name.
    on_ambiguous: Literal["error", "all"] = "error"

    @model_validator(mode="after")
    def _disjoint(self) -> ClassesSettings:
        both = sorted(set(self.harmful) & set(self.safe))
        if both:
            raise ValueError(f"classes listed as both harmful and safe: {both}")
        for side in ("harmful", "safe"):
            both = sorted(set(self.never_safe) & set(getattr(self, side)))
            if both:
                raise ValueError(f"classes listed as both never_safe and {side}: {both}")
        if not self.harmful or not self.safe:
            raise ValueError("classes.harmful and classes.safe must each name at least one class")
        return self


class EtlSettings(Section):
    """Sampling, splitting, download and verification of the dataset."""

    seed: int = 1234
    max_per_side: int = Field(default=2000, ge=1, description="cap of images per side")
    max_per_label: int = Field(default=800, ge=1, description="cap of images per source label")
    balance: bool = True
    split: dict[str, float] = Field(
        default_factory=lambda: {"train": 0.7, "val": 0.15, "test": 0.15}
    )
    min_image_side: int = Field(default=64, ge=1)
    max_image_bytes: int = Field(default=20 * 1024 * 1024, ge=1)
    download_workers: int = Field(default=16, ge=1, le=128)
    retries: int = Field(default=4, ge=0)
    csv_chunk_rows: int = Field(default=1_000_000, ge=1000)
    # Extra download rounds that take the next candidates in line to replace images that failed.
    refill_rounds: int = Field(default=2, ge=0)

    @field_validator("split")
    @classmethod
    def _split_sums_to_one(cls, value: dict[str, float]) -> dict[str, float]:
        if set(value) != {"train", "val", "test"}:
            raise ValueError(
                f"etl.split needs exactly the keys train, val, test; got {sorted(value)}"
            )
        if abs(sum(value.values()) - 1.0) > 1e-6 or min(value.values()) <= 0:
            raise ValueError(f"etl.split fractions must be positive and sum to 1; got {value}")
        return value


class TrainSettings(Section):
    """Fine-tuning of the two architectures."""

    models: list[Arch] = Field(default_factory=lambda: list(_DEFAULT_ARCHS))
    # Per architecture: "imagenet" (torchvision's own), a path to a state dict, or "none".
    weights: dict[str, str] = Field(
        default_factory=lambda: {"mobilenet_v2": "none", "resnet50": "none"}
    )
    epochs: int = Field(default=6, ge=1)
    warmup_epochs: int = Field(default=1, ge=0, description="epochs with a frozen backbone")
    batch_size: int = Field(default=32, ge=1)
    optimizer: Literal["adamw", "sgd"] = "adamw"
    lr: float = Field(default=1e-3, gt=0)
    backbone_lr_scale: float = Field(default=0.1, gt=0)
    weight_decay: float = Field(default=1e-4, ge=0)
    label_smoothing: float = Field(default=0.0, ge=0, lt=1)
    augment: bool = True
    class_weighting: bool = True
    early_stopping_patience: int = Field(default=3, ge=1)
    early_stopping_metric: Literal["val_auc", "val_loss", "val_f1", "val_accuracy"] = "val_auc"
    image_size: int = Field(default=224, ge=32)
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
    # threshold (README, train section, "The probe's L2 strength"; bench/recipe_bench.py %C).
    probe_c: float = Field(default=0.01, gt=0, description="inverse L2 strength of the probe")
    # lp-ft: fine-tuning after the probe runs every layer at lr * lpft_lr_scale.
    lpft_lr_scale: float = Field(default=0.1, gt=0)
    # WiSE-FT weight of the fine-tuned end (0 = the start, 1 = the end, null = off); "auto"
    # picks it on validation among wise_alphas.
    wise_alpha: float | Literal["auto"] | None = None
    wise_alphas: list[float] = Field(default_factory=lambda: [0.0, 0.25, 0.5, 0.75, 1.0])
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
    # each image with its manifest's domain: drawpool, emojipool, objectpool, photopool or a
    # folder with manifest.csv and VERSION (harmscan.trainsets). Never the gate set.
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

    @field_validator("extra_train_sets", "gate_photos", "gate_drawings")
    @classmethod
    def _not_the_gate_set(cls, value: list[str]) -> list[str]:
        named = [v for v in value if Path(v).name == "gateset"]
        if named:
            raise ValueError(
                f"train.extra_train_sets/gate_photos names the gate set {named}: models are "
                "judged on it, never trained on it; valid: drawpool, emojipool, objectpool, "
                "photopool or a folder with manifest.csv and VERSION other than the gate set"
            )
        return value

    @model_validator(mode="after")
    def _recipe_head(self) -> TrainSettings:
        if self.recipe == "prior" and self.head != "prior":
            raise ValueError("train.recipe=prior needs train.head=prior")
        if isinstance(self.wise_alpha, float) and not 0 <= self.wise_alpha <= 1:
            raise ValueError(
                f"train.wise_alpha must be in [0, 1], auto or null, got {self.wise_alpha}"
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


FloorMetric = Literal["accuracy", "precision", "recall", "f1", "auc", "pr_auc", "ece"]


class MlflowSettings(Section):
    """Tracking server and model registry."""

    tracking_uri: str = "http://127.0.0.1:5000"
    experiment: str = "harmscan"
    registered_model: str = "harmscan"
    promotion_metric: Literal["auc", "pr_auc", "f1", "accuracy", "recall", "precision"] = "auc"
    min_improvement: float = Field(default=0.0, ge=0)
    # Keys: harmscan.metrics.METRIC_NAMES (a unit test keeps the two lists equal).
    floors: dict[FloorMetric, float] = Field(
        default_factory=lambda: {"accuracy": 0.6, "auc": 0.6}  # type: ignore[arg-type]
    )
    # The fixed photo set the gate scores candidate, champion and prior on (null: test only).
    gate_set: str | None = None
    # On the gate set a candidate may score at most this much below the champion / the prior.
    gate_tolerance: float = Field(default=0.02, ge=0, le=1)


class KafkaSettings(Section):
    """Brokers, topics and client security."""

    bootstrap_servers: str = "127.0.0.1:9092"
    requests_topic: str = "harmscan.requests"
    results_topic: str = "harmscan.results"
    dead_letter_topic: str = "harmscan.dead-letter"
    review_topic: str = "harmscan.review"
    # Reviewers' decisions, compacted and keyed by request id (the last decision wins).
    decisions_topic: str = "harmscan.decisions"
    group_id: str = "harmscan-serve"
    partitions: int = Field(default=3, ge=1)
    # Of the topics harmscan creates; 3 with min_insync_replicas 2 on a 3-broker cluster.
    replication_factor: int = Field(default=1, ge=1)
    min_insync_replicas: int | None = Field(default=None, ge=1)
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None

    def client_config(self) -> dict[str, Any]:
        """The connection and security part of every Kafka client's configuration, with
        ``allow.auto.create.topics=false``: no client creates a topic by naming it."""
        config: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
            "allow.auto.create.topics": False,
        }
        if self.sasl_mechanism:
            config["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username:
            config["sasl.username"] = self.sasl_username
        if self.sasl_password is not None:
            config["sasl.password"] = self.sasl_password.get_secret_value()
        return config


# What botocore accepts as a bucket name (its VALID_BUCKET, without access-point ARNs).
_BUCKET_NAME = re.compile(r"[a-zA-Z0-9.\-_]{1,255}")


class ServingSettings(Section):
    """The streaming consumer."""

    runtime: Literal["onnx", "torch"] = "onnx"
    model_alias: str = "champion"
    batch_size: int = Field(default=16, ge=1, le=1024)
    poll_timeout_s: float = Field(default=0.5, gt=0, le=1.0)
    # Under a backlog batch k+1 decodes while batch k is inferred. On a quiet 2-core host two decode
    # workers beside two one-thread inference runs served the most through Kafka: int8
    # MobileNetV2, medians of 3 alternated rounds, 161 images/s against 138 with one worker
    # (1.17x; ceiling 179 against 120), p99 at 50/s within the noise (bench/serve_bench.py
    # --layouts '1,2,1,16;2,2,1,16', load 1-2). On a host shared with other jobs (load 8-19) one
    # worker won (two served 0.83x): lower it there. Batch 8 and 32 were within the noise of 16;
    # one two-thread inference run (intra_op_threads 2) lost to two one-thread runs.
    decode_workers: int = Field(default=2, ge=1, le=64)
    intra_op_threads: int = Field(default=1, ge=1)
    # Threads scoring halves of a batch side by side, each with intra_op_threads: on 2 cores two
    # one-thread runs served 139 images/s where one run served 114 (bench/serve_bench.py).
    inference_workers: int = Field(default=2, ge=1, le=64)
    # When the loop polls and starts decoding batch k+1 before batch k is scored and committed:
    # full = only behind a full batch (a backlog: overlap for throughput), always, or never.
    decode_ahead: Literal["full", "always", "never"] = "full"
    allowed_roots: list[Path] = Field(default_factory=list)
    allowed_buckets: list[str] = Field(default_factory=list)
    # Separate caps: inline bytes travel inside a Kafka message, so their cap (decoded bytes) must
    # stay below the broker's message limit once base64-encoded (checked at start).
    max_inline_bytes: int = Field(default=700_000, ge=1)
    max_file_bytes: int = Field(default=20 * 1024 * 1024, ge=1)
    max_object_bytes: int = Field(default=20 * 1024 * 1024, ge=1)
    max_pixels: int = Field(default=50_000_000, ge=1)
    # Longer side / shorter side, from the header before decoding (a 100000x1 PNG is refused).
    max_aspect_ratio: float = Field(default=20.0, ge=1)
    # Wall-clock and CPU time one decode may take (the worker process is killed past it).
    decode_timeout_s: float = Field(default=5.0, gt=0)
    # Address space a decode worker process may add to its start-up size (RLIMIT_AS).
    decode_memory_mb: int = Field(default=768, ge=64)
    # Frames of an animated GIF/WebP/PNG or multi-page TIFF scored, evenly spaced and always
    # including the first; the worst frame decides (1 = the first frame only). All frames of a
    # request share max_pixels, decode_timeout_s and decode_memory_mb.
    max_frames: int = Field(default=8, ge=1, le=256)
    # Largest record batch the consumer inflates from zstd, and its fetch size (librdkafka's
    # receive.message.max.bytes, default 100 MB): past it a batch is an undecodable dead letter.
    # gzip and lz4 batches are inflated by librdkafka without any limit (see the README).
    max_inflated_batch_bytes: int = Field(default=32 * 1024 * 1024, ge=4 * 1024 * 1024)
    # Dead-letter records carry at most this many bytes of the original payload (+ size, sha256).
    dead_letter_max_payload_bytes: int = Field(default=65_536, ge=0)
    # A message in flight at this many consecutive crashes is dead-lettered without decoding.
    poison_after_crashes: int = Field(default=3, ge=1)
    # Where the poison-message guard keeps its in-flight journal (default: paths.root/serving).
    state_dir: Path | None = None
    swap_check_interval_s: float = Field(default=30.0, gt=0)
    metrics_port: int | None = Field(default=9108, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    # Pillow JPEG draft mode: decode JPEGs at a reduced scale close to the model's input size.
    jpeg_draft: bool = True
    # S3 image sources (s3://bucket/key); null endpoint = AWS S3 itself, credentials from boto3.
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    # Seconds reading one S3 object may take in all (a slow endpoint is an infrastructure
    # failure, retried; botocore's read timeout only bounds each wait on the socket).
    s3_read_deadline_s: float = Field(default=30.0, gt=0)
    # How long to wait for every result of a batch to be delivered before retrying the batch.
    delivery_timeout_s: float = Field(default=120.0, gt=0)
    # Infrastructure failures (delivery, commit, S3 down) retry with backoff up to this many s.
    retry_backoff_max_s: float = Field(default=30.0, gt=0)
    max_poll_interval_ms: int = Field(default=300_000, ge=10_000)
    session_timeout_ms: int = Field(default=45_000, ge=1000)
    # Static group membership: a restarted consumer with the same id takes its partitions back
    # at once instead of after session_timeout_ms. One distinct id per consumer process.
    # Unset: "<hostname>-<kafka.group_id>" (one process per host and group; give others their own).
    group_instance_id: str | None = None
    # A consumer fenced (FENCED_INSTANCE_ID) or otherwise fatally failed is closed and recreated
    # at most this many times within the window; past that `harmscan serve` exits with code 4.
    consumer_recreate_max: int = Field(default=3, ge=0)
    consumer_recreate_window_s: float = Field(default=600.0, gt=0)
    # Which graph serves: auto = int8 when the bundle's int8 passed its accuracy check at
    # registration (see int8.*), else float; int8 / float force one (int8 needs runtime onnx).
    precision: Literal["auto", "int8", "float"] = "auto"
    # auto also times both graphs side by side at load and serves int8 only if it is at least
    # this many times as fast as float on this host (0: no timing, the accuracy check decides).
    int8_min_speedup: float = Field(default=1.1, ge=0.0)

    @field_validator("allowed_buckets")
    @classmethod
    def _bucket_names(cls, value: list[str]) -> list[str]:
        # botocore refuses other names before any request; the consumer retried such a request
        # as an infrastructure failure, forever.
        bad = [name for name in value if not _BUCKET_NAME.fullmatch(name)]
        if bad:
            raise ValueError(
                f"not S3 bucket names: {bad}; a bucket name is 1-255 of letters, digits, '.', "
                "'-' and '_' (AWS itself: 3-63 of lowercase letters, digits, '.' and '-')"
            )
        return value

    @property
    def max_request_bytes(self) -> int:
        """Largest request message: an inline image at `max_inline_bytes` in base64, plus JSON."""
        return (self.max_inline_bytes + 2) // 3 * 4 + 4096


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
    # speed, less AUC lost on a trained probe + prior model (README, int8 section).
    float_head: bool = True
    # More nodes kept in float: auto (the blocks whose float version brings the logits measurably
    # closer to float on training images that did not calibrate; harmscan.sensitivity), none, or
    # node names of the pre-processed graph. auto keeps at most max_float_nodes nodes and scores
    # on selection_images images. Measured (README, int8 section): auto brings the logits 1.5-2.5x
    # closer to float, but the check passed as often without it (2 of 4 trained-model / seed
    # pairs each; at 160 px auto was better, at 224 px - the main job's size - all-int8 passed
    # both times) and it adds a quantization per block to every registration: opt-in.
    float_nodes: Literal["auto", "none"] | list[str] = "none"
    max_float_nodes: int = Field(default=9, ge=0, le=1000)
    selection_images: int = Field(default=128, ge=1, le=10_000)
    # Largest ROC AUC the int8 model may lose against float, overall and in every split/domain.
    tolerance: float = Field(default=0.005, ge=0.0, le=1.0)


class PrefectSettings(Section):
    """Prefect API, work pool and schedules."""

    api_url: str | None = None
    work_pool: str = "harmscan-process"
    retrain_cron: str = "0 2 * * *"
    timezone: str = "UTC"
    # Longest a flow run may take before it fails as TimedOut (null: no limit). The nightly
    # retrain must end before the next night; serve is meant to run until cancelled.
    etl_timeout_s: float | None = Field(default=6 * 3600, gt=0)
    train_timeout_s: float | None = Field(default=12 * 3600, gt=0)
    retrain_timeout_s: float | None = Field(default=20 * 3600, gt=0)
    serve_timeout_s: float | None = Field(default=None, gt=0)


class StackSettings(Section):
    """Ports of the local, loopback-only service stack."""

    host: str = "127.0.0.1"
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    mlflow_port: int = 5000
    prefect_port: int = 4200
    prefect_worker_port: int = 4201  # the worker's /health endpoint
    s3_port: int = 9000
    metadata_port: int = 8088
    review_port: int = 8095  # the reviewers' page (review.port of the stack)


class ReviewSettings(Section):
    """The reviewers' web page (``harmscan review``) and what the ETL takes from its decisions."""

    host: str = "127.0.0.1"
    port: int = Field(default=8095, ge=0, le=65535)
    # Login: a shared token (each reviewer also gives a name), or one user and password.
    # With neither set, ``harmscan review`` makes a random token and writes it to token_file.
    token: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    # Signs the session cookie; None = a random key per start (sessions end with the process).
    session_secret: SecretStr | None = None
    session_max_age_s: int = Field(default=8 * 3600, ge=60)
    group_id: str = "harmscan-review"
    # A reviewer's claim on an item lapses after this long; then another reviewer may get it.
    claim_ttl_s: float = Field(default=300.0, gt=0)
    # The queue and claims store (SQLite); None = <paths.services>/review/queue.sqlite.
    store_path: Path | None = None
    delivery_timeout_s: float = Field(default=10.0, gt=0)
    # The ETL: take reviewed images as a labelled source (domain "reviewed")...
    use_in_training: bool = True
    # ...and never put them into the test split the promotion gate compares on, unless true.
    allow_in_test: bool = False

    @model_validator(mode="after")
    def _login_pairs(self) -> ReviewSettings:
        if (self.username is None) != (self.password is None):
            raise ValueError("review.username and review.password go together; set both or none")
        return self


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
        if gate and Path(gate).name in {Path(v).name for v in self.train.extra_train_sets}:
            raise ValueError(
                f"train.extra_train_sets names mlflow.gate_set {gate!r}: models are judged on "
                "it, never trained on it; valid: drawpool, emojipool, objectpool, photopool or a "
                "folder with manifest.csv and VERSION other than the gate set"
            )
        return self
