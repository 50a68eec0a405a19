"""What travels with a trained model: label order, preprocessing and decision thresholds.

Training writes a `ServingSpec` as ``serving.json`` (and the label order as ``labels.json``) into
the logged model's extra files, next to ``model.onnx``; serving reads them back from the registry.
The label order is never re-derived from folder names at serve time.

The bundle layout is defined here once: a registered version is an MLflow model folder (its
``MLmodel`` file at the top or one level down) whose ``extra_files/`` holds `BUNDLE_FILES`.
`bundle_files` lists what to attach when logging; `find_bundle_dir`, `find_model_dir` and
`read_bundle` find them again in a downloaded folder.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

# Canonical label order of every harmscan model: output index 0 is "safe", 1 is "harmful".
LABELS: tuple[str, str] = ("safe", "harmful")
HARMFUL = "harmful"
SAFE = "safe"

SPEC_FILE = "serving.json"
LABELS_FILE = "labels.json"
ONNX_FILE = "model.onnx"
# The served graphs: uint8 NHWC pixels in, normalisation inside (`harmscan.onnx_export`).
FLOAT_PIXELS_FILE = "model_float.onnx"
INT8_PIXELS_FILE = "model_int8.onnx"
PRECISIONS: tuple[str, ...] = ("float", "int8")
SPEC_VERSION = 1
EXTRA_DIR = "extra_files"  # where MLflow puts a logged model's extra files
MLMODEL_FILE = "MLmodel"
BUNDLE_FILES = (SPEC_FILE, LABELS_FILE, ONNX_FILE)  # every bundle carries these
SERVED_GRAPH_FILES = (FLOAT_PIXELS_FILE, INT8_PIXELS_FILE)  # optional, beside them


class BundleError(ValueError):
    """A folder is not a (complete) harmscan bundle; the message names the folder and file."""


@dataclass(frozen=True)
class ServingSpec:
    """Everything serving needs besides the weights, written by training.

    Attributes:
        arch: Architecture name, e.g. ``mobilenet_v2``.
        labels: Output order of the model's logits.
        threshold: Harmful probability at or above which an image is labelled harmful.
        review_low: Lower edge of the review band (uncertain scores).
        review_high: Upper edge of the review band.
        image_size: Square input size of the eval preset.
        resize_size: Shorter-side resize before the centre crop.
        mean: Normalization mean (RGB).
        std: Normalization std (RGB).
        dataset_version: Manifest hash of the data the model was trained on.
        int8_approved: The bundle's int8 graph kept the float model's AUC (within the
            tolerance, overall and per group) and may be served in its place.
        int8_reason: Why int8 was approved or refused (the groups and AUCs compared).
    """

    arch: str
    threshold: float
    review_low: float
    review_high: float
    image_size: int = 224
    resize_size: int = 256
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    labels: tuple[str, ...] = LABELS
    dataset_version: str = ""
    int8_approved: bool = False
    int8_reason: str = "no int8 model in this bundle"
    spec_version: int = SPEC_VERSION
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def harmful_index(self) -> int:
        """Index of the harmful class in the model's output."""
        return self.labels.index(HARMFUL)

    def label_for(self, p_harmful: float) -> str:
        """The label for a harmful probability under this spec's threshold."""
        return HARMFUL if p_harmful >= self.threshold else SAFE

    def in_review_band(self, p_harmful: float) -> bool:
        """Whether a score is uncertain enough to be sent for human review."""
        return self.review_low <= p_harmful <= self.review_high

    def write(self, folder: Path) -> list[Path]:
        """Write ``serving.json`` and ``labels.json`` into ``folder``; return their paths."""
        folder.mkdir(parents=True, exist_ok=True)
        spec_path = folder / SPEC_FILE
        labels_path = folder / LABELS_FILE
        spec_path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True))
        labels_path.write_text(json.dumps(list(self.labels)))
        return [spec_path, labels_path]

    @classmethod
    def read(cls, folder: Path) -> ServingSpec:
        """Read a spec written by `write`, checking it against ``labels.json``."""
        data = json.loads((folder / SPEC_FILE).read_text())
        if data.get("spec_version") != SPEC_VERSION:
            raise ValueError(f"unsupported serving spec version {data.get('spec_version')!r}")
        data["labels"] = tuple(data["labels"])
        data["mean"] = tuple(data["mean"])
        data["std"] = tuple(data["std"])
        spec = cls(**data)
        labels_path = folder / LABELS_FILE
        if labels_path.exists() and tuple(json.loads(labels_path.read_text())) != spec.labels:
            raise ValueError(f"{labels_path} disagrees with {SPEC_FILE} on the label order")
        if HARMFUL not in spec.labels:
            raise ValueError(f"label order {spec.labels} has no {HARMFUL!r} class")
        return spec


