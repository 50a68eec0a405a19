"""Where a dataset is: its manifest file, and the ETL's ``latest.json`` pointer to the newest.

Only the standard library, so a command can check the dataset it was given before it imports
the training stack.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MANIFEST = "manifest.csv"
LATEST_FILE = "latest.json"


def manifest_path(dataset: Path) -> Path:
    """The manifest of a dataset folder (or the manifest file itself if given)."""
    dataset = Path(dataset)
    return dataset if dataset.is_file() else dataset / MANIFEST


def read_latest(datasets_dir: Path) -> dict[str, Any]:
    """The ``latest.json`` record (version, path, manifest) of ``datasets_dir``.

    Raises:
        FileNotFoundError: The ETL has not made a dataset there yet.
    """
    path = Path(datasets_dir) / LATEST_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no dataset yet: {path} does not exist (run `harmscan etl`)")
    return dict(json.loads(path.read_text()))


def dataset_folder(datasets_dir: Path, dataset: Path | None) -> Path:
    """``dataset``, or the latest one the ETL made in ``datasets_dir``.

    Raises:
        FileNotFoundError: No ``dataset`` given and no dataset made yet.
    """
    if dataset is not None:
        return Path(dataset)
    return Path(read_latest(datasets_dir)["path"])
