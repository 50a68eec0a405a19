"""Model factory and weights sources: explicit, no silent fallback."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from harmscan.models import (
    REPO_ROOT,
    WeightsError,
    WeightsSource,
    build_model,
    resolve_weights,
    set_backbone_trainable,
    split_parameters,
)

SHARED = "weights/mobilenet_v2_imagenet.pth"


@pytest.mark.parametrize(("setting", "kind"), [("imagenet", "imagenet"), ("None", "none")])
def test_keywords(setting: str, kind: str) -> None:
    assert resolve_weights("resnet50", setting).kind == kind


def test_relative_path_resolves_against_repo_root(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # not found relative to cwd, found relative to the repo root
    source = resolve_weights("mobilenet_v2", SHARED)
    assert source.kind == "file"
    assert source.path == (REPO_ROOT / SHARED).resolve()


def test_relative_path_prefers_cwd(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "w.pth").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    assert resolve_weights("mobilenet_v2", "w.pth").path == tmp_path / "w.pth"


def test_missing_file_names_the_alternatives(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match=r"imagenet.*none") as info:
        resolve_weights("mobilenet_v2", str(tmp_path / "nope.pth"))
    assert "nope.pth" in str(info.value)


def test_unknown_arch_is_named() -> None:
    with pytest.raises(ValueError, match="valid: mobilenet_v2, resnet50"):
        resolve_weights("vgg16", "none")


def test_imagenet_without_network_or_cache_fails_loudly(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsError, match="neither cached"):
        build_model("mobilenet_v2", WeightsSource("imagenet"))


def test_file_weights_load_into_backbone_and_head_is_two_class() -> None:
    source = resolve_weights("mobilenet_v2", SHARED)
    model = build_model("mobilenet_v2", source)
    reference = torch.load(source.path, map_location="cpu", weights_only=True)
    assert torch.equal(model.features[0][0].weight, reference["features.0.0.weight"])
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 2)


def test_file_weights_of_wrong_arch_are_refused() -> None:
    with pytest.raises(WeightsError, match="do not fit resnet50"):
        build_model("resnet50", resolve_weights("resnet50", SHARED))


def test_scratch_training_warns_loudly(caplog) -> None:
    with caplog.at_level(logging.WARNING):
        model = build_model("resnet50", WeightsSource("none"))
    assert "NO PRETRAINED WEIGHTS" in caplog.text
    assert model.fc.out_features == 2


def test_freezing_leaves_only_the_head_trainable() -> None:
    model = build_model("mobilenet_v2", WeightsSource("none"))
    set_backbone_trainable(model, "mobilenet_v2", False)
    backbone, head = split_parameters(model, "mobilenet_v2")
    assert not any(p.requires_grad for p in backbone)
    assert all(p.requires_grad for p in head)
    assert {id(p) for p in head} == {id(p) for p in model.classifier.parameters()}
