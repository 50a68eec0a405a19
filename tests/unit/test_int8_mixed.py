"""Mixed precision by measured sensitivity: block naming, the greedy choice, and registration."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from harmscan.bundle import INT8_PIXELS_FILE, ONNX_FILE, ServingSpec
from harmscan.checksets import CheckSet
from harmscan.precision import build_served_models
from harmscan.quantize import QuantizeOptions, quantize_int8
from harmscan.sensitivity import block_of, blocks, choose_float_blocks, logit_error
from serving.source import load_model_folder
from tests.serving_support import BLUE, RED, make_spec, write_extra_files, write_image


@pytest.mark.parametrize(
    ("node", "block"),
    [
        ("/features/features.3/conv/conv.0/conv.0.0/Conv", "/features/features.3"),
        ("/features/features.0/features.0.0/Conv", "/features/features.0"),
        ("/layer2/layer2.1/conv1/Conv", "/layer2/layer2.1"),
        ("/conv1/Conv", "/conv1/Conv"),
        ("Conv_7", "Conv_7"),
    ],
)
def test_a_node_belongs_to_the_block_of_its_first_indexed_module(node: str, block: str) -> None:
    assert block_of(node) == block


def test_logit_error_ignores_a_shared_offset_and_measures_the_rest() -> None:
    ref = np.array([[1.0, 3.0], [0.0, -2.0]])
    assert logit_error(ref, ref + 5.0) == pytest.approx(0.0)
    assert logit_error(ref, ref + np.array([[0.0, 2.0], [0.0, 0.0]])) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="shapes differ"):
        logit_error(ref, ref[:1])


UNITS = {"stem": ["s"], "b1": ["b1a", "b1b"], "b2": ["b2a", "b2b", "b2c"], "b3": ["b3"]}


def _fake(gains: dict[str, float], base: float = 1.0, clash: frozenset[str] = frozenset()):  # type: ignore[no-untyped-def]
    """An evaluate() whose int8 error is ``base`` minus the gain of each float node; nodes in
    ``clash`` help alone but nothing when another block is already float (not additive)."""
    calls: list[tuple[str, ...]] = []

    def evaluate(nodes: Sequence[str]) -> np.ndarray:
        calls.append(tuple(nodes))
        blocks_in = {block_of_fake(n) for n in nodes}
        error = base - sum(
            gains.get(n, 0.0)
            for n in nodes
            if not (block_of_fake(n) in clash and len(blocks_in) > 1)
        )
        return np.array([[0.0, 2 * np.sqrt(max(error, 0.0))]])  # logit_error == error

    return evaluate, calls


def block_of_fake(node: str) -> str:
    return next(b for b, nodes in UNITS.items() if node in nodes)


REFERENCE = np.zeros((1, 2))


def test_greedy_keeps_the_most_helpful_blocks_within_the_node_budget() -> None:
    evaluate, _ = _fake({"s": 0.3, "b1a": 0.2, "b2a": 0.4, "b3": 0.01})
    chosen = choose_float_blocks(UNITS, evaluate, REFERENCE, max_nodes=4)
    # b2 alone helps most but b2 (3 nodes) + stem (1) fill the budget; b1 (2 more) does not fit;
    # b3 cuts less than MIN_GAIN of the error and is never kept.
    assert chosen.float_blocks == ("b2", "stem")
    assert chosen.float_nodes == ("s", "b2a", "b2b", "b2c")  # in graph order
    assert chosen.baseline == pytest.approx(1.0)
    assert chosen.error == pytest.approx(0.3)
    assert "4 nodes kept float" in chosen.describe()


def test_a_block_that_helps_only_alone_is_not_kept() -> None:
    evaluate, _ = _fake({"s": 0.3, "b1a": 0.2}, clash=frozenset({"b1"}))
    chosen = choose_float_blocks(UNITS, evaluate, REFERENCE, max_nodes=9)
    assert chosen.float_blocks == ("stem",)


def test_no_budget_measures_nothing_and_keeps_nothing() -> None:
    evaluate, calls = _fake({"s": 0.5})
    chosen = choose_float_blocks(UNITS, evaluate, REFERENCE, max_nodes=0)
    assert chosen.float_nodes == ()
    assert calls == []
    assert "nothing measured" in chosen.describe()
    with pytest.raises(ValueError, match="max_nodes"):
        choose_float_blocks(UNITS, evaluate, REFERENCE, max_nodes=-1)


def test_nothing_is_kept_when_no_block_helps() -> None:
    evaluate, calls = _fake({})
    chosen = choose_float_blocks(UNITS, evaluate, REFERENCE, max_nodes=9)
    assert chosen.float_nodes == ()
    assert len(calls) == 1 + len(UNITS)  # the all-int8 graph and one per block
    assert "no block kept float (logit error 1" in chosen.describe()


def test_float_nodes_setting_is_validated() -> None:
    with pytest.raises(ValueError, match="auto, none or a list"):
        QuantizeOptions(float_nodes="some")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_float_nodes"):
        QuantizeOptions(max_float_nodes=-1)


class BlockNet(torch.nn.Module):
    """Three convolution blocks and a linear head; one stem channel 50x the others widens the
    per-tensor activation ranges, so that int8 loses enough for some block to be worth float."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)

        def block(cin: int, cout: int) -> torch.nn.Sequential:
            return torch.nn.Sequential(torch.nn.Conv2d(cin, cout, 3, padding=1), torch.nn.ReLU())

        self.features = torch.nn.Sequential(block(3, 8), block(8, 8), block(8, 8))
        with torch.no_grad():
            self.features[0][0].weight[0] *= 50.0
        self.pool = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
        self.head = torch.nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.features(x)))


