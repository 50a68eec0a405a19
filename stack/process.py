"""Start, watch and stop one local service process: pid file, log file, health check, clean stop.

Every local service (Kafka, MLflow, Prefect server and worker, the mirror servers) runs through
`ServiceProcess`, so `harmscan up/down/status` and the test fixtures share one mechanism.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)


class ServiceError(RuntimeError):
    """A local service could not be started, or did not become healthy."""


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on host:port."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on host right now (for tests)."""
    return free_ports(1, host)[0]


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct TCP ports free on host right now (for tests and benches).

    All are bound at once before any is released: ports taken one ``free_port`` call after
    another may repeat, and a broker given the same port twice refuses to start.
    """
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind((host, 0))
        return [int(sock.getsockname()[1]) for sock in socks]


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """Whether a GET of url answers with a 2xx status."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (loopback URL)
            return 200 <= int(response.status) < 300
    except OSError:
        return False


@dataclass
class ServiceProcess:
    """One background service with its pid and log files under ``state_dir``.

    Attributes:
        name: Short name, used for the pid and log file names.
        command: The argv to start it.
        state_dir: Folder for ``<name>.pid`` and ``<name>.log``.
        host: Host it listens on.
        port: Port it listens on; checked free before start.
        healthy: Extra readiness probe beyond the open port (e.g. an HTTP health URL).
        env: Extra environment variables.
        cwd: Working directory of the process.
        inherit_env: What of this process's environment the service inherits (all of it by
            default), before ``env``.
    """

    name: str
    command: Sequence[str]
    state_dir: Path
    host: str
    port: int
    healthy: Callable[[], bool] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    inherit_env: Callable[[Mapping[str, str]], Mapping[str, str]] = dict
    killed: list[int] = field(default_factory=list, init=False, repr=False, compare=False)

    @property
    def pid_file(self) -> Path:
        """Where the pid of the running process is kept."""
        return self.state_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        """Where the process's stdout and stderr go."""
        return self.state_dir / f"{self.name}.log"

    def pid(self) -> int | None:
        """The pid of our running process, or None (a stale pid file is removed).

        A leader killed on its own (``kill -9`` of the pid in the file) may leave its children
        running and serving, as MLflow's uvicorn and huey workers do: while any member of its
        process group lives, the service still runs under that pid (the process group id, which
        Linux never hands out again while the group exists), so ``down`` stops them and ``up``
        and ``status`` see them as this service, not another program on its port.
        """
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            if group_members(pid):
                return pid
            self.pid_file.unlink(missing_ok=True)
            return None
        except PermissionError:
            pass
        return pid

    def is_healthy(self) -> bool:
        """Whether the port answers and the extra probe (if any) passes."""
        if not port_open(self.host, self.port):
            return False
        return self.healthy() if self.healthy else True

    def start(self, timeout: float = 90.0) -> None:
        """Start the process unless ours already runs, then wait until it is healthy.

        Raises:
            ServiceError: The port is taken by another program, the process died, or it did not
                become healthy in time; the message points at the log file.
        """
        if self.pid() is not None:
            self.wait_healthy(timeout)
            return
        if port_open(self.host, self.port):
            raise ServiceError(
                f"{self.name}: port {self.host}:{self.port} is already taken by another program; "
                f"stop it or choose another port (stack.* settings)"
            )
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(
                list(self.command),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.cwd,
                env={**self.inherit_env(os.environ), **self.env},
                start_new_session=True,
            )
        self.pid_file.write_text(str(process.pid))
        logger.info("%s: started pid %s, log %s", self.name, process.pid, self.log_file)
        try:
            self.wait_healthy(timeout, process)
        except BaseException:
            self.stop()  # never leave behind a process that did not become healthy in time
            raise

    def wait_healthy(self, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
        """Block until healthy, or raise `ServiceError` naming the log file."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise ServiceError(
                    f"{self.name} exited with code {process.returncode}; see {self.log_file}:\n"
                    + self.tail()
                )
            if self.is_healthy():
                return
            time.sleep(0.25)
        raise ServiceError(f"{self.name} not healthy after {timeout:.0f}s; see {self.log_file}")

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the whole process group: SIGTERM, then SIGKILL what is left after ``timeout``.

        The pids that ignored SIGTERM and had to be killed are kept in ``killed``.

        Returns:
            True if the process ran.
        """
        pid = self.pid()
        if pid is None:
            self.killed = []
            return False
        self.killed = stop_group(pid, timeout)
        if self.killed:
            logger.warning(
                "%s: pids %s ignored SIGTERM for %.0fs; killed them",
                self.name,
                ", ".join(map(str, self.killed)),
                timeout,
            )
        self.pid_file.unlink(missing_ok=True)
        return True

    def kill(self) -> bool:
        """``kill -9`` the whole process group at once (a crash, for tests). True if it ran."""
        pid = self.pid()
        if pid is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        while _alive(pid):
            time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)
        return True

    def tail(self, lines: int = 30) -> str:
        """The last lines of the log file."""
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def stop_group(pgid: int, timeout: float) -> list[int]:
    """SIGTERM the process group ``pgid``, wait up to ``timeout`` s for all of it, then SIGKILL.

    Waits for every member of the group, not only its leader: server workers (gunicorn, uvicorn)
    may outlive a leader that exits at once, or ignore SIGTERM while it waits for them.

    Returns:
        The pids still alive after ``timeout`` that were killed with SIGKILL.
    """
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _group_alive(pgid):
        time.sleep(0.1)
    killed = group_members(pgid)
    if not killed:
        return []
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    # SIGKILL cannot be ignored; this bound is only for a process stuck in the kernel (D state).
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline and _group_alive(pgid):
        time.sleep(0.05)
    return killed


def group_members(pgid: int) -> list[int]:
    """Pids of the live (not zombie) processes of process group ``pgid`` (Linux ``/proc``)."""
    return sorted(
        pid for pid, fields in proc_stats() if int(fields[2]) == pgid and fields[0] != "Z"
    )


def proc_stats() -> Iterator[tuple[int, list[str]]]:
    """Each process's pid and the fields of its ``/proc/<pid>/stat`` after the command name.

    ``fields[0]`` is the state (``Z``: zombie), ``fields[1]`` the parent pid, ``fields[2]`` the
    process group. Processes that end while being read are left out.
    """
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        yield int(entry.name), fields


def _group_alive(pgid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pgid, os.WNOHANG)  # reap the leader if it is our child (tests, fixtures)
    return bool(group_members(pgid))


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
