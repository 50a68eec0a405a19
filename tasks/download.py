"""Resumable, checked HTTP downloads of metadata files (no Prefect here; `tasks.openimages`).

Downloads stream to ``<file>.part`` and resume with an HTTP Range request; the finished file is
checked against Content-Length and, where the server gives one, the MD5 (Content-MD5,
``x-goog-hash`` or a plain ETag), and then recorded in a ``.meta.json`` sidecar so a later run
downloads nothing. A body the server sends gzip-encoded (``Content-Encoding: gzip``, as nginx's
``gzip_static`` or a GCS object uploaded compressed do) is stored and checked as sent, since
Content-Length, ranges and the MD5 are those of the encoded bytes, and decoded once complete.
A body with neither a length nor an MD5 (HTTP/1.0 style, ended by closing the connection) may
have been cut short unnoticed: the server is asked for the bytes past its end (a Range request
answered 416 confirms the end, 206 hands over what was missing), and where it cannot say, a CSV
that stops mid-line is refused rather than cached.
Which files the ETL needs and where they are cached is here too, so that a
command can tell before any work whether the metadata endpoint will be asked at all.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
import json
import re
import shutil
import time
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import urlparse

import requests
import urllib3

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from conf.settings import OpenImagesSettings

CHUNK_BYTES = 1 << 16
# Ask for gzip only: the one encoding (besides none) that `_decode` can undo.
ACCEPT_ENCODING = "gzip"


class DownloadError(RuntimeError):
    """A metadata download failed its size or checksum check, or the server refused it."""


class MetadataNotFound(FileNotFoundError):
    """The server says the file is not there (or not for us): retrying cannot help."""


# Answers that will not change on a retry: a wrong base URL or file path.
NOT_THERE = (401, 403, 404, 410)
# "Too many requests" / "unavailable": wait as the server's Retry-After says (or back off), at
# most this long each time and this many times, before failing to Prefect's own retries.
THROTTLED = (429, 503)
MAX_WAIT_S = 120.0
WAITS = 3


class Throttled(DownloadError):
    """The server asked us to come back later (429/503); ``wait_s`` is its Retry-After."""

    def __init__(self, message: str, wait_s: float | None) -> None:
        super().__init__(message)
        self.wait_s = wait_s


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or an HTTP date), if any."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def metadata_names(subsets: list[str]) -> list[str]:
    """The logical metadata files the ETL needs for ``subsets``."""
    names = ["class_descriptions", "hierarchy"]
    return names + [f"{kind}_{s}" for s in subsets for kind in ("labels", "images")]


def cache_folder(cache: Path, base_url: str) -> Path:
    """Per-source cache folder, so the real dataset and a mirror never share files."""
    parsed = urlparse(base_url)
    slug = re.sub(r"[^A-Za-z0-9.-]+", "_", f"{parsed.netloc}{parsed.path}").strip("_")
    return Path(cache) / "openimages" / (slug or "local")


def metadata_plan(
    openimages: OpenImagesSettings, cache: Path, subsets: list[str]
) -> dict[str, tuple[str, Path]]:
    """Logical name -> (URL, cache path) of every metadata file the ETL reads for ``subsets``
    (``domains`` too when ``openimages.domains_file`` is set).

    Raises:
        ValueError: ``openimages.metadata_files`` lacks a file the subsets need.
    """
    unknown = sorted(set(metadata_names(subsets)) - set(openimages.metadata_files))
    if unknown:
        raise ValueError(
            f"openimages.metadata_files lacks {unknown}; it has {sorted(openimages.metadata_files)}"
        )
    folder = cache_folder(cache, openimages.metadata_base_url)
    base = openimages.metadata_base_url.rstrip("/")
    files = {name: openimages.metadata_files[name] for name in metadata_names(subsets)}
    if openimages.domains_file:
        files["domains"] = openimages.domains_file
    return {
        name: (f"{base}/{rel.lstrip('/')}", folder / rel.lstrip("/")) for name, rel in files.items()
    }


def is_cached(url: str, dest: Path) -> bool:
    """Whether ``dest`` holds the finished, checked download of ``url`` (its sidecar says so)."""
    meta_path = dest.with_name(dest.name + ".meta.json")
    if not (dest.is_file() and meta_path.is_file()):
        return False
    meta = json.loads(meta_path.read_text())
    return bool(meta.get("url") == url and meta.get("bytes") == dest.stat().st_size)


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
    headers = {"Accept-Encoding": ACCEPT_ENCODING}
    if offset:
        headers["Range"] = f"bytes={offset}-"
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
    if response.status_code in THROTTLED:
        response.close()
        wait = retry_after(response.headers.get("Retry-After"))
        said = f"; the server asks to retry after {wait:.0f} s" if wait is not None else ""
        raise Throttled(f"{url}: HTTP {response.status_code}{said}", wait)
    if response.status_code not in (200, 206):
        response.close()
        raise DownloadError(f"{url}: HTTP {response.status_code}")
    return response


def _open_waiting(
    url: str, offset: int, timeout: float, session: requests.Session
) -> requests.Response:
    """`_open`, waiting out up to `WAITS` throttled answers as their Retry-After asks.

    Raises:
        Throttled: Still throttled, or asked to wait longer than `MAX_WAIT_S`.
    """
    for attempt in range(WAITS + 1):
        try:
            return _open(url, offset, timeout, session)
        except Throttled as exc:
            wait = exc.wait_s if exc.wait_s is not None else 2.0 * 2**attempt
            if attempt == WAITS or wait > MAX_WAIT_S:
                raise
            time.sleep(wait)
    raise AssertionError("unreachable")


def _decode(part: Path, encoding: str, url: str) -> None:
    """Undo the ``Content-Encoding`` of a finished, checked download in place.

    Raises:
        DownloadError: An encoding other than gzip, or bytes that do not decode.
    """
    if encoding in ("", "identity"):
        return
    if encoding not in ("gzip", "x-gzip"):
        raise DownloadError(f"{url}: Content-Encoding {encoding!r} cannot be decoded (only gzip)")
    decoded = part.with_name(part.name + ".decoded")
    try:
        decompressor = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
        with part.open("rb") as source, decoded.open("wb") as sink:
            while block := source.read(CHUNK_BYTES):
                sink.write(decompressor.decompress(block))
            sink.write(decompressor.flush())
        if not decompressor.eof:
            raise zlib.error("the gzip stream ends early")
    except zlib.error as exc:
        decoded.unlink(missing_ok=True)
        part.unlink()
        raise DownloadError(f"{url}: gzip-encoded body does not decode: {exc}") from None
    shutil.move(decoded, part)


def _encoding_record(part: Path) -> Path:
    """Where the ``Content-Encoding`` that ``part``'s bytes were fetched in is recorded."""
    return part.with_name(part.name + ".encoding")


