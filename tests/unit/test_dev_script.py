"""``./dev``: a wrong command is named with the valid ones; ``--help`` says what each does."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

DEV = Path(__file__).resolve().parents[2] / "dev"
COMMANDS = ("setup", "setup-serving", "demo", "test", "lint")


def _dev(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(DEV), *args], capture_output=True, text=True, timeout=30, check=False
    )


@pytest.mark.parametrize("command", ["bogus", "tset"])
def test_an_unknown_command_is_named_with_the_valid_ones(command: str) -> None:
    done = _dev(command)
    assert done.returncode == 2
    assert done.stderr.startswith(f"./dev: unknown command '{command}'; valid: ")
    assert all(c in done.stderr for c in COMMANDS)
    assert len(done.stderr.splitlines()) == 1


def test_help_describes_every_command_and_no_command_is_a_usage_error() -> None:
    done = _dev("--help")
    assert done.returncode == 0
    assert all(f"./dev {c}" in done.stdout for c in COMMANDS)
    assert "set -euo" not in done.stdout
    bare = _dev()
    assert bare.returncode == 2
    assert bare.stderr == done.stdout
