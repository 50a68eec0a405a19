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
    expected = "classes.harmful: unknown Open Images class 'Handgunn'; did you mean 'Handgun'"
    assert expected in done.stderr


def test_a_cached_etl_runs_with_the_mirror_down_and_a_cold_one_ends_at_once(
    prefect_harness, tmp_path
):
    """The preflight asks the endpoints only when the metadata is not cached: a repeated ETL
    works from its caches with the mirror stopped; a first one names the setting at once."""
    from prefect.settings import PREFECT_API_URL

    from stack.mirror import MirrorServers, mirror_overrides
    from stack.mirror_s3 import seed_bucket
    from stack.process import free_port
    from tests.fixtures.mirror import IMAGES_DIR, METADATA_DIR

    servers = MirrorServers(
        host="127.0.0.1",
        s3_port=free_port("127.0.0.1"),
        metadata_port=free_port("127.0.0.1"),
        state_dir=tmp_path / "mirror",
        metadata_root=METADATA_DIR,
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HARMSCAN_")},
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
    }
    overrides = mirror_overrides(servers.metadata_url, servers.s3_endpoint, "oi-cached")

    def etl(root: Path) -> subprocess.CompletedProcess[str]:
        sets = [f"--set={o}" for o in [*overrides, f"paths.root={root}"]]
        return subprocess.run(
            [HARMSCAN, "--profile", "ci", *sets, "etl", "--max-per-side", "4", "--seed", "5"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip

    started = list(servers.services())
    try:
        for service in started:
            service.start(timeout=60.0)
        seed_bucket(servers.s3_endpoint, "oi-cached", IMAGES_DIR)
        first = etl(tmp_path / "warm")
        assert first.returncode == 0, first.stderr[-3000:]
    finally:
        for service in reversed(started):
            service.stop()
    again = etl(tmp_path / "warm")
    assert again.returncode == 0, again.stderr[-3000:]
    latest = json.loads((tmp_path / "warm" / "data" / "datasets" / "latest.json").read_text())
    assert f"dataset {latest['version']}" in again.stdout
    cold = etl(tmp_path / "cold")
    assert cold.returncode == 3, cold.stderr[-3000:]
    last = cold.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: cannot reach {servers.metadata_url}")
    assert last.endswith("or change openimages.metadata_base_url")