@dataclass(frozen=True)
class Bundle:
    """A harmscan bundle found in a downloaded model folder.

    Attributes:
        spec: The serving contract read from ``serving.json``.
        folder: The downloaded model folder (what `find_model_dir` searches).
        bundle_dir: The folder holding `BUNDLE_FILES` (``<folder>/extra_files`` usually).
    """

    spec: ServingSpec
    folder: Path
    bundle_dir: Path

    @property
    def onnx_path(self) -> Path:
        """The ONNX export (may be missing in bundles made before the ONNX export existed)."""
        return self.bundle_dir / ONNX_FILE

    @property
    def model_dir(self) -> Path:
        """The MLflow model folder (holds ``MLmodel``), for loading with torch."""
        return find_model_dir(self.folder)


def bundle_files(
    folder: Path, spec: ServingSpec, onnx_path: Path, served: Sequence[Path] = ()
) -> list[Path]:
    """Write the spec into ``folder``; every file a bundle carries, to attach as extra files.

    Args:
        folder: Where ``serving.json`` and ``labels.json`` are written.
        spec: The serving contract.
        onnx_path: The float export, named `ONNX_FILE`.
        served: Optional served graphs, named as in `SERVED_GRAPH_FILES`.

    Raises:
        BundleError: A file is missing or not named as the layout says.
    """
    if onnx_path.name != ONNX_FILE or not onnx_path.is_file():
        raise BundleError(f"{onnx_path}: a bundle carries its ONNX export as {ONNX_FILE}")
    for path in served:
        if path.name not in SERVED_GRAPH_FILES or not path.is_file():
            raise BundleError(f"{path}: served graphs are files named {SERVED_GRAPH_FILES}")
    spec.write(folder)
    return [folder / SPEC_FILE, folder / LABELS_FILE, onnx_path, *served]


def find_bundle_dir(folder: Path) -> Path:
    """The folder holding ``serving.json`` inside a downloaded model (``extra_files/`` usually).

    Raises:
        BundleError: The model has no ``serving.json``.
    """
    for candidate in (folder / EXTRA_DIR, folder):
        if (candidate / SPEC_FILE).is_file():
            return candidate
    found = sorted(folder.rglob(SPEC_FILE))
    if not found:
        raise BundleError(f"{folder} holds no {SPEC_FILE}; not a harmscan model bundle")
    return found[0].parent


def find_model_dir(folder: Path) -> Path:
    """The MLflow model folder (``MLmodel``) inside a download: the top or one level down."""
    return min((p.parent for p in folder.rglob(MLMODEL_FILE)), default=folder, key=_depth)


def read_bundle(folder: Path) -> Bundle:
    """Find and read the bundle in a downloaded model folder.

    Raises:
        BundleError: No ``serving.json``, or one that does not parse or disagrees with
            ``labels.json``.
    """
    bundle_dir = find_bundle_dir(folder)
    try:
        spec = ServingSpec.read(bundle_dir)
    except (ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"{bundle_dir / SPEC_FILE}: {exc}") from exc
    return Bundle(spec, folder, bundle_dir)


def _depth(path: Path) -> int:
    return len(path.parts)
