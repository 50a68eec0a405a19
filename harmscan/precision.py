"""The served graphs of a bundle, float and int8, and the accuracy check that picks between them.

At registration `build_served_models` turns the float export (``model.onnx``, float NCHW input)
into the two graphs serving runs, both taking uint8 pixels (`harmscan.onnx_export`):
``model_float.onnx`` and ``model_int8.onnx`` (calibrated on training images). Both are scored on
the check sets (the validation split and the photo gate set) exactly as the consumer scores —
decoded with JPEG draft mode, centre crop, pixels into the graph — and the int8 verdict
(`harmscan.int8check.check_int8_groups`) is written into the `ServingSpec`.
``serving.precision: auto`` serves int8 only when the spec says it passed.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harmscan.bundle import FLOAT_PIXELS_FILE, INT8_PIXELS_FILE, ServingSpec
from harmscan.checksets import CheckSet, pooled
from harmscan.gateset import GATESET_DIR
from harmscan.int8check import DEFAULT_TOLERANCE, CheckGroups, Int8Check, check_int8_groups
from harmscan.onnx_export import write_pixel_model
from harmscan.pixelscore import (
    calibration_batches,
    normalized_batches,
    p_harmful_each,
    sample_paths,
)
from harmscan.presets import EvalPreset
from harmscan.quantize import FloatNodes, QuantizeOptions, quantize_int8
from harmscan.sensitivity import Selection

logger = logging.getLogger(__name__)

# (int8 graph with a float NCHW input, folder, the float model's spec) -> a float export of the
# same backbone whose head was refitted on that int8 graph's pooled features and whose operating
# point was folded onto the spec's threshold (tasks.int8refit.head_refit).
HeadRefit = Callable[[Path, Path, ServingSpec], Path]


@dataclass(frozen=True)
class ServedModels:
    """What `build_served_models` wrote and decided.

    Attributes:
        spec: The input spec with ``int8_approved`` and ``int8_reason`` filled in.
        check: The int8 verdict (AUCs per group).
        files: The graphs written (float and int8 pixel-input models).
    """

    spec: ServingSpec
    check: Int8Check
    files: tuple[Path, ...]


@dataclass(frozen=True)
class Int8Plan:
    """What registration needs to make and judge the int8 model of one training run.

    Attributes:
        calibration: Training images that calibrate the activation ranges.
        checks: The validation split and the photo gate set (when there is one).
        options: Calibration method and size.
        tolerance: Largest AUC loss allowed, overall and in every group.
        calibration_photos: Images added to every calibration sample (a photo pool).
        refit_head: Refits the head on the int8 backbone's features (`build_served_models`).
        check_groups: The groups judged (`harmscan.int8check.judged_groups`).
    """

    calibration: tuple[Path, ...]
    checks: tuple[CheckSet, ...]
    options: QuantizeOptions = field(default_factory=QuantizeOptions)
    tolerance: float = DEFAULT_TOLERANCE
    calibration_photos: tuple[Path, ...] = ()
    refit_head: HeadRefit | None = None
    check_groups: CheckGroups = "split-domain"

    @classmethod
    def for_dataset(
        cls,
        dataset: Path,
        *,
        gate_set: Path | None = None,
        options: QuantizeOptions | None = None,
        tolerance: float = DEFAULT_TOLERANCE,
        calibration_photos: Sequence[str] = (),
        refit_head: HeadRefit | None = None,
        check_groups: CheckGroups = "split-domain",
    ) -> Int8Plan:
        """Calibrate on the dataset's train split; check on its val split and ``gate_set``.

        ``gate_set`` defaults to the repository's ``gateset/`` when it exists.
        ``calibration_photos`` names photo pools (``photopool``, or folders) whose images join
        every calibration sample; the gate set is refused (`harmscan.trainsets`): it judges.
        """
        from harmscan.trainsets import resolve_training_sets

        if gate_set is None and (GATESET_DIR / "manifest.csv").is_file():
            gate_set = GATESET_DIR
        checks = [CheckSet.from_manifest(dataset, split="val")]
        if gate_set is not None:
            checks.append(CheckSet.from_photo_set(gate_set))
        train = CheckSet.from_manifest(dataset, split="train")
        pools = resolve_training_sets(calibration_photos, gate_set)
        photos = tuple(path for pool in pools for path in pool.paths)
        options = options or QuantizeOptions()
        return cls(train.paths, tuple(checks), options, tolerance, photos, refit_head, check_groups)

    def build(self, float_onnx: Path, folder: Path, spec: ServingSpec) -> ServedModels:
        """`build_served_models` with this plan."""
        return build_served_models(
            float_onnx, folder, spec, calibration=self.calibration, checks=self.checks,
            options=self.options, tolerance=self.tolerance,
            calibration_photos=self.calibration_photos, refit_head=self.refit_head,
            check_groups=self.check_groups,
        )  # fmt: skip


GraphsHook = Callable[[Path, ServingSpec], tuple[ServingSpec, tuple[Path, ...]]]


def served_graphs_hook(plan: Int8Plan, verdicts: list[Int8Check] | None = None) -> GraphsHook:
    """A registration hook: given the float export and the spec, write the served graphs beside
    the export and return the spec with the int8 verdict and the files to log.

    Args:
        plan: What to calibrate on and check against.
        verdicts: Receives the int8 verdict (for the caller to log its AUCs).
    """

    def hook(onnx_path: Path, spec: ServingSpec) -> tuple[ServingSpec, tuple[Path, ...]]:
        served = plan.build(onnx_path, onnx_path.parent, spec)
        if verdicts is not None:
            verdicts.append(served.check)
        return served.spec, served.files

    return hook


def build_served_models(
    float_onnx: Path,
    folder: Path,
    spec: ServingSpec,
    *,
    calibration: Sequence[Path],
    checks: Sequence[CheckSet],
    options: QuantizeOptions | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    seed: int = 0,
    calibration_photos: Sequence[Path] = (),
    refit_head: HeadRefit | None = None,
    check_groups: CheckGroups = "split-domain",
) -> ServedModels:
    """Write the float and int8 pixel-input graphs into ``folder`` and judge the int8 one.

    Args:
        float_onnx: The float export (one float32 NCHW input, logits out).
        folder: The bundle folder the served graphs are written into.
        spec: The model's serving spec (preset and label order).
        calibration: Training images to calibrate the int8 activation ranges on.
        checks: The sets the int8 model must keep the float model's AUC on.
        options: Calibration method and size.
        tolerance: Largest AUC loss allowed, overall and in every group.
        seed: Seed of the calibration sample.
        calibration_photos: Images added to the calibration sample (a photo pool).
        refit_head: Given the int8 graph, a float export whose head was fitted on that graph's
            own features (its threshold folded onto ``spec``'s); the int8 model is then that
            export quantized the same way (the same batches and options give the backbone the
            same ranges; the head stays float).
        check_groups: ``split-domain`` judges every check set's domains apart; ``domain``
            judges each domain with every set's images of it pooled (the sets' groups logged).

    Returns:
        The spec with the int8 verdict, the verdict, and the files written.
    """
    options = options or QuantizeOptions()
    preset = EvalPreset.from_spec(spec)
    float_path = write_pixel_model(float_onnx, folder / FLOAT_PIXELS_FILE, preset=preset)
    sample = sample_paths(calibration, options.calibration_images, seed=seed)
    batches = normalized_batches([*sample, *calibration_photos], spec)
    if not batches:
        check = Int8Check(False, "no calibration image decoded: no int8 model", tolerance)
        return ServedModels(_with_verdict(spec, check), check, (float_path,))
    selection: list[np.ndarray] = []
    if options.float_nodes == "auto":  # scored on training images that did not calibrate
        rest = sorted(set(calibration) - set(sample))
        selection = calibration_batches(rest, spec, options.selection_images, seed=seed)
    chosen: list[Selection] = []
    int8_nchw = quantize_int8(
        float_onnx, folder / "int8_nchw.tmp.onnx", batches, options,
        selection=selection, chosen=chosen,
    )  # fmt: skip
    if refit_head is not None:
        refitted = refit_head(int8_nchw, folder, spec)
        options = dataclasses.replace(options, float_nodes=_nodes_chosen(options, chosen))
        int8_nchw.unlink()
        int8_nchw = quantize_int8(refitted, folder / "int8_nchw.tmp.onnx", batches, options)
        refitted.unlink()
    int8_path = write_pixel_model(int8_nchw, folder / INT8_PIXELS_FILE, preset=preset)
    int8_nchw.unlink()
    check = judge(float_path, int8_path, spec, checks, tolerance, check_groups)
    check = _with_float_nodes(check, options, chosen)
    if refit_head is not None:
        reason = check.reason + "; head refitted on the int8 backbone's features"
        check = dataclasses.replace(check, reason=reason)
    logger.info("int8 %s: %s", "approved" if check.approved else "refused", check.reason)
    return ServedModels(_with_verdict(spec, check), check, (float_path, int8_path))


def judge(
    float_path: Path,
    int8_path: Path,
    spec: ServingSpec,
    checks: Sequence[CheckSet],
    tolerance: float = DEFAULT_TOLERANCE,
    check_groups: CheckGroups = "split-domain",
) -> Int8Check:
    """Score both pixel graphs on every check set and compare their AUCs in the groups
    ``check_groups`` judges (`harmscan.int8check.check_int8_groups`; a group too small for its
    AUC to resolve ``tolerance`` is judged at the spec's threshold)."""
    paths, labels, groups = pooled(checks)
    p_float, p_int8 = p_harmful_each((float_path, int8_path), spec, paths)
    decoded = ~np.isnan(p_float) & ~np.isnan(p_int8)
    return check_int8_groups(
        labels[decoded],
        p_float[decoded],
        p_int8[decoded],
        {name: mask[decoded] for name, mask in groups.items()},
        check_groups,
        tolerance=tolerance,
        threshold=spec.threshold,
    )


def _nodes_chosen(options: QuantizeOptions, chosen: Sequence[Selection]) -> FloatNodes:
    """The float nodes the first quantization used, as names (``auto`` resolved): the second
    quantization of a refitted head keeps the same ones."""
    return tuple(chosen[0].float_nodes) if chosen else options.float_nodes


def _with_float_nodes(
    check: Int8Check, options: QuantizeOptions, chosen: Sequence[Selection]
) -> Int8Check:
    """The verdict naming the nodes kept in float besides the head (and how they were chosen)."""
    if chosen:
        nodes, how = chosen[0].float_nodes, f"; mixed precision: {chosen[0].describe()}"
    elif isinstance(options.float_nodes, tuple) and options.float_nodes:
        nodes = options.float_nodes
        how = f"; {len(nodes)} nodes kept float as set (int8.float_nodes)"
    else:
        return check
    return dataclasses.replace(check, reason=check.reason + how, float_nodes=tuple(nodes))


def _with_verdict(spec: ServingSpec, check: Int8Check) -> ServingSpec:
    extra = dict(spec.extra)
    if check.float_nodes:
        extra["int8_float_nodes"] = ",".join(check.float_nodes)
    else:
        extra.pop("int8_float_nodes", None)
    return dataclasses.replace(
        spec, int8_approved=check.approved, int8_reason=check.reason, extra=extra
    )
