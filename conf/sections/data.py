"""Settings of the data side: local paths, the Open Images source, the class sets and the ETL."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from conf.sections.base import Section

OpenImagesSubset = Literal["train", "validation", "test"]
_DEFAULT_SUBSETS: tuple[OpenImagesSubset, ...] = ("validation",)


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
    subsets: list[OpenImagesSubset] = Field(
        default_factory=lambda: list(_DEFAULT_SUBSETS), min_length=1
    )
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
