"""The import rules of the house (`[tool.importlinter]` in pyproject.toml) hold for the code."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def test_import_contracts_are_kept() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_package_of_the_distribution_is_checked() -> None:
    config = _pyproject()
    shipped = {p.rstrip("*") for p in config["tool"]["setuptools"]["packages"]["find"]["include"]}
    checked = set(config["tool"]["importlinter"]["root_packages"])
    assert shipped == checked, f"add {sorted(shipped - checked)} to [tool.importlinter]"


def test_the_contracts_say_what_the_house_says() -> None:
    contracts = {c["type"]: c for c in _pyproject()["tool"]["importlinter"]["contracts"]}
    layers = contracts["layers"]["layers"]
    assert layers[0] == "cli"
    assert layers[-1] == "conf"
    core = next(
        c
        for c in _pyproject()["tool"]["importlinter"]["contracts"]
        if c["type"] == "forbidden" and c["source_modules"] == ["harmscan", "conf"]
    )
    assert {"prefect", "confluent_kafka", "mlflow", "boto3"} <= set(core["forbidden_modules"])
    assert set(contracts["independence"]["modules"]) == {"tasks", "serving"}
