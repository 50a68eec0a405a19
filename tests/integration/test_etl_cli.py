"""``harmscan etl`` as a user runs it: a real process, the mirror, the session's Prefect API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
HARMSCAN = str(Path(sys.executable).parent / "harmscan")  # the console script


def test_cli_builds_a_dataset_and_prints_the_summary(prefect_harness, mirror_servers, tmp_path):
    from prefect.settings import PREFECT_API_URL

    root = tmp_path / "harmscan"
    sets = [f"--set={o}" for o in [*mirror_servers, f"paths.root={root}"]]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HARMSCAN_")},
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
    }
    done = subprocess.run(
        [
            HARMSCAN,
            "--profile",
            "ci",
            *sets,
            "etl",
            "--max-per-side",
            "12",
            "--seed",
            "5",
            "--subset",
            "validation",
            "--subset",
            "test",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    latest = json.loads((root / "data" / "datasets" / "latest.json").read_text())
    assert f"dataset {latest['version']}" in done.stdout
    assert "images per source label" in done.stdout
    summary = json.loads((Path(latest["path"]) / "summary.json").read_text())
    assert summary["labels"] == {"harmful": 12, "safe": 12}


def test_cli_rejects_an_unknown_subset(tmp_path):
    done = subprocess.run(
        [HARMSCAN, "--profile", "ci", "etl", "--subset", "valid"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert "unknown subset ['valid']; valid: train, validation, test" in done.stderr


def test_cli_names_an_unknown_class_with_suggestions(prefect_harness, mirror_servers, tmp_path):
    from prefect.settings import PREFECT_API_URL

    sets = [f"--set={o}" for o in [*mirror_servers, f"paths.root={tmp_path}"]]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HARMSCAN_")},
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
    }
    done = subprocess.run(
        [HARMSCAN, "--profile", "ci", *sets, "--set", "classes.harmful=[Handgunn, Blood]", "etl"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 2
    assert "unknown Open Images class 'Handgunn'; did you mean 'Handgun'" in done.stderr
