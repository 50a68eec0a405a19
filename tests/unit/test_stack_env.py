"""The services that read the stack's settings file (the worker and its flow runs, the review
page) do not inherit the operator's HARMSCAN_* setting variables, which would override the
file's values in every run; secrets, which the file leaves out, still reach them."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from conf.loader import load_settings
from stack.members import prefect_worker_member, review_member
from stack.process import ServiceProcess, free_port
from stack.settings_file import service_environ

SHELL = {
    "HARMSCAN_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:9092",  # another stack's broker
    "HARMSCAN_TRAIN__EPOCHS": "9",
    "HARMSCAN_KAFKA__SASL_PASSWORD": "s3cret",
    "HARMSCAN_REVIEW__TOKEN": "tok",
    "HARMSCAN_TEST_KAFKA_BOOTSTRAP": "127.0.0.1:1",  # the test suite's, not a setting
    "PATH": "/usr/bin",
}


def test_setting_variables_are_left_out_and_secrets_kept() -> None:
    assert service_environ(SHELL) == {
        "HARMSCAN_KAFKA__SASL_PASSWORD": "s3cret",
        "HARMSCAN_REVIEW__TOKEN": "tok",
        "HARMSCAN_TEST_KAFKA_BOOTSTRAP": "127.0.0.1:1",
        "PATH": "/usr/bin",
    }


def test_the_worker_and_the_review_page_inherit_so(tmp_path: Path) -> None:
    settings = load_settings("ci", [f"paths.root={tmp_path}"], env={})
    for member in (prefect_worker_member(settings), review_member(settings)):
        for process in member.processes:
            assert process.inherit_env is service_environ, member.name


def test_a_service_starts_with_the_environment_it_inherits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in SHELL.items():
        monkeypatch.setenv(key, value)
    port = free_port()
    dump = tmp_path / "env.txt"
    script = (
        "import os, socket, time; "
        f"open({str(dump)!r}, 'w').write(repr(sorted(k for k in os.environ if "
        "k.startswith('HARMSCAN_')))); "
        f"s = socket.create_server(('127.0.0.1', {port})); time.sleep(60)"
    )
    service = ServiceProcess(
        name="envdump",
        command=[sys.executable, "-c", script],
        state_dir=tmp_path / "services",
        host="127.0.0.1",
        port=port,
        env={"HARMSCAN_CONFIG": "/x/settings.yaml"},
        inherit_env=service_environ,
    )
    service.start(timeout=30)
    try:
        names = dump.read_text()
    finally:
        service.stop(timeout=5)
    assert "HARMSCAN_KAFKA__BOOTSTRAP_SERVERS" not in names
    assert "HARMSCAN_TRAIN__EPOCHS" not in names
    assert "HARMSCAN_KAFKA__SASL_PASSWORD" in names
    assert "HARMSCAN_CONFIG" in names
