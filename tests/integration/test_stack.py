"""The local stack for real: ``harmscan up`` starts every service healthy on loopback, ``status``
reports them, ``down`` leaves no process and no open port behind; a taken port fails early."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conf.loader import load_settings
from conf.settings import Settings
from stack.local import LocalStack
from stack.members import prefect_server_member
from stack.prefect_server import descendants
from stack.process import ServiceError, free_ports, port_open
from stack.settings_file import stack_settings, write_settings_file

pytestmark = [pytest.mark.slow, pytest.mark.kafka]

PORT_KEYS = (
    "kafka_port",
    "kafka_controller_port",
    "mlflow_port",
    "prefect_port",
    "prefect_worker_port",
    "s3_port",
    "review_port",
    "metadata_port",
)


def stack_overrides(root: Path) -> list[str]:
    ports = free_ports(len(PORT_KEYS))
    return [
        f"paths.root={root}",
        *(f"stack.{k}={p}" for k, p in zip(PORT_KEYS, ports, strict=True)),
    ]


def harmscan(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", "from cli.app import main; main()", *args]
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)


def set_args(overrides: list[str]) -> list[str]:
    return [arg for item in overrides for arg in ("--set", item)]


@pytest.fixture
def stack_args(tmp_path: Path) -> Iterator[list[str]]:
    overrides = stack_overrides(tmp_path / "hs")
    yield overrides
    # Whatever happened in the test, leave nothing running.
    LocalStack(load_settings("ci", overrides, env={})).down()


def test_settings_file_round_trips(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    settings = stack_settings(make_settings("train.epochs=3", "prefect.timezone=Europe/Berlin"))
    path = write_settings_file(settings, tmp_path / "settings.yaml")
    again = load_settings("ci", config_file=path, env={})
    assert again == settings
    assert again.paths.root.is_absolute()
    assert again.mlflow.tracking_uri == f"http://127.0.0.1:{settings.stack.mlflow_port}"


def test_up_status_down_leave_nothing_behind(stack_args: list[str]) -> None:
    settings = load_settings("ci", stack_args, env={})
    up = harmscan(*set_args(stack_args), "--profile", "ci", "up")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "Prefect UI: http://127.0.0.1:" in up.stdout

    stack = LocalStack(settings)
    statuses = {s.name: s for s in stack.status()}
    assert set(statuses) == {
        "kafka",
        "mlflow",
        "mirror",
        "prefect-server",
        "prefect-worker",
        "review",
    }
    assert all(s.healthy for s in statuses.values()), statuses
    pids = [pid for s in statuses.values() for pid in s.pids]
    for status in statuses.values():
        for log in status.logs:
            assert Path(log).parent == settings.paths.services.resolve()
            assert Path(log).exists(), log
    tree = pids + [child for pid in pids for child in descendants(pid)]
    ports = [getattr(settings.stack, key) for key in PORT_KEYS]
    assert all(
        port_open("127.0.0.1", p) for p in ports if p != settings.stack.kafka_controller_port
    )

    status = harmscan(*set_args(stack_args), "--profile", "ci", "status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert status.stdout.count("healthy") == 6
    # The UI talks to its own server's API, not to Prefect's default port (4200).
    import json
    import urllib.request

    base = f"http://127.0.0.1:{settings.stack.prefect_port}"
    with urllib.request.urlopen(f"{base}/ui-settings", timeout=10) as answer:
        assert json.load(answer)["api_url"] == f"{base}/api"

    down = harmscan(*set_args(stack_args), "--profile", "ci", "down")
    assert down.returncode == 0, down.stderr
    alive = [pid for pid in tree if Path(f"/proc/{pid}").exists() and not _zombie(pid)]
    assert not alive, f"processes left running after down: {alive}"
    still_open = [p for p in ports if port_open("127.0.0.1", p)]
    assert not still_open, f"ports still open after down: {still_open}"

    after = harmscan(*set_args(stack_args), "--profile", "ci", "status")
    assert after.returncode == 1
    assert "stopped" in after.stdout


def test_taken_port_fails_before_starting_anything(stack_args: list[str]) -> None:
    settings = load_settings("ci", stack_args, env={})
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", settings.stack.prefect_port))
        blocker.listen()
        with pytest.raises(ServiceError) as caught:
            LocalStack(settings).up(timeout=60)
    message = str(caught.value)
    assert f"127.0.0.1:{settings.stack.prefect_port}" in message
    assert "stack.prefect_port" in message
    assert not any(s.running for s in LocalStack(settings).status())


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_demo_images_are_real_test_images_plus_a_rejected_one(tmp_path: Path) -> None:
    from harmscan.imageio import decode_image
    from harmscan.imagepolicy import ImageRejected
    from stack.demo import DEMO_GROUPS, prepare_images

    paths = prepare_images(tmp_path / "images")
    assert [p.stem for p in paths[:-1]] == list(DEMO_GROUPS)
    for path in paths[:-1]:
        assert decode_image(path.read_bytes(), max_pixels=10_000_000).size[0] > 0
    with pytest.raises(ImageRejected):
        decode_image(paths[-1].read_bytes(), max_pixels=10_000_000)


def test_demo_settings_source_and_allowed_root(make_settings: Callable[..., Settings]) -> None:
    from stack.demo import DemoError, demo_settings, images_dir

    base = make_settings("openimages.s3_endpoint_url=http://127.0.0.1:9")
    real = demo_settings(base, "openimages")
    assert real.openimages.source == "openimages"
    assert real.openimages.s3_endpoint_url is None
    assert real.openimages.metadata_base_url.startswith("https://")
    assert images_dir(base) in real.serving.allowed_roots
    assert demo_settings(base, None).openimages == base.openimages
    with pytest.raises(DemoError, match="valid: mirror, openimages"):
        demo_settings(base, "kaggle")


def test_up_refuses_other_ports_while_the_stack_runs(tmp_path: Path) -> None:
    """A second `up` with other stack ports must not rewrite the running stack's settings file."""
    overrides = stack_overrides(tmp_path / "hs")
    stack = LocalStack(load_settings("ci", overrides, env={}))
    written = write_settings_file(stack.settings)
    before = written.read_text()
    # Stand-in for a running Prefect server of this stack: a live pid (this process) in its file.
    [server] = prefect_server_member(stack.settings).processes
    server.pid_file.parent.mkdir(parents=True, exist_ok=True)
    server.pid_file.write_text(str(os.getpid()))
    moved = LocalStack(load_settings("ci", [*overrides, "stack.prefect_port=1"], env={}))
    try:
        with pytest.raises(ServiceError) as caught:
            moved.up(timeout=1)
    finally:
        server.pid_file.unlink()
        moved.down()  # nothing should run; if `up` started something, it stops here
    message = str(caught.value)
    assert f"stack.prefect_port: running {stack.settings.stack.prefect_port}, asked 1" in message
    assert "harmscan down" in message
    assert written.read_text() == before


