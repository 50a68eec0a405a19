"""``harmscan status`` where no stack was started: every service stopped, and why, named."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from cli.app import _register_areas, app


def test_status_without_a_stack_under_paths_root_says_where_it_looked(tmp_path: Path) -> None:
    _register_areas()
    root = tmp_path / "elsewhere" / ".harmscan"
    result = CliRunner().invoke(app, ["--profile", "ci", "--set", f"paths.root={root}", "status"])
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert f"note: no stack was started with paths.root {root}" in text
    assert "run status from the folder that ran `harmscan up`" in text
    (root / "services").mkdir(parents=True)  # a stack that was started here and stopped
    again = CliRunner().invoke(app, ["--profile", "ci", "--set", f"paths.root={root}", "status"])
    assert again.exit_code == 1
    assert "no stack was started" not in again.output
