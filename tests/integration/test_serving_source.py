"""The model source against a real MLflow registry: alias resolution, pinned downloads, hot swap
preparation, and failures that keep the served model."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from serving.model import ModelUnavailable
from serving.source import ModelSource
from serving.watcher import ChampionWatcher
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


def test_loads_from_the_configured_server_not_the_process_default(
    mlflow_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`harmscan serve` names the registry only in settings; the process default is elsewhere."""
    name = f"source-{os.urandom(4).hex()}"
    register_model(mlflow_server, name, tmp_path / "v1")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'elsewhere.db'}")
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", f"sqlite:///{tmp_path / 'elsewhere.db'}")
    model = source(mlflow_server, name, tmp_path).load()
    assert model.version == "1"
    model.discard()


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


@pytest.mark.parametrize("runtime", ["onnx", "torch"])
def test_serves_what_training_registers(mlflow_server: str, tmp_path: Path, runtime: str) -> None:
    """The contract with `registry.log_bundle`: its versions load in both runtimes."""
    from registry import Registry, log_bundle, start_run
    from serving.classifier import BatchClassifier
    from serving.inputs import InputReader
    from serving.schema import Result, encode_request
    from tests.serving_support import BLUE, RED, ColourNet, image_bytes, make_spec

    name = f"contract-{os.urandom(4).hex()}"
    registry = Registry(mlflow_server)
    with start_run(registry, name) as run:
        bundle = log_bundle(run, ColourNet(), make_spec(), registered_model=name)
    assert bundle.version is not None
    registry.client.set_registered_model_alias(name, "champion", bundle.version)
    model = source(mlflow_server, name, tmp_path, runtime).load()
    classifier = BatchClassifier(
        InputReader([], [], 1_000_000), workers=1, max_pixels=1_000_000, decode_timeout_s=10,
    )  # fmt: skip
    values = [encode_request(c, image_b64=base64.b64encode(image_bytes(rgb)).decode())
              for c, rgb in (("red", RED), ("blue", BLUE))]  # fmt: skip
    try:
        red, blue = classifier.classify(values, model, 0.0)
    finally:
        classifier.close()
        model.discard()
    assert isinstance(red, Result)
    assert isinstance(blue, Result)
    assert (red.label, blue.label, red.model_version) == ("harmful", "safe", bundle.version)
