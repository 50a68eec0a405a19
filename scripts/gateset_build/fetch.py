"""Fetch a registry package with its ordinary client into the cache, and unpack it there.

``pip download --no-deps``, ``apt-get download name=version`` or ``npm pack name@version`` at the
pinned version; a package already unpacked in the cache is not fetched again.
"""

from __future__ import annotations

import subprocess
import tarfile
import zipfile
from pathlib import Path

from .sources import Source

NPM_ROOT = "package"  # npm tarballs keep everything under package/


def fetch(source: Source, cache: Path, pip: str = "pip") -> Path:
    """Download and unpack one package into ``cache``; return the unpacked root."""
    root = cache / "unpacked" / source.name
    if root.is_dir():
        return root / NPM_ROOT if source.registry == "npm" else root
    downloads = cache / "downloads" / source.name
    downloads.mkdir(parents=True, exist_ok=True)
    if source.registry.startswith("pypi"):
        kind = ["--only-binary=:all:"] if source.registry == "pypi-wheel" else ["--no-binary=:all:"]
        platform = ["--python-version", "3.11", "--platform", "manylinux_2_28_x86_64"]
        platform += ["--platform", "manylinux2014_x86_64"]
        subprocess.run(
            [pip, "download", "--no-deps", *kind, *platform,
             "-d", str(downloads), f"{source.name}=={source.version}"],
            check=True,
        )  # fmt: skip
    elif source.registry == "debian":
        subprocess.run(
            ["apt-get", "download", f"{source.name}={source.version}"], cwd=downloads, check=True
        )
    elif source.registry == "npm":
        package = f"{source.name}@{source.version}"
        subprocess.run(["npm", "pack", package], cwd=downloads, check=True)
    else:
        raise ValueError(
            f"unknown registry {source.registry!r}; valid: pypi-wheel, pypi-sdist, debian, npm"
        )
    return _unpack(source, downloads, root)


def _unpack(source: Source, downloads: Path, root: Path) -> Path:
    """Unpack the one archive of ``downloads`` into ``root``; return the package's root."""
    (archive,) = sorted(downloads.iterdir())
    staging = root.with_name(root.name + ".tmp")
    staging.mkdir(parents=True, exist_ok=True)
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as handle:
            handle.extractall(staging)
    elif archive.name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(archive) as handle:
            handle.extractall(staging, filter="data")
    elif archive.suffix == ".deb":
        subprocess.run(["dpkg-deb", "-x", str(archive), str(staging)], check=True)
    else:
        raise ValueError(f"cannot unpack {archive}")
    staging.rename(root)
    return root / NPM_ROOT if source.registry == "npm" else root
