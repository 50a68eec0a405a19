"""`harmscan demo --down` stops the stack it started even when a step fails; `--keep` leaves it."""

from __future__ import annotations

from typing import ClassVar

import pytest

import stack.deploy
import stack.local
from conf.loader import load_settings
from stack.demo import run_demo
from stack.deploy import DeployError


class _Stack:
    """Stands in for LocalStack: records up/down, serves no process."""

    instances: ClassVar[list[_Stack]] = []

    def __init__(self, settings) -> None:
        self.settings = settings
        self.services_dir = settings.paths.services
        self.prefect_ui = self.mlflow_ui = self.review_ui = "http://127.0.0.1:1"
        self.calls: list[str] = []
        _Stack.instances.append(self)

    def up(self, on_ready=None) -> None:
        self.calls.append("up")

    def down(self) -> list[str]:
        self.calls.append("down")
        return []


def _failing_deploy(settings, flows=None):
    raise DeployError("the Prefect server refused the deployment")


@pytest.fixture
def failing_demo(monkeypatch, tmp_path):
    monkeypatch.setattr(stack.local, "LocalStack", _Stack)
    monkeypatch.setattr(stack.deploy, "deploy", _failing_deploy)
    _Stack.instances.clear()
    return load_settings("local", env={"HARMSCAN_PATHS__ROOT": str(tmp_path)})


@pytest.mark.parametrize(("keep", "calls"), [(False, ["up", "down"]), (True, ["up"])])
def test_a_failed_demo_stops_the_stack_only_with_down(failing_demo, keep, calls) -> None:
    lines: list[str] = []
    with pytest.raises(DeployError, match="refused"):
        run_demo(failing_demo, keep=keep, emit=lines.append)
    assert _Stack.instances[-1].calls == calls
    if not keep:
        assert any(line.startswith("stopping the stack after the failure") for line in lines)
