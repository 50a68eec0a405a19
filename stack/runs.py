"""Runs of the registered deployments: start one, follow its logs and states, list active ones.

Used by ``harmscan demo`` and the tests; the deployments themselves are registered by
`stack.deploy`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from conf.settings import Settings
from stack.deploy import DeployError, prefect_api

logger = logging.getLogger(__name__)

TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def run_and_wait(
    settings: Settings, name: str, timeout: float, emit: Callable[[str], None] = logger.info
) -> str:
    """Start a run of deployment ``name``, report its state changes, and wait for the end; the
    id of the run that completed.

    A deployment with a concurrency limit cancels a new run while another one runs (``retrain``:
    a nightly run the stack missed while it was down starts as soon as the worker is back). Then
    the other run is waited for instead, and its id returned: its result is what was asked for.

    Raises:
        DeployError: The run did not complete, or not within ``timeout``.
    """
    from prefect.client.orchestration import get_client

    run_id = start_deployment(settings, name)
    emit(f"      run {run_id} ({_ui(settings, run_id)})")
    deadline, begun = time.monotonic() + timeout, time.monotonic()
    logs = _LogFollower()
    with prefect_api(settings.prefect.api_url), get_client(sync_client=True) as client:
        last = _follow(client, run_id, name, deadline, begun, logs, emit)
        others = (
            [r for r in active_runs(settings, name) if r != run_id] if last == "Cancelled" else []
        )
        if others:
            run_id = others[0]
            emit(
                f"      {name}: another run of it was already running ({_ui(settings, run_id)}; "
                "a scheduled one the stack missed while down starts when the worker is back), "
                "so this one was cancelled: waiting for that run instead"
            )
            last = _follow(client, run_id, name, deadline, begun, logs, emit)
    if last != "Completed":
        raise DeployError(
            f"{name} run ended as {last or 'unknown'} (timeout {timeout:.0f}s); see "
            f"{_ui(settings, run_id)} and {settings.paths.services}/prefect-worker.log"
        )
    return run_id


def _ui(settings: Settings, run_id: str) -> str:
    return f"{settings.prefect.api_url.removesuffix('/api')}/runs/flow-run/{run_id}"  # type: ignore[union-attr]


def _follow(
    client: Any,
    run_id: str,
    name: str,
    deadline: float,
    begun: float,
    logs: _LogFollower,
    emit: Callable[[str], None],
) -> str:
    """Report ``run_id``'s new log lines and state changes until it ends or ``deadline``; the
    name of its last state seen."""
    last = ""
    while time.monotonic() < deadline:
        for line in logs.new_lines(client):
            emit(f"        {line}")
        state = client.read_flow_run(UUID(run_id)).state
        kind = state.type.value if state else "SCHEDULED"
        if (state.name if state else kind) != last:
            last = state.name if state else kind
            emit(f"      {name}: {last} after {time.monotonic() - begun:.0f}s")
        if kind in TERMINAL:
            break
        time.sleep(3)
    return last


class _LogFollower:
    """Follows the server's run logs (the run and its subflows) so long runs show progress."""

    def __init__(self) -> None:
        self.since = datetime.now(UTC)
        self.seen: set[UUID] = set()

    def new_lines(self, client: Any) -> list[str]:
        """Log lines at INFO or above written since the last call, oldest first."""
        from prefect.client.schemas.filters import LogFilter, LogFilterLevel, LogFilterTimestamp

        log_filter = LogFilter(
            level=LogFilterLevel(ge_=logging.INFO),
            timestamp=LogFilterTimestamp(after_=self.since),
        )
        lines = []
        for log in client.read_logs(log_filter=log_filter, limit=200):
            if log.id in self.seen:
                continue
            self.seen.add(log.id)
            self.since = max(self.since, log.timestamp)
            lines.append(f"{log.timestamp:%H:%M:%S} {log.name}: {log.message.splitlines()[0]}")
        return lines


def start_deployment(
    settings: Settings, name: str, parameters: dict[str, Any] | None = None
) -> str:
    """Create a run of deployment ``name`` for the worker to pick up; its flow run id."""
    from prefect.deployments import run_deployment

    with prefect_api(settings.prefect.api_url):
        flow_run = run_deployment(name, parameters=parameters or {}, timeout=0)
    return str(flow_run.id)


def active_runs(settings: Settings, name: str) -> list[str]:
    """Ids of the pending or running flow runs of deployment ``name``."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    active = [StateType.PENDING, StateType.RUNNING]
    with prefect_api(settings.prefect.api_url), get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(name)
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=active))
            ),
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])),
        )
    return [str(run.id) for run in runs]
