"""Shared test configuration. Service fixtures live in tests/fixtures/, one module per service;
each starts a real server on loopback (or reuses one named by an environment variable)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from conf.loader import SettingsSource, load_settings
from conf.settings import Settings

pytest_plugins = [
    "tests.fixtures.mirror",
    "tests.fixtures.kafka",
    "tests.fixtures.mlflow",
    "tests.fixtures.prefect",
    "tests.fixtures.browser",
]

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Unique names for topics, experiments, buckets: ``unique("topic")`` -> ``topic-1a2b3c4d``."""
    return lambda prefix: f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings of the ``ci`` profile rooted in this test's tmp_path, plus ``a.b=c`` overrides."""

    def build(*overrides: str) -> Settings:
        return load_settings("ci", [f"paths.root={tmp_path / 'harmscan'}", *overrides], env={})

    return build


@pytest.fixture
def make_source(tmp_path: Path) -> Callable[..., SettingsSource]:
    """The flow parameter form of `make_settings`: ``ci`` profile, this test's root, overrides."""

    def build(*overrides: str) -> SettingsSource:
        return SettingsSource.from_cli("ci", [f"paths.root={tmp_path / 'harmscan'}", *overrides])

    return build
