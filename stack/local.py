"""The one-command local stack: Kafka, MLflow, Prefect server + worker, the Open Images mirror.

Everything listens on loopback, on the ports of ``stack.*``; state and logs live under
``paths.services`` (every log is reachable as ``<paths.services>/<service>.log``). Each member is
one or more `stack.process.ServiceProcess` processes, so ``harmscan up/down/status`` and the
test fixtures share one mechanism. Flow runs that the worker starts read the stack's settings
from ``<paths.services>/settings.yaml`` (`write_settings_file`), whose service addresses are the
stack's own (`stack_settings`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, SecretStr

from conf.loader import update
from conf.settings import Settings
from stack.process import ServiceError, ServiceProcess, port_open

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
SETTINGS_FILE = "settings.yaml"
# Started after the servers they need, stopped before them.
AFTER_SERVERS = ("prefect-worker", "review")


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


@dataclass(frozen=True)
class Stopped:
    """One service that ``down`` stopped, with the pids it had to SIGKILL (they ignored SIGTERM)."""

    name: str
    killed: list[int]


@dataclass(frozen=True)
class MemberStatus:
    """What ``harmscan status`` shows for one service."""

    name: str
    pids: list[int]
    healthy: bool
    address: str
    logs: list[str]

    @property
    def running(self) -> bool:
        """Whether one of our processes of this service is alive."""
        return bool(self.pids)


def stack_settings(settings: Settings) -> Settings:
    """``settings`` with every service address pointing at the local stack's ports.

    The stack's ports (``stack.*``) are the truth for a local stack: MLflow, Kafka and Prefect
    clients (and, for ``openimages.source == mirror``, the ETL) reach the stack's services, and
    ``paths.root`` is made absolute so flow runs started elsewhere find the same files.
    """
    st = settings.stack
    changes: dict[str, Any] = {
        "paths.root": settings.paths.root.resolve(),
        "mlflow.tracking_uri": f"http://{st.host}:{st.mlflow_port}",
        "kafka.bootstrap_servers": f"{st.host}:{st.kafka_port}",
        "prefect.api_url": f"http://{st.host}:{st.prefect_port}/api",
        "review.host": st.host,
        "review.port": st.review_port,
    }
    if settings.openimages.source == "mirror":
        changes["openimages.s3_endpoint_url"] = f"http://{st.host}:{st.s3_port}"
        changes["openimages.metadata_base_url"] = f"http://{st.host}:{st.metadata_port}"
    return update(settings, changes)


def settings_document(settings: Settings) -> dict[str, Any]:
    """The resolved settings as plain YAML-able data, secrets left out (they come from env)."""
    return _plain(settings)


def write_settings_file(settings: Settings, path: Path | None = None) -> Path:
    """Write the resolved settings where flow runs read them (``HARMSCAN_CONFIG``).

    Args:
        settings: The settings to hand to flow runs.
        path: Where to write; default ``<paths.services>/settings.yaml``.

    Returns:
        The absolute path written.
    """
    path = (path or settings.paths.services / SETTINGS_FILE).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "# Written by harmscan (stack/local.py): the settings flow runs of this stack use.\n"
    text = yaml.safe_dump(settings_document(settings), sort_keys=False)
    path.write_text(header + text)
    return path


def flow_run_env(settings: Settings, write: bool = True) -> dict[str, str]:
    """Environment for flow runs: the profile and the settings file (written unless told not).

    Flow runs resolve settings like the CLI: profile, then this file, then their own
    ``HARMSCAN_*`` variables; so a run reproduces the settings resolved here.
    """
    path = (
        write_settings_file(settings)
        if write
        else (settings.paths.services / SETTINGS_FILE).resolve()
    )
    return {
        "HARMSCAN_PROFILE": settings.profile,
        "HARMSCAN_CONFIG": str(path),
        "PYTHONUNBUFFERED": "1",
        # Also for MLflow calls that do not take the URI explicitly (models:/ downloads).
        "MLFLOW_TRACKING_URI": settings.mlflow.tracking_uri,
        # Library loggers (epochs, consumer counts) show in the flow run's logs in the UI.
        "PREFECT_LOGGING_EXTRA_LOGGERS": "harmscan,tasks,serving,stack",
    }


class LocalStack:
    """The local services of one settings object (`stack_settings` of it)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = stack_settings(settings)
        self.services_dir = self.settings.paths.services

    @property
    def prefect_ui(self) -> str:
        """Address of the Prefect UI."""
        st = self.settings.stack
        return f"http://{st.host}:{st.prefect_port}"

    @property
    def mlflow_ui(self) -> str:
        """Address of the MLflow UI."""
        return self.settings.mlflow.tracking_uri

    @property
    def review_ui(self) -> str:
        """Address of the reviewers' page."""
        return f"http://{self.settings.stack.host}:{self.settings.review.port}"

    def members(self) -> list[Member]:
        """The services in start order (mirror only for ``openimages.source == mirror``)."""
        members = [self._kafka(), self._mlflow()]
        if self.settings.openimages.source == "mirror":
            members.append(self._mirror())
        members += [self._prefect_server(), self._prefect_worker(), self._review()]
        return members

    def check_ports(self, members: list[Member] | None = None) -> None:
        """Fail before starting anything if a port is held by a program that is not ours.

        Raises:
            ServiceError: Naming each taken port and the setting that chooses it.
        """
        host = self.settings.stack.host
        taken = [
            f"{member.name}: {host}:{port} (setting {setting})"
            for member in members or self.members()
            if not any(p.pid() for p in member.processes)
            for setting, port in member.port_settings
            if port_open(host, port)
        ]
        if taken:
            raise ServiceError(
                "ports already taken by other programs:\n  "
                + "\n  ".join(taken)
                + "\nstop those programs or choose free ports, e.g. "
                "harmscan --set stack.prefect_port=4300 up"
            )

    def check_same_stack(self, members: list[Member]) -> None:
        """Fail if services of this stack already run with other ``stack.*`` settings.

        ``up`` would otherwise rewrite the settings file that the running worker's flow runs
        read, pointing them at ports where nothing of this stack listens.

        Raises:
            ServiceError: Naming each changed setting and how to stop the running stack.
        """
        if not any(p.pid() for member in members for p in member.processes):
            return
        try:
            written = yaml.safe_load((self.services_dir / SETTINGS_FILE).read_text())
            running = dict(written["stack"])
        except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError):
            return
        wanted = settings_document(self.settings)["stack"]
        changed = [
            f"stack.{key}: running {running.get(key)}, asked {value}"
            for key, value in wanted.items()
            if running.get(key) != value
        ]
        if changed:
            raise ServiceError(
                f"the local stack in {self.services_dir} already runs with other settings:\n  "
                + "\n  ".join(changed)
                + "\nuse the same settings, or stop it first with harmscan down"
            )

    def up(
        self, timeout: float = 180.0, on_ready: Callable[[MemberStatus], None] | None = None
    ) -> list[MemberStatus]:
        """Start every service not running yet and wait until each is healthy.

        Raises:
            ServiceError: A port is taken or a service did not become healthy (log named).
        """
        members = self.members()
        self.check_same_stack(members)
        self.check_ports(members)
        self.services_dir.mkdir(parents=True, exist_ok=True)
        write_settings_file(self.settings)

        def start(member: Member) -> None:
            started = time.monotonic()
            member.start(timeout)
            self._link_logs(member)
            logger.info("%s healthy in %.1fs", member.name, time.monotonic() - started)
            if on_ready is not None:
                on_ready(self._status(member))

        # The servers are independent: start them together; the worker needs the Prefect API,
        # the review page needs Kafka.
        servers = [m for m in members if m.name not in AFTER_SERVERS]
        with ThreadPoolExecutor(max_workers=len(servers)) as pool:
            for future in [pool.submit(start, m) for m in servers]:
                future.result()
        for member in members:
            if member not in servers:
                start(member)
        return self.status()

    def running(self) -> bool:
        """Whether this stack's Prefect server (a process of ours) runs."""
        return any(p.pid() is not None for p in self._prefect_server().processes)

    def down(self, timeout: float = 10.0) -> list[Stopped]:
        """Stop every service of ours: the worker and its flow runs first, then the servers
        together. Each process group gets ``timeout`` s after SIGTERM, then SIGKILL.

        Returns:
            The services that ran, each with the pids that had to be killed.
        """
        members = self.members()
        first = [m for m in members if m.name in AFTER_SERVERS]
        servers = [m for m in members if m.name not in AFTER_SERVERS]
        ran: list[bool] = []
        for group in (first, servers):
            with ThreadPoolExecutor(max_workers=max(1, len(group))) as pool:
                ran += pool.map(lambda m: m.stop(timeout), group)
        return [
            Stopped(m.name, [pid for p in m.processes for pid in p.killed])
            for m, was in zip(first + servers, ran, strict=True)
            if was
        ]

    def status(self) -> list[MemberStatus]:
        """Pids, health, address and log files of every service."""
        return [self._status(member) for member in self.members()]

    def _status(self, member: Member) -> MemberStatus:
        pids = [pid for p in member.processes if (pid := p.pid()) is not None]
        healthy = bool(pids) and all(p.is_healthy() for p in member.processes)
        logs = [str(self.services_dir / f"{p.name}.log") for p in member.processes]
        return MemberStatus(member.name, pids, healthy, member.address, logs)

    def _link_logs(self, member: Member) -> None:
        """Make every log reachable as ``<paths.services>/<name>.log``."""
        for process in member.processes:
            link = self.services_dir / f"{process.name}.log"
            if process.log_file.resolve() == link.resolve():
                continue
            with contextlib.suppress(FileExistsError):
                link.unlink(missing_ok=True)
                link.symlink_to(process.log_file.resolve())

    def _kafka(self) -> Member:
        from stack.kafka import broker_from_settings

        broker = broker_from_settings(self.settings)
        st = self.settings.stack
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

    def _mlflow(self) -> Member:
        from stack.mlflow_server import mlflow_server

        st = self.settings.stack
        process = mlflow_server(self.services_dir / "mlflow", host=st.host, port=st.mlflow_port)
        return Member(
            "mlflow",
            self.mlflow_ui,
            [process],
            [("stack.mlflow_port", st.mlflow_port)],
            process.start,
            process.stop,
        )

    def _mirror(self) -> Member:
        from stack.mirror import MIRROR_DIR, MirrorServers, seed_bucket

        st, oi = self.settings.stack, self.settings.openimages
        mirror = MirrorServers(st.host, st.s3_port, st.metadata_port, self.services_dir)
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

    def _prefect_server(self) -> Member:
        from stack.prefect_server import prefect_server_process

        st = self.settings.stack
        process = prefect_server_process(self.services_dir / "prefect", st.host, st.prefect_port)
        return Member(
            "prefect-server",
            self.prefect_ui,
            [process],
            [("stack.prefect_port", st.prefect_port)],
            process.start,
            process.stop,
        )

    def _prefect_worker(self) -> Member:
        from stack.prefect_server import prefect_worker_process

        st, pool = self.settings.stack, self.settings.prefect.work_pool
        process = prefect_worker_process(
            self.services_dir / "prefect",
            str(self.settings.prefect.api_url),
            pool,
            st.host,
            st.prefect_worker_port,
            cwd=REPO_ROOT,
            extra_env=flow_run_env(self.settings, write=False),
        )
        return Member(
            "prefect-worker",
            f"work pool {pool} (health http://{st.host}:{st.prefect_worker_port}/health)",
            [process],
            [("stack.prefect_worker_port", st.prefect_worker_port)],
            process.start,
            lambda timeout: self._stop_worker(process, timeout),
        )

    def _review(self) -> Member:
        """The reviewers' page (``harmscan review``) with the stack's settings file."""
        import sys

        from stack.process import http_ok

        host, port = self.settings.stack.host, self.settings.review.port
        process = ServiceProcess(
            name="review",
            command=[str(Path(sys.executable).with_name("harmscan")), "review", "--host", host],
            state_dir=self.services_dir / "review",
            host=host,
            port=port,
            healthy=lambda: http_ok(f"http://{host}:{port}/health"),
            env=flow_run_env(self.settings, write=False),
            cwd=REPO_ROOT,
        )
        return Member(
            "review",
            f"{self.review_ui} (login token in {self.services_dir / 'review' / 'token'})",
            [process],
            [("stack.review_port", port)],
            process.start,
            process.stop,
        )

    def _stop_worker(self, process: ServiceProcess, timeout: float) -> bool:
        """Stop the worker with the flow runs it started; mark those runs Cancelled."""
        from stack.prefect_server import active_flow_runs, mark_cancelled, stop_with_children

        if process.pid() is None:
            return False
        api, pool = str(self.settings.prefect.api_url), self.settings.prefect.work_pool
        runs = active_flow_runs(api, pool) if self.running() else []
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


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return {
            name: _plain(getattr(value, name))
            for name in type(value).model_fields
            if not isinstance(getattr(value, name), SecretStr)
        }
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value
