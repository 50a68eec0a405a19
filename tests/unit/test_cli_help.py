"""``--help`` pages: a command's docstring, wrapped at 100 columns in the code, reads as
paragraphs, not as the code's line breaks."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from cli.app import _register_areas, app, misplaced_global_options


def test_every_commands_help_joins_the_docstrings_wrapped_lines() -> None:
    _register_areas()
    group = typer.main.get_command(app)
    checked = 0
    for name, command in group.commands.items():
        if hasattr(command, "commands"):  # a group: its own commands' pages
            continue
        doc = inspect.cleandoc(command.callback.__doc__ or "")
        paragraphs = [" ".join(p.split()) for p in doc.split("\n\n") if "\n" in p.strip()]
        if not paragraphs:
            continue
        result = CliRunner().invoke(app, [name, "--help"], env={"COLUMNS": "400"})
        assert result.exit_code == 0, result.output
        shown = " ".join(line.strip() for line in result.output.splitlines())
        lines = [line.strip() for line in result.output.splitlines()]
        for paragraph in paragraphs:
            text = paragraph.replace("`", "")
            assert text in shown.replace("`", ""), (name, paragraph)
            assert any(text in line.replace("`", "") for line in lines), (name, paragraph)
        checked += 1
    assert checked >= 2  # promote and evaluate have docstrings wrapped over lines


@pytest.mark.parametrize("command", [["demo"], ["produce"], ["evaluate"], []])
def test_a_flag_shows_no_value_in_help(command: list[str]) -> None:
    # typer 0.29 gave every option a type column: "--help <bool>" read as if it took a value.
    _register_areas()
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output
    assert "--help" in result.output
    if command == ["demo"]:
        assert "<float>" in result.output  # options that take a value keep their type


def test_harmscans_own_options_after_the_command_are_moved_in_the_fix() -> None:
    fix = misplaced_global_options(["settings", "--profile", "ci"])
    assert fix == (
        "--profile is an option of harmscan itself: put it before the command: "
        "harmscan --profile ci settings"
    )
    fix = misplaced_global_options(["--profile", "ci", "kafka", "status", "--set=a.b=1", "-v"])
    assert fix is not None
    assert fix.startswith("--set and -v are options of harmscan itself")
    assert fix.endswith("harmscan --profile ci --set=a.b=1 -v kafka status")
    assert misplaced_global_options(["--profile", "ci", "--set", "a=1", "settings"]) is None
    assert misplaced_global_options(["produce", "--", "--set"]) is None  # an argument after --
    assert misplaced_global_options(["--profile", "ci"]) is None


def test_the_console_script_names_the_fix_with_exit_2() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from cli.app import main; main()", "settings", "--profile", "ci"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "put it before the command: harmscan --profile ci settings" in done.stderr


def test_promote_names_what_is_missing_or_too_much_before_any_work() -> None:
    _register_areas()
    no_mlflow = ["--profile", "ci", "--set", "mlflow.tracking_uri=http://127.0.0.1:9"]
    for args, message in (
        (["promote", "--gate"], "give the VERSION to promote (or --rollback)"),
        (["promote", "3", "--rollback"], "give a VERSION or --rollback, not both"),
        (["promote", "3", "--gate", "--force"], "--gate runs the gate and --force skips it"),
    ):
        result = CliRunner().invoke(app, [*no_mlflow, *args])
        assert result.exit_code == 2, result.output
        assert message in " ".join(result.output.split()), result.output
    page = CliRunner().invoke(app, ["promote", "--help"], env={"COLUMNS": "300"}).output
    assert "champion if it passes, challenger if not" in " ".join(page.split())
