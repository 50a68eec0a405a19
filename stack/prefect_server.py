"""A local Prefect server and a process worker, each run through `stack.process.ServiceProcess`.

The server keeps its SQLite database and UI build under its own ``PREFECT_HOME``
(``<paths.services>/prefect``); the worker polls one process work pool and serves a ``/health``
endpoint on loopback so that it can be health-checked like every other service.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from uuid import UUID

from stack.process import ServiceError, ServiceProcess, http_ok, proc_stats


def prefect_executable() -> str:
    """The ``prefect`` console script of this interpreter's environment."""
    beside = Path(sys.executable).parent / "prefect"
    if beside.exists():
        return str(beside)
    found = shutil.which("prefect")
    if found is None:
        raise ServiceError("the `prefect` command was not found; install harmscan's dependencies")
    return found


def prefect_env(home: Path, api_url: str | None = None) -> dict[str, str]:
    """Environment for Prefect processes that keep their state under ``home``.

    Args:
        home: The ``PREFECT_HOME`` folder (database, UI build, profiles).
        api_url: The server's API URL, for clients (workers, flow runs); None for the server.

    Returns:
        ``PREFECT_*`` variables to add to the process environment.
    """
    env = {
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_COLORS": "false",
        # Profiles of the user's own PREFECT_HOME must not leak into ours.
        "PREFECT_PROFILES_PATH": str(home / "profiles.toml"),
    }
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


def api_url(host: str, port: int) -> str:
    """The API URL of a Prefect server listening on host:port."""
    return f"http://{host}:{port}/api"


def prefect_server_process(home: Path, host: str, port: int) -> ServiceProcess:
    """The ``prefect server start`` service, state and log in ``home``.

    Args:
        home: Its ``PREFECT_HOME``; the pid and log files go here too.
        host: Host to listen on (loopback).
        port: Port of the API and UI.
    """
    url = api_url(host, port)
    return ServiceProcess(
        name="prefect-server",
        command=[
            prefect_executable(),
            "server",
            "start",
            "--host",
            host,
            "--port",
            str(port),
            "--analytics-off",
        ],
        state_dir=home,
        host=host,
        port=port,
        healthy=lambda: http_ok(f"{url}/health"),
        # The UI's own API address: Prefect derives it from its default port (4200), or from a
        # PREFECT_API_URL in the operator's shell, not from --port.
        env={**prefect_env(home), "PREFECT_UI_API_URL": url},
    )


def prefect_worker_process(
    home: Path,
    server_api_url: str,
    pool: str,
    host: str,
    health_port: int,
    cwd: Path | None = None,
    extra_env: dict[str, str] | None = None,
    name: str = "prefect-worker",
    inherit_env: Callable[[Mapping[str, str]], Mapping[str, str]] = dict,
) -> ServiceProcess:
    """A ``prefect worker start --type process`` polling ``pool`` (created when missing).

    Args:
        home: Its ``PREFECT_HOME`` and where its pid and log files go.
        server_api_url: The API URL of the Prefect server.
        pool: The process work pool to poll.
        host: Host for the worker's ``/health`` endpoint.
        health_port: Port for that endpoint.
        cwd: Working directory of the worker (and so of the flow runs it starts).
        extra_env: More variables for the worker and its flow runs (e.g. ``HARMSCAN_*``).
        name: Service name (pid and log file names).
        inherit_env: What of this process's environment the worker inherits (all by default).
    """
    env = {
        **prefect_env(home, server_api_url),
        "PREFECT_WORKER_WEBSERVER_HOST": host,
        "PREFECT_WORKER_WEBSERVER_PORT": str(health_port),
        "PREFECT_WORKER_QUERY_SECONDS": "2",
        "PREFECT_WORKER_PREFETCH_SECONDS": "5",
        **(extra_env or {}),
    }
    return ServiceProcess(
        name=name,
        command=[
            prefect_executable(),
            "worker",
            "start",
            "--pool",
            pool,
            "--type",
            "process",
            "--name",
            f"{name}-{health_port}",
            "--with-healthcheck",
            "--install-policy",
            "never",
        ],
        state_dir=home,
        host=host,
        port=health_port,
        healthy=lambda: http_ok(f"http://{host}:{health_port}/health"),
        env=env,
        cwd=cwd,
        inherit_env=inherit_env,
    )