def _encoding(response: requests.Response) -> str:
    return response.headers.get("Content-Encoding", "").strip().lower()


def _open_part(
    url: str, part: Path, timeout: float, session: requests.Session
) -> tuple[requests.Response, int]:
    """Open the download, resuming ``part`` where that is sound; return it and its offset.

    A part is resumed only in the encoding its bytes were fetched in (recorded beside it): a
    server compressing on the fly serves a range plain, and gzip bytes joined to plain ones
    are neither. A server ignoring the Range header (200) starts over too.
    """
    record = _encoding_record(part)
    offset = part.stat().st_size if part.exists() else 0
    try:
        response = _open_waiting(url, offset, timeout, session)
    except Throttled:
        raise
    except DownloadError:
        if not offset:
            raise
        part.unlink()
        offset, response = 0, _open_waiting(url, 0, timeout, session)
    had = record.read_text() if record.is_file() else ""
    if offset and response.status_code == 206 and _encoding(response) != had:
        response.close()
        part.unlink()
        offset, response = 0, _open_waiting(url, 0, timeout, session)
    if response.status_code == 200:
        offset = 0  # a fresh start (or the server ignored the Range header)
        record.write_text(_encoding(response))
    return response, offset


# Rounds of "is there more past this offset?" for a body without a length (each appends).
TAIL_ROUNDS = 5


