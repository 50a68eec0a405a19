"""The batching classifier on a tiny real model: labels, label order, runtimes, hostile input."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from serving.classifier import BatchClassifier, Rejection
from serving.inputs import InputReader
from serving.model import LoadedModel, ModelUnavailable
from serving.schema import Result, encode_request
from serving.source import load_model_folder
from tests.serving_support import (
    BLUE,
    PURPLE,
    RED,
    image_bytes,
    jpeg_scan_bomb,
    png_bomb,
    save_local_model,
)


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {
        "normal": save_local_model(root / "normal"),
        "reversed": save_local_model(root / "reversed", labels=("harmful", "safe")),
    }


@pytest.fixture
def classifier(tmp_path: Path) -> BatchClassifier:
    reader = InputReader([tmp_path], [], max_bytes=1_000_000)
    clf = BatchClassifier(reader, workers=2, max_pixels=4_000_000, decode_timeout_s=5.0)
    yield clf
    clf.close()


def inline(data: bytes, request_id: str = "r") -> bytes:
    return encode_request(request_id, image_b64=base64.b64encode(data).decode())


@pytest.mark.parametrize("runtime", ["onnx", "torch"])
@pytest.mark.parametrize("which", ["normal", "reversed"])
def test_labels_follow_the_models_spec(
    model_dirs: dict[str, Path], classifier: BatchClassifier, runtime: str, which: str
) -> None:
    model = load_model_folder(model_dirs[which], name="m", version="1", runtime=runtime)
    values = [inline(image_bytes(RED), "red"), inline(image_bytes(BLUE), "blue")]
    red, blue = classifier.classify(values, model, received_at=0.0)
    assert isinstance(red, Result)
    assert isinstance(blue, Result)
    assert (red.id, red.label, blue.id, blue.label) == ("red", "harmful", "blue", "safe")
    assert red.p_harmful > 0.9 > 0.1 > blue.p_harmful
    assert red.model_version == "1"
    assert red.threshold == model.spec.threshold


def test_review_band(model_dirs: dict[str, Path], classifier: BatchClassifier) -> None:
    model = load_model_folder(model_dirs["normal"], name="m", version="1", runtime="onnx")
    purple, red = image_bytes(PURPLE), image_bytes(RED)
    result, clear = classifier.classify([inline(purple), inline(red)], model, received_at=0.0)
    assert isinstance(result, Result)
    assert model.spec.review_low <= result.p_harmful <= model.spec.review_high
    assert result.review
    # the review page checks its source still holds the bytes scored; a clear result needs none
    assert result.sha256 == hashlib.sha256(purple).hexdigest()
    assert isinstance(clear, Result)
    assert not clear.review
    assert clear.sha256 is None


def test_unknown_runtime_is_named(model_dirs: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="valid: onnx, torch"):
        load_model_folder(model_dirs["normal"], name="m", version="1", runtime="tf")


def test_folder_without_spec_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match=r"serving\.json"):
        load_model_folder(tmp_path, name="m", version="1", runtime="onnx")


def _cmyk() -> bytes:
    buffer = io.BytesIO()
    Image.new("CMYK", (40, 40), (0, 220, 220, 20)).save(buffer, "JPEG")
    return buffer.getvalue()


def _sixteen_bit_grey() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((40, 40), 60000, dtype=np.uint16)).save(buffer, "PNG")
    return buffer.getvalue()


def _palette_transparent() -> bytes:
    image = Image.new("P", (40, 40), 0)
    image.putpalette([220, 30, 30] + [0, 0, 0] * 255)
    buffer = io.BytesIO()
    image.save(buffer, "PNG", transparency=1)
    return buffer.getvalue()


def _exif_rotated() -> bytes:
    image = Image.new("RGB", (60, 30), RED)
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


@pytest.mark.parametrize("make", [_cmyk, _sixteen_bit_grey, _palette_transparent, _exif_rotated])
def test_unusual_valid_images_decode(
    model_dirs: dict[str, Path], classifier: BatchClassifier, make
) -> None:
    model = load_model_folder(model_dirs["normal"], name="m", version="1", runtime="onnx")
    (outcome,) = classifier.classify([inline(make())], model, received_at=0.0)
    assert isinstance(outcome, Result), outcome


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (inline(b"hello, not an image"), "not_an_image"),
        (inline(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n"), "unsupported_format"),
        (inline(image_bytes(RED)[:200]), "truncated"),
        (inline(png_bomb()), "decompression_bomb"),
        (b"{not json", "bad_schema"),
        (encode_request("x", path="/etc/passwd"), "forbidden_path"),
        (encode_request("x", s3="s3://nope/k"), "forbidden_path"),
    ],
)
def test_bad_input_is_rejected_with_reason(
    model_dirs: dict[str, Path], classifier: BatchClassifier, payload: bytes, reason: str
) -> None:
    model = load_model_folder(model_dirs["normal"], name="m", version="1", runtime="onnx")
    good = inline(image_bytes(RED), "good")
    bad, ok = classifier.classify([payload, good], model, received_at=0.0)
    assert isinstance(bad, Rejection)
    assert bad.reason == reason, bad
    assert isinstance(ok, Result)
    assert ok.label == "harmful"


def test_paths_under_root_are_read(
    model_dirs: dict[str, Path], classifier: BatchClassifier, tmp_path: Path
) -> None:
    model: LoadedModel = load_model_folder(
        model_dirs["normal"], name="m", version="1", runtime="onnx"
    )
    path = tmp_path / "blue.png"
    path.write_bytes(image_bytes(BLUE, "PNG"))
    (result,) = classifier.classify([encode_request("p", path=str(path))], model, 0.0)
    assert isinstance(result, Result)
    assert (result.label, result.source) == ("safe", str(path))


def test_an_overrunning_decode_is_killed_and_replaced(model_dirs: dict[str, Path]) -> None:
    model = load_model_folder(model_dirs["normal"], name="m", version="1", runtime="onnx")
    clf = BatchClassifier(
        InputReader([], [], max_bytes=1_000_000), workers=1, max_pixels=20_000_000,
        decode_timeout_s=1.0,
    )  # fmt: skip
    try:
        (first,) = clf.decoder.pids()
        pending = clf.submit([inline(jpeg_scan_bomb(), "bomb"), inline(image_bytes(RED), "a")],
                             model.preset)  # fmt: skip
        bomb, a = clf.finish(pending, model, 0.0)
        (b,) = clf.classify([inline(image_bytes(BLUE), "b")], model, 0.0)
        (second,) = clf.decoder.pids()
    finally:
        clf.close()
    assert isinstance(bomb, Rejection)
    assert (bomb.reason, bomb.request_id) == ("too_large", "bomb")
    assert first != second
    assert not _alive(first)
    assert clf.decoder.replaced == 1
    assert isinstance(a, Result)
    assert isinstance(b, Result)
    assert (a.label, b.label) == ("harmful", "safe")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


@pytest.mark.parametrize("runtime", ["onnx", "torch"])
def test_warm_up_runs_the_model_at_load(model_dirs: dict[str, Path], runtime: str) -> None:
    model = load_model_folder(model_dirs["normal"], name="m", version="1", runtime=runtime)
    seen: list[tuple[int, ...]] = []
    predict = model.predict
    model.predict = lambda batch: (seen.append(batch.shape), predict(batch))[1]
    assert model.warm_up(5) > 0
    size = model.spec.image_size
    assert seen == [(1, 3, size, size), (5, 3, size, size)]


def test_warm_up_at_load_rejects_a_model_with_the_wrong_output(
    model_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import serving.source as source

    real = source.onnx_predictor

    def three_classes(path: Path, threads: int):  # a model that answers 3 scores for 2 labels
        predict, max_batch = real(path, threads)
        return (lambda batch: np.repeat(predict(batch)[:, :1], 3, axis=1)), max_batch

    monkeypatch.setattr(source, "onnx_predictor", three_classes)
    with pytest.raises(ModelUnavailable, match=r"expected \(batch, 2\)"):
        load_model_folder(
            model_dirs["normal"], name="m", version="1", runtime="onnx", warmup_batch=4
        )


def test_inference_workers_score_parts_of_a_batch_side_by_side(
    model_dirs: dict[str, Path],
) -> None:
    one = load_model_folder(model_dirs["normal"], name="m", version="1", runtime="onnx")
    two = load_model_folder(model_dirs["normal"], name="m", version="1", runtime="onnx", workers=2)
    size = one.spec.image_size
    batch = np.random.default_rng(0).normal(size=(5, 3, size, size)).astype(np.float32)
    threads: list[tuple[str, int]] = []
    predict = two.predict
    two.predict = lambda b: (threads.append((threading.current_thread().name, len(b))), predict(b))[
        1
    ]
    np.testing.assert_allclose(two.p_harmful(batch), one.p_harmful(batch), rtol=1e-5, atol=1e-6)
    assert sorted(n for _, n in threads) == [2, 3]
    assert all(name.startswith("infer") for name, _ in threads)
    with pytest.raises(ValueError, match="workers must be >= 1"):
        LoadedModel("m", "1", one.spec, "onnx", one.predict, workers=0)