def stop_with_children(process: ServiceProcess, timeout: float = 30.0) -> bool:
    """Stop a process and then any of its descendants left behind (e.g. flow runs of a worker).

    Prefect's process worker may start flow runs in their own session, out of reach of the
    worker's process group; they are found through ``/proc`` before the worker stops.
    """
    pid = process.pid()
    children = descendants(pid) if pid is not None else []
    stopped = process.stop(timeout)
    leftover = [c for c in children if is_running(c)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for child in leftover:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, sig)
        deadline = time.monotonic() + timeout / 2
        while time.monotonic() < deadline and any(is_running(c) for c in leftover):
            time.sleep(0.2)
        leftover = [c for c in leftover if is_running(c)]
        if not leftover:
            break
    return stopped


def descendants(pid: int) -> list[int]:
    """Pids of every live descendant of ``pid`` (Linux ``/proc``)."""
    parents: dict[int, list[int]] = {}
    for child, fields in proc_stats():
        parents.setdefault(int(fields[1]), []).append(child)
    found: list[int] = []
    queue = [pid]
    while queue:
        for child in parents.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def is_running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie (exited, waiting to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def active_flow_runs(api_url: str, pool: str) -> list[str]:
    """Ids of the pending or running flow runs of work pool ``pool`` ([] if the API is down)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
        WorkPoolFilter,
        WorkPoolFilterName,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.settings import PREFECT_API_URL, temporary_settings

    active = [StateType.PENDING, StateType.RUNNING, StateType.CANCELLING]
    state_filter = FlowRunFilterState(type=FlowRunFilterStateType(any_=active))
    try:
        with (
            temporary_settings(updates={PREFECT_API_URL: api_url}),
            get_client(sync_client=True) as client,
        ):
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(state=state_filter),
                work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[pool])),
            )
    except Exception:  # the server is gone: nothing to mark
        return []
    return [str(run.id) for run in runs]


def mark_cancelled(api_url: str, run_ids: list[str]) -> None:
    """Mark flow runs Cancelled (after their processes were stopped), so the UI tells the truth."""
    if not run_ids:
        return
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.states import Cancelled

    with (
        temporary_settings(updates={PREFECT_API_URL: api_url}),
        get_client(sync_client=True) as client,
    ):
        for run_id in run_ids:
            state = client.read_flow_run(UUID(run_id)).state
            if state is None or not state.is_final():
                client.set_flow_run_state(
                    run_id, Cancelled(message="stopped by harmscan down"), force=True
                )


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent() -> None:
    """``preexec_fn`` of a child process: Linux sends it SIGTERM when its parent dies.

    A no-op where ``prctl`` is missing (not Linux).
    """
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def ephemeral_server_dies_with_parent() -> None:
    """Make Prefect's temporary server (started by a flow run without an API URL) die with us.

    Prefect stops that server at exit (``atexit``), which a ``kill -9`` or a crash skips; the
    server then runs on, orphaned. Its module gets a ``subprocess`` whose ``Popen`` starts the
    server with `die_with_parent`, so the kernel stops it whenever this process ends. Idempotent.
    """
    import subprocess
    import types

    from prefect.server.api import server

    if getattr(server.subprocess, "dies_with_parent", False):
        return

    class Popen(subprocess.Popen):  # type: ignore[type-arg]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("preexec_fn", die_with_parent)
            super().__init__(*args, **kwargs)

    patched = types.ModuleType("subprocess")
    patched.__dict__.update(vars(subprocess))
    patched.__dict__.update(Popen=Popen, dies_with_parent=True)
    server.subprocess = patched  # type: ignore[attr-defined]
