"""`harmscan dlq` refuses what it cannot mean before it reads the topic (no broker needed)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli import app as cli_app
from serving.headers import REJECT_REASONS

# Nothing listens on port 9: a command that reached Kafka would fail differently (or hang).
_NO_BROKER = ["--set", "kafka.bootstrap_servers=127.0.0.1:9"]


@pytest.mark.parametrize(
    "args",
    [
        ["dlq", "list", "--reason", "corupt"],
        ["dlq", "replay", "--reason", "internal_error", "--reason", "nosuch", "--dry-run"],
    ],
)
def test_an_unknown_reason_is_refused_with_the_valid_ones(args: list[str]) -> None:
    cli_app._register_areas()
    result = CliRunner().invoke(cli_app.app, [*_NO_BROKER, *args])
    assert result.exit_code == 2, result.output
    bad = args[-1] if args[-1] != "--dry-run" else args[-2]
    assert f"unknown dead-letter reason {bad!r}" in result.output
    assert all(reason in result.output for reason in REJECT_REASONS)


def test_replay_without_a_choice_is_a_usage_error() -> None:
    cli_app._register_areas()
    result = CliRunner().invoke(cli_app.app, [*_NO_BROKER, "dlq", "replay", "--dry-run"])
    assert result.exit_code == 2
    assert "choose dead letters with --reason, --id or --offset" in result.output
