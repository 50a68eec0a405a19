"""Prefect tasks: download the Open Images V7 metadata, then pick the candidate images.

Downloads stream to ``<file>.part`` and resume with an HTTP Range request; the finished file is
checked against Content-Length and, where the server gives one, the MD5 (Content-MD5,
``x-goog-hash`` or a plain ETag), and then recorded in a ``.meta.json`` sidecar so a later run
downloads nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pandas as pd
import requests
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from conf.settings import ClassesSettings, EtlSettings, OpenImagesSettings
from harmscan import openimages as oi
from harmscan.classtree import Hierarchy, read_class_descriptions, resolve_classes
from harmscan.sampling import rank_candidates

CHUNK_BYTES = 1 << 16
RETRY_DELAYS = [2.0, 10.0, 30.0]


class DownloadError(RuntimeError):
    """A metadata download failed its size or checksum check, or the server refused it."""


class MetadataNotFound(FileNotFoundError):
    """The server says the file is not there (or not for us): retrying cannot help."""


# Answers that will not change on a retry: a wrong base URL or file path.
NOT_THERE = (401, 403, 404, 410)


def retry_on(*transient: type[BaseException]) -> Callable[[Any, Any, Any], bool]:
    """A Prefect ``retry_condition_fn``: retry only these exception types, not config errors."""

    def condition(task: Any, task_run: Any, state: Any) -> bool:
        try:
            error = state.result(raise_on_failure=False)
        except Exception:  # the failure cannot be read back: keep the retry policy
            return True
        return isinstance(error, transient)

    return condition


def metadata_names(subsets: list[str]) -> list[str]:
    """The logical metadata files the ETL needs for ``subsets``."""
    names = ["class_descriptions", "hierarchy"]
    return names + [f"{kind}_{s}" for s in subsets for kind in ("labels", "images")]


def cache_folder(cache: Path, base_url: str) -> Path:
    """Per-source cache folder, so the real dataset and a mirror never share files."""
    parsed = urlparse(base_url)
    slug = re.sub(r"[^A-Za-z0-9.-]+", "_", f"{parsed.netloc}{parsed.path}").strip("_")
    return Path(cache) / "openimages" / (slug or "local")


def expected_md5(response: requests.Response, *, whole: bool) -> str | None:
    """The object's MD5 (hex) from the response headers, if the server states one."""
    headers = response.headers
    candidates = [headers.get("Content-MD5")] if whole else []
    goog = headers.get("x-goog-hash", "")
    candidates += [p.split("=", 1)[1] for p in goog.split(",") if p.strip().startswith("md5=")]
    for value in filter(None, candidates):
        try:
            return base64.b64decode(value.strip()).hex()
        except (binascii.Error, ValueError):
            continue
    etag = headers.get("ETag", "").strip().removeprefix("W/").strip('"')
    return etag.lower() if re.fullmatch(r"[0-9a-fA-F]{32}", etag) else None


def _file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        while block := handle.read(CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def _open(url: str, offset: int, timeout: float, session: requests.Session) -> requests.Response:
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    response = session.get(url, headers=headers, stream=True, timeout=timeout)
    if response.status_code == 416:  # the part is stale or complete: start again
        response.close()
        raise DownloadError(f"{url}: range {offset}- not satisfiable")
    if response.status_code in NOT_THERE:
        response.close()
        raise MetadataNotFound(
            f"{url}: HTTP {response.status_code}; check openimages.metadata_base_url and "
            "openimages.metadata_files (or openimages.domains_file)"
        )
    if response.status_code not in (200, 206):
        response.close()
        raise DownloadError(f"{url}: HTTP {response.status_code}")
    return response


def fetch(
    url: str, dest: Path, *, timeout: float, session: requests.Session, progress: Progress
) -> tuple[Path, bool]:
    """Download ``url`` to ``dest`` unless it is already there; resume a ``.part`` file.

    Returns:
        The path and whether anything was downloaded.

    Raises:
        DownloadError: HTTP error, short body, or checksum mismatch (the part file is removed
            on a mismatch, so the retry starts clean).
        MetadataNotFound: The server answers 401, 403, 404 or 410 (not retried).
    """
    meta_path = dest.with_name(dest.name + ".meta.json")
    if dest.is_file() and meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("url") == url and meta.get("bytes") == dest.stat().st_size:
            return dest, False
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    try:
        response = _open(url, offset, timeout, session)
    except DownloadError:
        if not offset:
            raise
        part.unlink()
        offset, response = 0, _open(url, 0, timeout, session)
    with response:
        if response.status_code == 200:
            offset = 0  # the server ignored the Range header: start over
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        bar = progress.add_task(dest.name, total=total, completed=offset)
        with part.open("ab" if offset else "wb") as handle:
            for block in response.iter_content(CHUNK_BYTES):
                handle.write(block)
                progress.advance(bar, len(block))
        md5 = expected_md5(response, whole=response.status_code == 200)
    size = part.stat().st_size
    if total is not None and size != total:
        raise DownloadError(f"{url}: got {size} bytes, expected {total}; will resume")
    actual = _file_md5(part)
    if md5 is not None and actual != md5:
        part.unlink()
        raise DownloadError(f"{url}: MD5 {actual} does not match the server's {md5}")
    part.replace(dest)
    meta_path.write_text(json.dumps({"url": url, "bytes": size, "md5": actual}))
    return dest, True


@task(
    retries=3,
    retry_delay_seconds=RETRY_DELAYS,
    retry_condition_fn=retry_on(DownloadError, requests.RequestException, ConnectionError),
    cache_policy=NO_CACHE,
)
def download_metadata(
    openimages: OpenImagesSettings, cache: Path, subsets: list[str]
) -> dict[str, Path]:
    """Fetch the metadata files the ETL needs (cached; resumable).

    Args:
        openimages: Where the files are (base URL and per-file paths).
        cache: The cache root (``settings.paths.cache``).
        subsets: Open Images subsets to read (train, validation, test).

    Returns:
        Logical name -> local path (plus ``domains`` when ``openimages.domains_file`` is set).
    """
    logger = get_run_logger()
    unknown = sorted(set(metadata_names(subsets)) - set(openimages.metadata_files))
    if unknown:
        raise ValueError(
            f"openimages.metadata_files lacks {unknown}; it has {sorted(openimages.metadata_files)}"
        )
    folder = cache_folder(cache, openimages.metadata_base_url)
    base = openimages.metadata_base_url.rstrip("/")
    paths: dict[str, Path] = {}
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn())
    with (
        requests.Session() as session,
        Progress(*columns, TransferSpeedColumn(), TimeRemainingColumn()) as progress,
    ):
        for name in metadata_names(subsets):
            rel = openimages.metadata_files[name].lstrip("/")
            path, fetched = fetch(
                f"{base}/{rel}",
                folder / rel,
                timeout=openimages.http_timeout_s,
                session=session,
                progress=progress,
            )
            logger.info("%s: %s (%s)", name, path, "downloaded" if fetched else "cached")
            paths[name] = path
        if openimages.domains_file:
            rel = openimages.domains_file.lstrip("/")
            paths["domains"], _ = fetch(
                f"{base}/{rel}",
                folder / rel,
                timeout=openimages.http_timeout_s,
                session=session,
                progress=progress,
            )
    return paths


