"""A tracking run written through the client API with its explicit run id.

`start_run` is the harmscan replacement for ``mlflow.start_run``: it uses a `Registry`'s own
client, so a training run never depends on (or changes) a process-wide tracking URI and two runs
in one process cannot write into each other.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.client import Registry

if TYPE_CHECKING:
    from mlflow import MlflowClient

logger = logging.getLogger(__name__)

MAX_PARAMS_PER_CALL = 100  # MLflow's batch limit
MAX_PARAM_LENGTH = 6000


@dataclass(frozen=True)
class Run:
    """An open tracking run: log into it by id through its registry's client.

    Attributes:
        registry: Where the run lives.
        run_id: The run's id.
        experiment_id: Its experiment's id.
    """

    registry: Registry
    run_id: str
    experiment_id: str

    @property
    def client(self) -> MlflowClient:
        """The registry's client."""
        return self.registry.client

    def log_params(self, params: Mapping[str, object]) -> None:
        """Log parameters (as strings, cut to MLflow's length limit), in batches."""
        from mlflow.entities import Param

        items = [Param(k, str(v)[:MAX_PARAM_LENGTH]) for k, v in params.items()]
        for start in range(0, len(items), MAX_PARAMS_PER_CALL):
            self.client.log_batch(self.run_id, params=items[start : start + MAX_PARAMS_PER_CALL])

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log metric values (at ``step``, default 0)."""
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step or 0) for k, v in metrics.items()]
        if batch:
            self.client.log_batch(self.run_id, metrics=batch)

    def set_tags(self, tags: Mapping[str, object]) -> None:
        """Set run tags (values as strings)."""
        from mlflow.entities import RunTag

        if tags:
            self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_artifacts(self, folder: Path, artifact_path: str | None = None) -> None:
        """Upload every file of ``folder`` under ``artifact_path``."""
        self.client.log_artifacts(self.run_id, str(folder), artifact_path)

    def log_dataset(self, dataset: Any, context: str) -> None:
        """Record an ``mlflow.data`` dataset as an input of the run (``context``: its role)."""
        from mlflow.entities import DatasetInput, InputTag
        from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

        entity = DatasetInput(
            dataset._to_mlflow_entity(), [InputTag(MLFLOW_DATASET_CONTEXT, context)]
        )
        self.client.log_inputs(self.run_id, datasets=[entity])


def experiment_id(registry: Registry, name: str) -> str:
    """The id of experiment ``name``, created if it does not exist."""
    found = registry.client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    return str(registry.client.create_experiment(name))


@contextmanager
def start_run(registry: Registry, experiment: str, run_name: str | None = None) -> Iterator[Run]:
    """Open a run in ``experiment``; it ends FINISHED, or FAILED if the block raises.

    Args:
        registry: The tracking server.
        experiment: Experiment name (created if missing).
        run_name: Display name of the run.
    """
    exp_id = experiment_id(registry, experiment)
    created = registry.client.create_run(exp_id, run_name=run_name)
    run = Run(registry, created.info.run_id, exp_id)
    try:
        yield run
    except BaseException:
        registry.client.set_terminated(run.run_id, "FAILED")
        raise
    registry.client.set_terminated(run.run_id, "FINISHED")