def _stream_into(
    response: requests.Response, handle: BinaryIO, url: str, progress: Progress, bar: TaskID
) -> None:
    """Append the body as sent (still encoded: what Content-Length, Range and MD5 refer to)."""
    try:
        for block in response.raw.stream(CHUNK_BYTES, decode_content=False):
            handle.write(block)
            progress.advance(bar, len(block))
    except urllib3.exceptions.HTTPError as exc:
        raise DownloadError(f"{url}: connection broken ({exc}); will resume") from None


def _end_confirmed(
    url: str,
    part: Path,
    encoding: str,
    timeout: float,
    session: requests.Session,
    progress: Progress,
    bar: TaskID,
) -> bool:
    """Ask past the end of ``part`` until the server says there is nothing more (416).

    For a body that came without Content-Length or MD5: a 206 answer means the connection was
    closed early, and its bytes are appended. False when the server cannot tell (it ignores
    ranges, or answers in another encoding).
    """
    for _ in range(TAIL_ROUNDS):
        offset = part.stat().st_size
        headers = {"Accept-Encoding": ACCEPT_ENCODING, "Range": f"bytes={offset}-"}
        with session.get(url, headers=headers, stream=True, timeout=timeout) as response:
            if response.status_code == 416:  # "bytes */<length>": the length, if stated, is ours
                length = response.headers.get("Content-Range", "").rpartition("/")[2]
                return length in ("", "*", str(offset))
            start = response.headers.get("Content-Range", "").removeprefix("bytes ").split("-")[0]
            if (
                response.status_code != 206
                or start != str(offset)
                or _encoding(response) != encoding
            ):
                return False
            with part.open("ab") as handle:
                _stream_into(response, handle, url, progress, bar)
        if part.stat().st_size == offset:
            return False
    return False


def _ends_mid_line(path: Path, name: str) -> bool:
    """Whether ``path``, holding the CSV file ``name``, is not empty and its last byte is not a line
    break (a cut-short file's usually is not)."""
    if not name.lower().endswith(".csv") or not path.stat().st_size:
        return False
    with path.open("rb") as handle:
        handle.seek(-1, 2)
        return handle.read(1) not in (b"\n", b"\r")


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
    if is_cached(url, dest):
        return dest, False
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    response, offset = _open_part(url, part, timeout, session)
    with response:
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        bar = progress.add_task(dest.name, total=total, completed=offset)
        with part.open("ab" if offset else "wb") as handle:
            _stream_into(response, handle, url, progress, bar)
        md5 = expected_md5(response, whole=response.status_code == 200)
        encoding = _encoding(response)
    size = part.stat().st_size
    if total is not None and size != total:
        raise DownloadError(f"{url}: got {size} bytes, expected {total}; will resume")
    checked = "length" if total is not None else "md5" if md5 is not None else "none"
    if checked == "none" and _end_confirmed(url, part, encoding, timeout, session, progress, bar):
        checked = "range"
    actual = _file_md5(part)
    if md5 is not None and actual != md5:
        part.unlink()
        raise DownloadError(f"{url}: MD5 {actual} does not match the server's {md5}")
    _decode(part, encoding, url)
    if checked == "none" and _ends_mid_line(part, dest.name):
        part.unlink()
        _encoding_record(part).unlink(missing_ok=True)
        raise DownloadError(
            f"{url}: the body ends mid-line and the server states no Content-Length or MD5 and "
            "answers no Range request, so it was probably cut short; will download it again"
        )
    _encoding_record(part).unlink(missing_ok=True)
    part.replace(dest)
    meta = {
        "url": url,
        "bytes": dest.stat().st_size,
        "md5": actual,
        "encoding": encoding,
        "end_checked_by": checked,
    }
    meta_path.write_text(json.dumps(meta))
    return dest, True