@task(cache_policy=NO_CACHE)
def select_candidates(
    metadata: dict[str, Path],
    classes: ClassesSettings,
    etl: EtlSettings,
    subsets: list[str],
    out_dir: Path,
) -> dict[str, Any]:
    """Resolve the class sets, filter the labels, rank the candidates of both sides.

    Returns:
        ``candidates`` (path of a parquet file in rank order, with image metadata),
        ``counts`` (candidates per side before and after ranking caps) and ``classes``
        (configured name -> resolved ids).
    """
    logger = get_run_logger()
    table = read_class_descriptions(metadata["class_descriptions"])
    hierarchy = Hierarchy.read(metadata["hierarchy"]) if classes.expand_hierarchy else None
    sets = resolve_classes(
        classes.harmful,
        classes.safe,
        table,
        hierarchy,
        exclude=classes.exclude,
        never_safe=classes.never_safe,
        on_ambiguous=classes.on_ambiguous,
    )
    logger.info(
        "harmful ids: %d, safe ids: %d, never_safe ids: %d",
        len(sets.harmful),
        len(sets.safe),
        len(sets.never_safe),
    )
    frames = []
    counter = (TextColumn("{task.description}"), TextColumn("{task.completed:,.0f} rows"))
    with Progress(*counter, TimeElapsedColumn()) as progress:
        for subset in subsets:
            bar = progress.add_task(f"labels {subset}", total=None)
            rows = oi.filter_labels(
                metadata[f"labels_{subset}"],
                sets.all_ids,
                etl.csv_chunk_rows,
                on_rows=lambda n, bar=bar: progress.advance(bar, n),
            )
            frames.append(rows.assign(Subset=subset))
    images = oi.label_images(pd.concat(frames, ignore_index=True), sets)
    # Joined before ranking: an image no list describes must not take a label's turn or cap.
    listed, unlisted = _join_image_index(images, metadata, subsets, etl.csv_chunk_rows)
    ranked = rank_candidates(listed, max_per_label=etl.max_per_label, seed=etl.seed)
    ranked["domain"] = oi.image_domains(ranked["image_id"], metadata.get("domains"))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "candidates.parquet"
    ranked.to_parquet(path, index=False)
    counts = {
        "labelled": {str(k): int(v) for k, v in images["label"].value_counts().items()},
        "ranked": {str(k): int(v) for k, v in ranked["label"].value_counts().items()},
        "not_in_image_list": {"all": unlisted},
    }
    logger.info("candidates: %s", counts)
    return {"candidates": path, "counts": counts, "classes": dict(sets.origin)}


def _join_image_index(
    images: pd.DataFrame, metadata: dict[str, Path], subsets: list[str], chunk_rows: int
) -> tuple[pd.DataFrame, int]:
    """Add licence, author, URL and rotation.

    Candidates missing from the image list cannot be attributed: they are left out, logged and
    counted (the second value).
    """
    wanted = images["image_id"]
    index = pd.concat(
        [oi.read_image_index(metadata[f"images_{s}"], wanted, chunk_rows) for s in subsets],
        ignore_index=True,
    ).drop_duplicates("ImageID")
    index = index.rename(
        columns={
            "ImageID": "image_id",
            "License": "license",
            "Author": "author",
            "OriginalURL": "original_url",
            "Rotation": "rotation",
        }
    )[["image_id", "license", "author", "original_url", "rotation"]]
    joined = images.merge(index, on="image_id", how="inner", validate="one_to_one")
    missing = len(images) - len(joined)
    if missing:
        get_run_logger().warning("%d candidates are not in the image lists; left out", missing)
    return joined.reset_index(drop=True), missing
