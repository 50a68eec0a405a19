"""Failures as a user meets them: a real ``harmscan`` process, its exit code and its last line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stack.prefect_server import descendants

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
HARMSCAN = str(Path(sys.executable).parent / "harmscan")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HARMSCAN_", "PREFECT_"))}
    return {**env, **extra}


def _harmscan(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HARMSCAN, "--profile", "ci", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _api_env() -> dict[str, str]:
    from prefect.settings import PREFECT_API_URL

    return _env(PREFECT_API_URL=str(PREFECT_API_URL.value()))


def test_unreachable_metadata_server_is_one_line_naming_the_setting(tmp_path):
    """The ETL's preflight asks the endpoint once: no Prefect server, no minutes of retries."""
    args = [
        f"--set=paths.root={tmp_path}",
        "--set=openimages.metadata_base_url=http://127.0.0.1:9",
        "etl",
    ]
    for argv in (args, ["--verbose", *args]):
        done = _harmscan(argv, _env())
        assert done.returncode == 3, done.stderr[-3000:]
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith("error: cannot reach http://127.0.0.1:9")
        assert "openimages.metadata_base_url" in last
        assert "Traceback" not in done.stderr
        assert "prefect" not in done.stderr.lower()  # it ended before Prefect was imported


def test_an_empty_selection_names_the_endpoint(prefect_harness, mirror_servers, tmp_path):
    sets = [f"--set={o}" for o in [*mirror_servers, f"paths.root={tmp_path}"]]
    args = [*sets, "--set=openimages.bucket=no-such-bucket", "--set=etl.retries=0", "etl"]
    done = _harmscan(args, _api_env())
    assert done.returncode == 1, done.stderr[-3000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: no verified")
    assert mirror_servers.s3_endpoint in last
    assert "openimages.bucket" in last
    assert "Traceback" not in done.stderr
    assert "HTTP Request:" not in done.stderr  # httpx INFO lines are down
    verbose = _harmscan(["--verbose", *args], _api_env())
    assert verbose.returncode == 1
    assert "Traceback" in verbose.stderr
    # The failed run left its note in Prefect: the error and the settings that shape the ETL.
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        notes = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["etl-failure"]))
        )
    assert any("openimages.bucket | `no-such-bucket`" in str(n.data) for n in notes)


def test_train_with_a_missing_weights_file_is_a_settings_error(prefect_harness, tmp_path):
    dataset = tmp_path / "dataset"  # a folder with a manifest: the dataset check passes
    dataset.mkdir()
    (dataset / "manifest.csv").write_text("image_id,label,split,path,sha256\n")
    done = _harmscan(
        [f"--set=paths.root={tmp_path}", "train", "--weights", "mobilenet_v2=missing.pth",
         "--model", "mobilenet_v2", "--dataset", str(dataset)],
        _api_env(),
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-3000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: weights file for mobilenet_v2 not found")
    assert "train.weights.mobilenet_v2" in last
    assert "Traceback" not in done.stderr


def test_kill_9_leaves_no_temporary_prefect_server(tmp_path):
    """No PREFECT_API_URL: the command starts Prefect's temporary server, which must die with it."""
    # Endpoints that answer (any HTTP status), so the ETL's preflight lets the command go on.
    endpoint = _answering_server()
    process = subprocess.Popen(
        [HARMSCAN, "--profile", "ci", f"--set=paths.root={tmp_path}",
         f"--set=openimages.metadata_base_url={endpoint}",
         f"--set=openimages.s3_endpoint_url={endpoint}", "etl"],
        cwd=REPO,
        env=_env(PREFECT_HOME=str(tmp_path / "prefect-home")),
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "stderr.txt").open("w"),
    )  # fmt: skip
    try:
        # Slow on a busy machine: the command imports Prefect before it starts the server.
        server = _wait_for_child(process, "uvicorn", timeout=600, log=tmp_path / "stderr.txt")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _alive(server):
        time.sleep(0.2)
    assert not _alive(server), f"temporary Prefect server {server} outlived its command"


def _answering_server() -> str:
    """A loopback HTTP server for the test's lifetime that answers every request with 501."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}"


def _wait_for_child(process: subprocess.Popen, word: str, timeout: float, log: Path) -> int:
    pid, deadline = process.pid, time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the command ended first:\n{log.read_text()[-3000:]}"
        for child in descendants(pid):
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if word in cmdline:
                return child
        time.sleep(0.1)
    raise AssertionError(f"no {word} child of {pid} within {timeout}s")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended; only its parent's wait is left


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ("prefect.timezone=Mars/Olympus", "prefect.timezone"),
        ("prefect.retrain_cron=61 * * * *", "prefect.retrain_cron"),
    ],
)
def test_deploy_refuses_a_bad_schedule_as_a_bad_setting(setting, named, tmp_path):
    # No server at prefect.api_url: the schedule is checked before anything is asked.
    args = [f"--set=paths.root={tmp_path}", "--set=prefect.api_url=http://127.0.0.1:9/api"]
    done = _harmscan([*args, f"--set={setting}", "deploy"], _env())
    assert done.returncode == 2, done.stderr[-3000:]
    last = done.stderr.strip().splitlines()[-1]  # refused when the settings load
    assert last.strip().startswith(f"{named} ")
    assert setting.split("=", 1)[1] in last


def test_deploy_refuses_an_unknown_flow_as_usage(tmp_path):
    args = [f"--set=paths.root={tmp_path}", "--set=prefect.api_url=http://127.0.0.1:9/api"]
    done = _harmscan([*args, "deploy", "--flow", "retrain", "--flow", "nightly"], _env())
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr.strip().splitlines()[-1] == (
        "error: unknown flows ['nightly']; valid: etl, train, retrain, serve"
    )
