"""The bundle layout, defined once in harmscan.bundle: what is logged and how it is found again."""

from __future__ import annotations

from pathlib import Path

import pytest

from harmscan.bundle import (
    EXTRA_DIR,
    FLOAT_PIXELS_FILE,
    ONNX_FILE,
    SPEC_FILE,
    BundleError,
    ServingSpec,
    bundle_files,
    find_bundle_dir,
    find_model_dir,
    read_bundle,
)

SPEC = ServingSpec(arch="mobilenet_v2", threshold=0.4, review_low=0.3, review_high=0.5)


def _download(tmp_path: Path, *, nested: bool) -> Path:
    """A folder laid out like an MLflow download of a logged bundle."""
    top = tmp_path / "download"
    model = top / "model" if nested else top
    (model / EXTRA_DIR).mkdir(parents=True)
    (model / "MLmodel").write_text("flavors: {}\n")
    onnx = tmp_path / ONNX_FILE
    onnx.write_bytes(b"onnx")
    for path in bundle_files(tmp_path / "spec", SPEC, onnx):
        (model / EXTRA_DIR / path.name).write_bytes(path.read_bytes())
    return top


@pytest.mark.parametrize("nested", [False, True])
def test_a_download_is_read_back(tmp_path: Path, nested: bool) -> None:
    top = _download(tmp_path, nested=nested)
    bundle = read_bundle(top)
    model = top / "model" if nested else top
    assert bundle.spec == SPEC
    assert bundle.bundle_dir == model / EXTRA_DIR == find_bundle_dir(top)
    assert bundle.onnx_path.read_bytes() == b"onnx"
    assert bundle.model_dir == model == find_model_dir(top)


def test_files_are_named_by_the_layout(tmp_path: Path) -> None:
    wrong = tmp_path / "export.onnx"
    wrong.write_bytes(b"x")
    with pytest.raises(BundleError, match=ONNX_FILE):
        bundle_files(tmp_path, SPEC, wrong)
    onnx = tmp_path / ONNX_FILE
    onnx.write_bytes(b"x")
    served = tmp_path / FLOAT_PIXELS_FILE
    served.write_bytes(b"x")
    names = [p.name for p in bundle_files(tmp_path / "spec", SPEC, onnx, [served])]
    assert names == [SPEC_FILE, "labels.json", ONNX_FILE, FLOAT_PIXELS_FILE]
    with pytest.raises(BundleError, match="served graphs"):
        bundle_files(tmp_path / "spec", SPEC, onnx, [wrong])


def test_not_a_bundle_names_the_folder(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match=f"{tmp_path} holds no {SPEC_FILE}"):
        read_bundle(tmp_path)
    (tmp_path / SPEC_FILE).write_text("{not json")
    with pytest.raises(BundleError, match=SPEC_FILE):
        read_bundle(tmp_path)
