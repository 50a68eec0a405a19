"""``harmscan down`` is bounded: a service whose processes ignore SIGTERM (as the MLflow server's
workers may) is killed with its whole process group after the timeout, and the kill is reported."""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app as cli_app
from conf.settings import Settings
from stack.local import LocalStack, Stopped
from stack.members import Member
from stack.process import ServiceProcess, free_port, group_members

# A server whose worker child ignores SIGTERM; the leader too unless told "exit".
LEADER = """
import signal, socket, subprocess, sys, time
if sys.argv[2] == "ignore":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
worker = subprocess.Popen(
    [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
     "print('ready', flush=True); time.sleep(600)"],
    stdout=subprocess.PIPE, text=True,
)
worker.stdout.readline()
server = socket.create_server(("127.0.0.1", int(sys.argv[1])))
time.sleep(600)
"""


def _service(tmp_path: Path, leader: str) -> ServiceProcess:
    port = free_port()
    return ServiceProcess(
        name="stubborn",
        command=[sys.executable, "-c", LEADER, str(port), leader],
        state_dir=tmp_path / "services",
        host="127.0.0.1",
        port=port,
    )


@pytest.mark.parametrize("leader", ["ignore", "exit"])
def test_stop_kills_a_group_that_ignores_sigterm_after_the_timeout(
    tmp_path: Path, leader: str
) -> None:
    service = _service(tmp_path, leader)
    service.start(timeout=30)
    pid = service.pid()
    assert pid is not None
    group = group_members(pid)
    assert len(group) == 2  # the leader and its worker

    started = time.monotonic()
    assert service.stop(timeout=1.0)
    assert time.monotonic() - started < 8
    assert group_members(pid) == []
    assert service.pid() is None
    # The worker always had to be killed; the leader only when it ignored SIGTERM too.
    expected = group if leader == "ignore" else [p for p in group if p != pid]
    assert service.killed == expected


def test_stop_of_a_polite_process_kills_nothing(tmp_path: Path) -> None:
    port = free_port()
    service = ServiceProcess(
        name="polite",
        command=[sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        state_dir=tmp_path / "services",
        host="127.0.0.1",
        port=port,
    )
    service.start(timeout=30)
    assert service.stop(timeout=5.0)
    assert service.killed == []
    assert service.stop() is False


@pytest.fixture
def stubborn_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServiceProcess]:
    """A local stack whose only member is a started service that ignores SIGTERM."""
    service = _service(tmp_path, "ignore")
    service.start(timeout=30)
    member = Member("mlflow", "http://x", [service], [], service.start, service.stop)
    monkeypatch.setattr(LocalStack, "members", lambda self: [member])
    yield service
    service.kill()


def test_down_reports_what_it_had_to_kill(
    make_settings: Callable[..., Settings], stubborn_stack: ServiceProcess
) -> None:
    group = group_members(stubborn_stack.pid() or 0)
    stack = LocalStack(make_settings())

    assert stack.down(timeout=1.0) == [Stopped("mlflow", group)]
    assert stack.down(timeout=1.0) == []


def test_harmscan_down_names_the_killed_pids(
    tmp_path: Path, stubborn_stack: ServiceProcess
) -> None:
    group = group_members(stubborn_stack.pid() or 0)
    args = ["--profile", "ci", "--set", f"paths.root={tmp_path / 'hs'}", "down", "--timeout", "1"]
    cli_app._register_areas()
    result = CliRunner().invoke(cli_app.app, args)
    assert result.exit_code == 0, result.output
    assert "stopped: mlflow" in result.output
    pids = ", ".join(map(str, group))
    assert f"killed mlflow (pids {pids}): it ignored SIGTERM for 1s" in result.output


def test_free_ports_are_distinct_and_bindable() -> None:
    from stack.process import free_ports

    ports = free_ports(8)
    assert len(set(ports)) == 8
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))  # free again once free_ports returned


def test_a_service_whose_leader_was_killed_alone_is_still_seen_and_stopped(
    tmp_path: Path,
) -> None:
    """``kill -9`` of the pid in the pid file leaves the workers serving (MLflow's do): they
    must not pass for another program on the port, nor outlive ``down``."""
    import os
    import signal

    service = _service(tmp_path, "exit")
    service.start(timeout=30)
    pid = service.pid()
    assert pid is not None
    [worker] = [p for p in group_members(pid) if p != pid]
    os.kill(pid, signal.SIGKILL)  # the leader alone
    os.waitpid(pid, 0)  # reaped, as init reaps it once the `up` that started it has exited
    assert group_members(pid) == [worker]
    assert service.pid() == pid  # still this service: `up` does not take it for another program
    assert service.stop(timeout=1.0)
    assert group_members(pid) == []
    assert service.pid() is None
    assert not service.pid_file.exists()


def test_up_names_every_server_that_did_not_become_healthy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The servers start together: `up` said only the first failure, and the others were
    stopped without a word."""
    from conf.loader import load_settings
    from stack.process import ServiceError

    def member(name: str, healthy: bool) -> Member:
        def start(timeout: float) -> None:
            if not healthy:
                raise ServiceError(f"{name} not healthy after {timeout:.0f}s; see {name}.log")

        return Member(name, "-", [], [], start, lambda _timeout: False)

    members = [member("kafka", False), member("mlflow", True), member("prefect-server", False)]
    stack = LocalStack(load_settings("ci", [f"paths.root={tmp_path}"], env={}))
    monkeypatch.setattr(stack, "members", lambda: members)
    with pytest.raises(ServiceError) as caught:
        stack.up(timeout=5)
    assert "kafka not healthy after 5s" in str(caught.value)
    assert "prefect-server not healthy after 5s" in str(caught.value)
    assert "mlflow" not in str(caught.value)
