"""The members of the local stack: what to start, stop and probe for each service.

Each member is one or more `stack.process.ServiceProcess` processes on the ports of ``stack.*``,
with state and logs under ``paths.services``; `stack.local.LocalStack` starts and stops them.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from conf.settings import Settings
from stack.process import ServiceProcess
from stack.settings_file import flow_run_env, service_environ

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Member:
    """One service of the stack: what to start, stop and probe, and where users reach it."""

    name: str
    address: str
    processes: list[ServiceProcess]
    port_settings: list[tuple[str, int]]
    start: Callable[[float], None]
    stop: Callable[[float], bool]
    notes: dict[str, str] = field(default_factory=dict)


def stack_members(settings: Settings) -> list[Member]:
    """The services in start order (mirror only for ``openimages.source == mirror``)."""
    members = [kafka_member(settings), mlflow_member(settings)]
    if settings.openimages.source == "mirror":
        members.append(mirror_member(settings))
    members += [
        prefect_server_member(settings),
        prefect_worker_member(settings),
        review_member(settings),
    ]
    return members


def prefect_server_running(settings: Settings) -> bool:
    """Whether this stack's Prefect server (a process of ours) runs."""
    return any(p.pid() is not None for p in prefect_server_member(settings).processes)


def prefect_ui(settings: Settings) -> str:
    """Address of the Prefect UI."""
    return f"http://{settings.stack.host}:{settings.stack.prefect_port}"


def review_ui(settings: Settings) -> str:
    """Address of the reviewers' page."""
    return f"http://{settings.stack.host}:{settings.review.port}"


def kafka_member(settings: Settings) -> Member:
    """Kafka: one KRaft broker."""
    from stack.kafka import broker_from_settings

    broker = broker_from_settings(settings)
    st = settings.stack
    return Member(
        "kafka",
        broker.bootstrap,
        [broker.process],
        [
            ("stack.kafka_port", st.kafka_port),
            ("stack.kafka_controller_port", st.kafka_controller_port),
        ],
        broker.start,
        broker.stop,
    )


def mlflow_member(settings: Settings) -> Member:
    """The MLflow tracking server."""
    from stack.mlflow_server import mlflow_server

    st = settings.stack
    process = mlflow_server(settings.paths.services / "mlflow", host=st.host, port=st.mlflow_port)
    return Member(
        "mlflow",
        settings.mlflow.tracking_uri,
        [process],
        [("stack.mlflow_port", st.mlflow_port)],
        process.start,
        process.stop,
    )


def mirror_member(settings: Settings) -> Member:
    """The Open Images mirror: metadata over HTTP and the images in a local S3 server."""
    from stack.mirror import MIRROR_DIR, MirrorServers
    from stack.mirror_s3 import seed_bucket

    st, oi = settings.stack, settings.openimages
    mirror = MirrorServers(st.host, st.s3_port, st.metadata_port, settings.paths.services)
    processes = mirror.services()

    def start(timeout: float) -> None:
        mirror.start(timeout)
        # moto keeps objects in memory: (re)seed on every start; existing keys are rewritten.
        seed_bucket(mirror.s3_endpoint, oi.bucket, MIRROR_DIR / "images", oi.region)

    return Member(
        "mirror",
        f"{mirror.metadata_url} (metadata), {mirror.s3_endpoint} (S3)",
        processes,
        [("stack.metadata_port", st.metadata_port), ("stack.s3_port", st.s3_port)],
        start,
        lambda timeout: _stop_all(reversed(processes), timeout),
    )


def prefect_server_member(settings: Settings) -> Member:
    """The Prefect server (API and UI)."""
    from stack.prefect_server import prefect_server_process

    st = settings.stack
    process = prefect_server_process(settings.paths.services / "prefect", st.host, st.prefect_port)
    return Member(
        "prefect-server",
        prefect_ui(settings),
        [process],
        [("stack.prefect_port", st.prefect_port)],
        process.start,
        process.stop,
    )


def prefect_worker_member(settings: Settings) -> Member:
    """The process worker of ``prefect.work_pool``, started in the repository root."""
    from stack.prefect_server import prefect_worker_process

    st, pool = settings.stack, settings.prefect.work_pool
    process = prefect_worker_process(
        settings.paths.services / "prefect",
        str(settings.prefect.api_url),
        pool,
        st.host,
        st.prefect_worker_port,
        cwd=REPO_ROOT,
        extra_env=flow_run_env(settings, write=False),
        inherit_env=service_environ,
    )
    return Member(
        "prefect-worker",
        f"work pool {pool} (health http://{st.host}:{st.prefect_worker_port}/health)",
        [process],
        [("stack.prefect_worker_port", st.prefect_worker_port)],
        process.start,
        lambda timeout: _stop_worker(settings, process, timeout),
    )


def review_member(settings: Settings) -> Member:
    """The reviewers' page (``harmscan review``) with the stack's settings file."""
    from stack.process import http_ok

    host, port = settings.stack.host, settings.review.port
    process = ServiceProcess(
        name="review",
        command=[str(Path(sys.executable).with_name("harmscan")), "review", "--host", host],
        state_dir=settings.paths.services / "review",
        host=host,
        port=port,
        healthy=lambda: http_ok(f"http://{host}:{port}/health"),
        env=flow_run_env(settings, write=False),
        cwd=REPO_ROOT,
        inherit_env=service_environ,
    )
    return Member(
        "review",
        f"{review_ui(settings)} (login token in {settings.paths.services / 'review' / 'token'})",
        [process],
        [("stack.review_port", port)],
        process.start,
        process.stop,
    )


def _stop_worker(settings: Settings, process: ServiceProcess, timeout: float) -> bool:
    """Stop the worker with the flow runs it started; mark those runs Cancelled."""
    from stack.prefect_server import active_flow_runs, mark_cancelled, stop_with_children

    if process.pid() is None:
        return False
    api, pool = str(settings.prefect.api_url), settings.prefect.work_pool
    runs = (
        active_flow_runs(api, pool)
        if any(p.pid() is not None for p in prefect_server_member(settings).processes)
        else []
    )
    # Cancelled first: a serve run stopped on purpose must not end Crashed, which the
    # deployment's restart automation would answer with a new run.
    with contextlib.suppress(Exception):
        mark_cancelled(api, runs)
    stopped = stop_with_children(process, timeout)
    with contextlib.suppress(Exception):  # the server may be gone; processes are stopped
        mark_cancelled(api, runs)
    return stopped


def _stop_all(processes: Iterable[ServiceProcess], timeout: float) -> bool:
    """Stop each process (none skipped); True if any of them ran."""
    ran = [process.stop(timeout) for process in processes]
    return any(ran)
