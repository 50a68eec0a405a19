"""The ImageNet weights the repository carries: the right bytes, and they load offline."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from harmscan.models import REPO_ROOT, resolve_weights

WEIGHTS = REPO_ROOT / "weights" / "mobilenet_v2_imagenet.pth"


def _documented_sha256() -> str:
    readme = (REPO_ROOT / "weights" / "README.md").read_text()
    match = re.search(r"`mobilenet_v2_imagenet\.pth` \| `([0-9a-f]{64})`", readme)
    assert match, "weights/README.md must state the sha256 of the weights file"
    return match.group(1)


def test_weights_file_matches_its_documented_sha256() -> None:
    digest = hashlib.sha256(WEIGHTS.read_bytes()).hexdigest()
    assert digest == _documented_sha256()


def test_profiles_point_inside_the_repository(tmp_path: Path) -> None:
    # Resolved from an unrelated working directory: the repo root is the fallback.
    source = resolve_weights("mobilenet_v2", "weights/mobilenet_v2_imagenet.pth", cwd=tmp_path)
    assert source.kind == "file"
    assert source.path == WEIGHTS.resolve()
    assert REPO_ROOT.resolve() in source.path.parents
