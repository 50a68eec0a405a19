"""The one-command local stack: Kafka, MLflow, Prefect server + worker, the Open Images mirror.

Everything listens on loopback, on the ports of ``stack.*``; state and logs live under
``paths.services`` (every log is reachable as ``<paths.services>/<service>.log``). Each member is
one or more `stack.process.ServiceProcess` processes, so ``harmscan up/down/status`` and the
test fixtures share one mechanism (the members are in `stack.members`). Flow runs that the worker
starts read the stack's settings from ``<paths.services>/settings.yaml``
(`stack.settings_file`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from conf.keys import SettingsError
from conf.loader import read_settings_yaml
from conf.settings import Settings
from stack.members import (
    Member,
    prefect_server_running,
    prefect_ui,
    review_ui,
    stack_members,
)
from stack.process import ServiceError, port_open
from stack.settings_file import (
    SETTINGS_FILE,
    settings_document,
    stack_settings,
    write_settings_file,
)

logger = logging.getLogger(__name__)

# Started after the servers they need, stopped before them.
AFTER_SERVERS = ("prefect-worker", "review")


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


class LocalStack:
    """The local services of one settings object (`stack_settings` of it)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = stack_settings(settings)
        self.services_dir = self.settings.paths.services

    @property
    def prefect_ui(self) -> str:
        """Address of the Prefect UI."""
        return prefect_ui(self.settings)

    @property
    def mlflow_ui(self) -> str:
        """Address of the MLflow UI."""
        return self.settings.mlflow.tracking_uri

    @property
    def review_ui(self) -> str:
        """Address of the reviewers' page."""
        return review_ui(self.settings)

    def members(self) -> list[Member]:
        """The services in start order (mirror only for ``openimages.source == mirror``)."""
        return stack_members(self.settings)

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
        changed = self.changed_settings(members)
        if changed:
            raise ServiceError(
                f"the local stack in {self.services_dir} already runs with other settings:\n  "
                + "\n  ".join(changed)
                + "\nuse the same settings, or stop it first with harmscan down"
            )

    def changed_settings(self, members: list[Member] | None = None) -> list[str]:
        """``stack.KEY: running A, asked B`` for each ``stack.*`` setting in which these settings
        differ from those the running stack was started with; empty when none runs (or its
        settings file cannot be read)."""
        members = self.members() if members is None else members
        if not any(p.pid() for member in members for p in member.processes):
            return []
        try:
            written = read_settings_yaml(self.services_dir / SETTINGS_FILE)
            running = dict(written["stack"])
        except (SettingsError, KeyError, TypeError, ValueError):
            return []
        wanted = settings_document(self.settings)["stack"]
        return [
            f"stack.{key}: running {running.get(key)}, asked {value}"
            for key, value in wanted.items()
            if running.get(key) != value
        ]

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
            futures = [pool.submit(start, m) for m in servers]
            failures = [error for f in futures if (error := f.exception()) is not None]
        if len(failures) == 1:
            raise failures[0]
        if failures:  # every server that failed is named, not only the first
            raise ServiceError("\n".join(str(f) for f in failures))
        for member in members:
            if member not in servers:
                start(member)
        return self.status()

    def running(self) -> bool:
        """Whether this stack's Prefect server (a process of ours) runs."""
        return prefect_server_running(self.settings)

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
