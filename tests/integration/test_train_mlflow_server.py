"""The MLflow server fixture: a real tracking server that stores runs and artifacts."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_server_round_trips_a_run_with_an_artifact(mlflow_uri: str, unique, tmp_path: Path) -> None:
    import mlflow

    client = mlflow.MlflowClient(mlflow_uri)
    experiment_id = client.create_experiment(unique("exp"))
    run = client.create_run(experiment_id)
    client.log_metric(run.info.run_id, "accuracy", 0.75)
    note = tmp_path / "note.txt"
    note.write_text("hello")
    client.log_artifact(run.info.run_id, str(note))
    client.set_terminated(run.info.run_id)

    fetched = client.get_run(run.info.run_id)
    assert fetched.data.metrics["accuracy"] == pytest.approx(0.75)
    out = Path(client.download_artifacts(run.info.run_id, "note.txt", str(tmp_path / "dl")))
    assert out.read_text() == "hello"
