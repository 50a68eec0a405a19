"""The registry module against a real MLflow server: explicit URIs, alias lookups, downloads,
runs logged by id, and errors that say what is missing and where."""

from __future__ import annotations

from pathlib import Path

import pytest

from harmscan.bundle import EXTRA_DIR, ONNX_FILE, SPEC_FILE
from registry import CHAMPION, Registry, RegistryError, RegistryUnavailable, start_run
from stack.process import free_port
from tests.serving_support import make_spec, register_model

pytestmark = pytest.mark.slow


def test_alias_lookup_and_moves(mlflow_server: str, unique, tmp_path: Path) -> None:
    name = unique("reg")
    register_model(mlflow_server, name, tmp_path, alias=None)
    register_model(mlflow_server, name, tmp_path, invert=True, alias=None)
    registry = Registry(mlflow_server)
    assert registry.alias_version(name, CHAMPION) is None
    assert registry.alias_version(unique("no-such-model"), CHAMPION) is None
    with pytest.raises(RegistryError, match=f"no models:/{name}@{CHAMPION} at {mlflow_server}"):
        registry.require_alias_version(name, CHAMPION)

    registry.set_alias(name, CHAMPION, "1", {"why": "first", "score": 0.5})
    assert registry.require_alias_version(name, CHAMPION) == "1"
    registry.set_alias(name, CHAMPION, "2")
    info = registry.model_version(name, "2")
    assert (info.version, info.aliases, info.uri) == ("2", (CHAMPION,), f"models:/{name}/2")
    assert registry.model_version(name, "1").tags["score"] == "0.5"
    assert registry.alias_version(name, CHAMPION) == "2"
    with pytest.raises(RegistryError, match=f"{name} has no version 9; its versions: 1, 2$"):
        registry.set_alias(name, CHAMPION, "9")
    assert registry.alias_version(name, CHAMPION) == "2"


def test_ignores_the_process_default_uri(
    mlflow_server: str, unique, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = unique("reg")
    register_model(mlflow_server, name, tmp_path)
    elsewhere = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", elsewhere)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", elsewhere)
    registry = Registry(mlflow_server)
    assert registry.alias_version(name, CHAMPION) == "1"
    bundle = registry.download_bundle(name, "1", tmp_path / "dl")
    assert bundle.bundle_dir == bundle.folder / EXTRA_DIR
    assert (bundle.bundle_dir / SPEC_FILE).is_file()
    assert bundle.onnx_path == bundle.bundle_dir / ONNX_FILE
    assert bundle.onnx_path.is_file()
    assert (bundle.model_dir / "MLmodel").is_file()
    assert bundle.spec == make_spec()


def test_download_of_a_missing_version_names_it(mlflow_server: str, unique, tmp_path) -> None:
    name = unique("reg")
    register_model(mlflow_server, name, tmp_path)
    with pytest.raises(RegistryError, match=f"{name} has no version 7; its versions: 1$"):
        Registry(mlflow_server).download_bundle(name, "7", tmp_path / "dl")


def test_unreachable_registry_is_unavailable_not_missing(
    monkeypatch: pytest.MonkeyPatch, unique
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    down = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(RegistryUnavailable, match=down):
        Registry(down).alias_version(unique("reg"), CHAMPION)


def test_run_logs_by_id_and_ends_failed_on_error(mlflow_server: str, unique, tmp_path) -> None:
    registry = Registry(mlflow_server)
    experiment = unique("exp")
    note = tmp_path / "out" / "note.txt"
    note.parent.mkdir()
    note.write_text("hello")
    with start_run(registry, experiment, "ok") as run:
        run.log_params({f"p{i}": i for i in range(150)})  # more than one batch
        run.log_metrics({"loss": 0.5}, step=1)
        run.log_metrics({"loss": 0.25}, step=2)
        run.set_tags({"arch": "colournet"})
        run.log_artifacts(note.parent, "evaluation")
    with pytest.raises(ValueError, match="boom"), start_run(registry, experiment, "bad") as bad:
        raise ValueError("boom")

    client = registry.client
    done = client.get_run(run.run_id)
    assert done.info.status == "FINISHED"
    assert len(done.data.params) == 150
    assert done.data.tags["arch"] == "colournet"
    history = sorted(client.get_metric_history(run.run_id, "loss"), key=lambda m: m.step)
    assert [(m.step, m.value) for m in history] == [(1, 0.5), (2, 0.25)]
    assert [a.path for a in client.list_artifacts(run.run_id, "evaluation")] == [
        "evaluation/note.txt"
    ]
    assert client.get_run(bad.run_id).info.status == "FAILED"
    assert run.experiment_id == bad.experiment_id  # the experiment is made once, then found
