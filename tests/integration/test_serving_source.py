"""The model source against a real MLflow registry: alias resolution, pinned downloads, hot swap
preparation, and failures that keep the served model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from serving.source import ChampionWatcher, ModelSource, ModelUnavailable
from stack.process import free_port
from tests.serving_support import register_model

pytestmark = pytest.mark.slow


def source(uri: str, name: str, tmp_path: Path, runtime: str = "onnx") -> ModelSource:
    return ModelSource(uri, name, "champion", runtime, 1, tmp_path / "cache")


def test_champion_loads_and_watcher_prepares_the_next(mlflow_server: str, tmp_path: Path) -> None:
    name = f"source-{os.urandom(4).hex()}"
    register_model(mlflow_server, name, tmp_path / "v1", labels=("harmful", "safe"))
    src = source(mlflow_server, name, tmp_path)
    model = src.load()
    assert (model.version, model.spec.labels, model.spec.harmful_index) == (
        "1", ("harmful", "safe"), 0,
    )  # fmt: skip
    watcher = ChampionWatcher(src, model.version, interval_s=3600)
    watcher.check_now()
    assert watcher.take() is None  # alias unchanged
    register_model(mlflow_server, name, tmp_path / "v2", invert=True)
    watcher.check_now()
    new = watcher.take()
    assert new is not None
    assert new.version == "2"
    assert watcher.take() is None  # handed over once
    new.discard()
    model.discard()
    assert not model.folder.exists()


def test_missing_alias_is_unavailable(mlflow_server: str, tmp_path: Path) -> None:
    name = f"source-{os.urandom(4).hex()}"
    register_model(mlflow_server, name, tmp_path / "v1", alias=None)
    with pytest.raises(ModelUnavailable, match="champion"):
        source(mlflow_server, name, tmp_path).load()


def test_registry_down_keeps_the_current_model(
    mlflow_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    name = f"source-{os.urandom(4).hex()}"
    register_model(mlflow_server, name, tmp_path / "v1")
    model = source(mlflow_server, name, tmp_path).load()
    down = source(f"http://127.0.0.1:{free_port()}", name, tmp_path)
    with pytest.raises(ModelUnavailable):
        down.current_version()
    watcher = ChampionWatcher(down, model.version, interval_s=3600)
    watcher.check_now()
    assert watcher.take() is None
    model.discard()
