"""The mirror builder's catalog logic (ids, subsets, domains) against the committed mirror.

Building the images needs the three icon packages; these checks need only ``catalog.yaml``.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import pytest
import yaml

from harmscan.gateset import REPO_ROOT
from harmscan.openimages import MIRROR_DOMAINS_FILE

SCRIPTS = REPO_ROOT / "scripts"
MIRROR = REPO_ROOT / "mirror"


def _builder(name: str) -> ModuleType:
    """A module of the builder's package, imported as the command line does (``scripts/``)."""
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))
    return importlib.import_module(f"mirror_build.{name}")


@pytest.fixture(scope="module")
def catalog() -> dict[str, Any]:
    return yaml.safe_load((MIRROR / "catalog.yaml").read_text())


def test_domains_only_rewrites_the_committed_domains_file(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("build_mirror", SCRIPTS / "build_mirror.py")
    assert spec is not None
    assert spec.loader is not None
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    assert cli.main(["--domains-only", "--out", str(tmp_path)]) == 0
    written = (tmp_path / "metadata" / MIRROR_DOMAINS_FILE).read_bytes()
    assert written == (MIRROR / "metadata" / MIRROR_DOMAINS_FILE).read_bytes()


def test_catalog_ids_and_subsets_are_the_committed_ones(catalog: dict[str, Any]) -> None:
    records = _builder("records")
    expected = pd.read_csv(MIRROR / "expected.csv", dtype=str).set_index("ImageID")
    ids = records.catalog_refs(catalog)
    assert set(ids) == set(expected.index)
    groups = expected[expected["Defect"].isna()]
    assert len(groups) > 400
    for image_id, subset in groups["Subset"].items():
        assert records.pick_subset(image_id, catalog["subset_split"]) == subset


@pytest.mark.parametrize(
    ("refs", "domain"),
    [
        (["tw:1F52A"], "emoji"),
        (["om:1F52A", "tw:1F600"], "emoji"),
        (["oc:x.png", "tw:1F600"], "illustration"),
        ([], "illustration"),
    ],
)
def test_image_domain(refs: list[str], domain: str) -> None:
    assert _builder("write").image_domain(refs) == domain


def test_unknown_icon_source_names_the_valid_ones(tmp_path: Path) -> None:
    icons = _builder("icons").Icons(tmp_path, tmp_path / "cache")
    with pytest.raises(ValueError, match=r"unknown icon source 'xx' .* valid: oc, tw, om"):
        icons.path("xx:knife")