def test_status_with_other_ports_says_which_the_stack_runs_with(tmp_path: Path) -> None:
    """`status` probes the asked addresses; when the stack runs with others it says so."""
    from typer.testing import CliRunner

    from cli.app import _register_areas, app

    overrides = stack_overrides(tmp_path / "hs")
    stack = LocalStack(load_settings("ci", overrides, env={}))
    write_settings_file(stack.settings)
    [server] = prefect_server_member(stack.settings).processes
    server.pid_file.parent.mkdir(parents=True, exist_ok=True)
    server.pid_file.write_text(str(os.getpid()))  # a live pid: this stack "runs"
    _register_areas()
    args = [a for item in overrides for a in ("--set", item)]
    try:
        same = CliRunner().invoke(app, ["--profile", "ci", *args, "status"])
        moved = CliRunner().invoke(
            app, ["--profile", "ci", *args, "--set", "stack.prefect_port=1", "status"]
        )
    finally:
        server.pid_file.unlink()
    assert "runs with other settings" not in same.output
    assert f"stack.prefect_port: running {stack.settings.stack.prefect_port}, asked 1" in (
        moved.stderr
    )
    assert moved.exit_code == 1


def test_deploy_with_other_ports_than_the_running_stacks_changes_nothing(tmp_path: Path) -> None:
    """Its settings file is what every flow run reads: a deploy with other stack ports (or
    against no Prefect server) must leave it as it is and say why."""
    from typer.testing import CliRunner

    from cli.app import _register_areas, app

    overrides = stack_overrides(tmp_path / "hs")
    stack = LocalStack(load_settings("ci", overrides, env={}))
    written = write_settings_file(stack.settings)
    before = written.read_text()
    [server] = prefect_server_member(stack.settings).processes
    server.pid_file.parent.mkdir(parents=True, exist_ok=True)
    server.pid_file.write_text(str(os.getpid()))  # a live pid: this stack "runs"
    _register_areas()
    args = ["--profile", "ci", *set_args(overrides)]
    try:
        moved = CliRunner().invoke(app, [*args, "--set", "stack.kafka_port=1", "deploy"])
        same = CliRunner().invoke(app, [*args, "deploy", "--flow", "etl"])
    finally:
        server.pid_file.unlink()
    assert moved.exit_code == 2, moved.output
    assert f"stack.kafka_port: running {stack.settings.stack.kafka_port}, asked 1" in moved.output
    # nothing listens on this stack's Prefect port: named, and nothing written
    assert same.exit_code == 3, same.output
    assert "cannot reach the Prefect API at http://127.0.0.1:" in same.output
    assert "(prefect.api_url)" in same.output
    assert written.read_text() == before
