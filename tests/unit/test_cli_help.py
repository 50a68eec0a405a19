"""``--help`` pages: a command's docstring, wrapped at 100 columns in the code, reads as
paragraphs, not as the code's line breaks."""

from __future__ import annotations

import inspect

import typer
from typer.testing import CliRunner

from cli.app import _register_areas, app


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
