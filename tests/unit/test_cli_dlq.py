"""`harmscan dlq` refuses what it cannot mean before it reads the topic (no broker needed)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli import app as cli_app
from cli.failures import UNREACHABLE
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


@pytest.mark.parametrize(
    ("typo", "meant"),
    [("bad_shema", "bad_schema"), ("corupt", "corrupt"), ("notfound", "not_found")],
)
def test_a_misspelt_reason_is_refused_with_the_one_meant(typo: str, meant: str) -> None:
    cli_app._register_areas()
    result = CliRunner().invoke(
        cli_app.app, [*_NO_BROKER, "dlq", "list", "--reason", "zzz", "--reason", typo]
    )
    assert result.exit_code == 2, result.output
    assert f"unknown dead-letter reason 'zzz', {typo!r} (did you mean {meant}?); valid: " in (
        result.output
    )


def test_replay_without_a_choice_is_a_usage_error() -> None:
    cli_app._register_areas()
    result = CliRunner().invoke(cli_app.app, [*_NO_BROKER, "dlq", "replay", "--dry-run"])
    assert result.exit_code == 2
    assert "choose dead letters with --reason, --id or --offset" in result.output


@pytest.mark.parametrize(
    "args", [["dlq", "list"], ["dlq", "replay", "--reason", "corrupt", "--dry-run"]]
)
def test_an_unreachable_broker_is_one_error_line(
    args: list[str], capfd: pytest.CaptureFixture[str]
) -> None:
    """Not ~200 lines of librdkafka's refused connections before the error."""
    cli_app._register_areas()
    result = CliRunner().invoke(cli_app.app, [*_NO_BROKER, *args])
    assert result.exit_code == UNREACHABLE, result.output
    assert result.output.startswith("error: cannot reach Kafka at 127.0.0.1:9 ")
    assert len(result.output.splitlines()) == 1
    assert "Connection refused" not in capfd.readouterr().err


def test_a_read_of_an_unreachable_broker_prints_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    from confluent_kafka import KafkaException

    from conf.settings import KafkaSettings
    from kafkaio.reading import read_to_end

    with pytest.raises(KafkaException):
        read_to_end(KafkaSettings(bootstrap_servers="127.0.0.1:9"), "t", 1.0, purpose="test")
    assert capfd.readouterr().err == ""