def _batches(spec: ServingSpec, n: int = 16, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    size = spec.image_size
    return [rng.normal(size=(8, 3, size, size)).astype(np.float32) for _ in range(n // 8)]


def test_blocks_group_the_convolutions_of_an_export(tmp_path: Path) -> None:
    spec = make_spec()
    write_extra_files(tmp_path, BlockNet().eval(), spec)
    units = blocks(onnx.load(str(tmp_path / ONNX_FILE)), skip=["/head/Gemm"])
    assert list(units) == [f"/features/features.{i}" for i in range(3)]
    assert all(len(nodes) == 1 for nodes in units.values())


def _float_weight_convs(path: Path) -> set[str]:
    """Convolutions of a QDQ graph whose weight is not dequantized from int8."""
    graph = onnx.load(str(path)).graph
    dequantized = {n.output[0] for n in graph.node if n.op_type == "DequantizeLinear"}
    return {n.name for n in graph.node if n.op_type == "Conv" and n.input[1] not in dequantized}


def test_explicit_float_nodes_stay_float_and_unknown_names_fail(tmp_path: Path) -> None:
    spec = make_spec()
    write_extra_files(tmp_path, BlockNet().eval(), spec)
    keep = ("/features/features.1/features.1.0/Conv",)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = quantize_int8(
            tmp_path / ONNX_FILE, tmp_path / "q.onnx", _batches(spec),
            QuantizeOptions(float_nodes=keep),
        )  # fmt: skip
        assert _float_weight_convs(out) == set(keep)
        with pytest.raises(ValueError, match="unknown nodes"):
            quantize_int8(
                tmp_path / ONNX_FILE, tmp_path / "bad.onnx", _batches(spec),
                QuantizeOptions(float_nodes=("/nope/Conv",)),
            )  # fmt: skip


def _colour_set(root: Path, name: str, n: int = 8) -> CheckSet:
    paths, labels = [], []
    for i in range(n):
        harmful = i % 2
        shade = 15 * (i // 2)
        red, blue = (RED[0] - shade, RED[1] + shade, RED[2]), (BLUE[0] + shade, *BLUE[1:])
        colour = red if harmful else blue
        paths.append(write_image(root / name / f"{i}.jpg", colour))
        labels.append(harmful)
    return CheckSet(name, tuple(paths), tuple(labels), ("photo",) * n)


def test_registration_records_the_float_nodes_auto_chose_and_int8_still_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("serving.graphs.int8_saturates_here", lambda: False)
    monkeypatch.setattr(
        "serving.graphs.time_predictors", lambda *_a, **_k: {"float": 2.0, "int8": 1.0}
    )
    spec = make_spec()
    folder = tmp_path / "model" / "extra_files"
    write_extra_files(folder, BlockNet().eval(), spec)
    checks = [_colour_set(tmp_path, "val")]
    train = _colour_set(tmp_path, "train", n=16)
    options = QuantizeOptions(float_nodes="auto", max_float_nodes=2, calibration_images=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        served = build_served_models(
            folder / ONNX_FILE, folder, spec, calibration=list(train.paths), checks=checks,
            options=options, tolerance=1.0,  # the plumbing is under test, not random weights
        )  # fmt: skip
    nodes = served.check.float_nodes
    assert 1 <= len(nodes) <= 2
    assert set(nodes) <= {f"/features/features.{i}/features.{i}.0/Conv" for i in range(3)}
    assert "mixed precision" in served.check.reason
    assert served.spec.extra["int8_float_nodes"] == ",".join(nodes)
    assert _float_weight_convs(folder / INT8_PIXELS_FILE) == set(nodes)
    served.spec.write(folder)
    assert ServingSpec.read(folder).extra["int8_float_nodes"] == ",".join(nodes)
    model = load_model_folder(
        tmp_path / "model", name="m", version="1", runtime="onnx", precision="auto",
        warmup_batch=2,
    )  # fmt: skip
    assert model.precision == "int8"
    pixels = np.full((2, spec.image_size, spec.image_size, 3), RED, dtype=np.uint8)
    assert np.isfinite(model.p_harmful(pixels)).all()


def test_calibration_photos_join_the_sample_and_the_gate_set_is_refused(tmp_path: Path) -> None:
    import pandas as pd

    from harmscan.precision import Int8Plan
    from harmscan.trainsets import TrainingSetError
    from tests.fixtures.photo_sets import write_photo_set
    from tests.serving_support import image_bytes

    rows = []
    for split in ("train", "val"):
        for i, label in enumerate(["harmful", "safe"]):
            rel = f"{split}/{label}/{i}.jpg"
            write_image(tmp_path / "data" / rel, RED if label == "harmful" else BLUE)
            rows.append((f"{split}{i}", label, split, rel, "0", "illustration"))
    columns = ["image_id", "label", "split", "path", "sha256", "domain"]
    pd.DataFrame(rows, columns=columns).to_csv(tmp_path / "data" / "manifest.csv", index=False)
    gate = write_photo_set(
        tmp_path / "gate",
        [
            ("images/a.jpg", "harmful", "photo", image_bytes(RED)),
            ("images/b.jpg", "safe", "photo", image_bytes(BLUE)),
        ],
    )
    pool = write_photo_set(
        tmp_path / "pool", [("images/c.jpg", "safe", "photo", image_bytes((0, 200, 0)))]
    )
    plan = Int8Plan.for_dataset(tmp_path / "data", gate_set=gate, calibration_photos=[str(pool)])
    assert plan.calibration_photos == (pool.resolve() / "images/c.jpg",)
    with pytest.raises(TrainingSetError, match="gate set"):
        Int8Plan.for_dataset(tmp_path / "data", gate_set=gate, calibration_photos=[str(gate)])

    folder, spec = tmp_path / "model", make_spec()
    write_extra_files(folder, BlockNet().eval(), spec)
    seen: list[int] = []

    def counting(_model: Path, dest: Path, batches: list[np.ndarray], *_: object, **__: object):  # type: ignore[no-untyped-def]
        seen.append(sum(len(b) for b in batches))
        return quantize_int8(_model, dest, batches)

    with warnings.catch_warnings(), pytest.MonkeyPatch.context() as patch:
        warnings.simplefilter("ignore")
        patch.setattr("harmscan.precision.quantize_int8", counting)
        plan.build(folder / ONNX_FILE, folder, spec)
    assert seen == [len(plan.calibration) + 1]  # every train image (fewer than 64) + the photo


def test_settings_default_to_none_and_take_auto_or_names() -> None:
    from pydantic import ValidationError

    from conf.settings import Int8Settings

    assert Int8Settings().float_nodes == "none"
    assert Int8Settings(float_nodes="auto").float_nodes == "auto"
    assert Int8Settings(float_nodes=["/features/features.0/features.0.0/Conv"]).float_nodes == [
        "/features/features.0/features.0.0/Conv"
    ]
    with pytest.raises(ValidationError):
        Int8Settings(float_nodes="some")  # type: ignore[arg-type]
