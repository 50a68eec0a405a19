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


def test_the_torch_free_resolver_names_what_torch_and_torchvision_use(tmp_path: Path) -> None:
    """`harmscan.weights` knows torchvision's ImageNet files and torch's hub folder by heart."""
    import subprocess
    import sys

    import torch
    from torchvision import models as tv

    from harmscan.weights import IMAGENET_URLS, imagenet_cache_file, torch_hub_dir

    torchvision_urls = {
        "mobilenet_v2": tv.MobileNet_V2_Weights.IMAGENET1K_V1.url,
        "resnet50": tv.ResNet50_Weights.IMAGENET1K_V2.url,
    }
    assert torchvision_urls == IMAGENET_URLS
    assert torch_hub_dir() == Path(torch.hub.get_dir())
    assert torch_hub_dir({"TORCH_HOME": str(tmp_path)}) == tmp_path / "hub"
    assert torch_hub_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "torch" / "hub"
    cached = imagenet_cache_file("resnet50", {"TORCH_HOME": str(tmp_path)})
    assert cached == tmp_path / "hub" / "checkpoints" / "resnet50-11ad3fa6.pth"
    script = "import sys, harmscan.weights; print('torch' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False"
