"""The mirror's metadata server: the OIDv7 metadata files over plain HTTP, as the real host serves.

``python -m stack.mirror_metadata serve-metadata --port P --root mirror/metadata`` serves the
files in the exact OIDv7 layout below ``openimages.metadata_base_url``, with ``HEAD``, ``Range``,
``Content-Length`` and ``ETag``; `stack.mirror.MirrorServers` runs it as a service.
"""

from __future__ import annotations

import argparse
import email.utils
import functools
import hashlib
import logging
import re
import shutil
from collections.abc import Sequence
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

METADATA_ROOT = Path(__file__).resolve().parents[1] / "mirror" / "metadata"
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class MetadataHandler(SimpleHTTPRequestHandler):
    """Static files with the HTTP features the real metadata host offers the ETL.

    GET and HEAD answer with Content-Length, Last-Modified and a strong ETag; ``Range:
    bytes=a-b`` (one range, also ``a-`` and ``-n``) answers 206 with Content-Range, an
    unsatisfiable range 416; ``If-None-Match`` with the current ETag answers 304.
    """

    server_version = "harmscan-mirror/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    def send_head(self) -> Any:
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(HTTPStatus.NOT_FOUND, "File not found")
            return None
        stat = path.stat()
        etag = _etag(path, stat.st_size, stat.st_mtime_ns)
        if self.headers.get("If-None-Match") == etag:
            self.send_response(HTTPStatus.NOT_MODIFIED)
            self.send_header("ETag", etag)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        start, end = 0, stat.st_size - 1
        status = HTTPStatus.OK
        wanted = self.headers.get("Range")
        if wanted and self.headers.get("If-Range", etag) == etag:
            parsed = _parse_range(wanted, stat.st_size)
            if parsed is None:
                self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                self.send_header("Content-Range", f"bytes */{stat.st_size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            (start, end), status = parsed, HTTPStatus.PARTIAL_CONTENT
        fh = path.open("rb")
        fh.seek(start)
        self.send_response(status)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", email.utils.formatdate(stat.st_mtime, usegmt=True))
        if status == HTTPStatus.PARTIAL_CONTENT:
            self.send_header("Content-Range", f"bytes {start}-{end}/{stat.st_size}")
        self.end_headers()
        self._remaining = end - start + 1
        return fh

    def copyfile(self, source: Any, outputfile: Any) -> None:
        remaining = getattr(self, "_remaining", None)
        if remaining is None:
            shutil.copyfileobj(source, outputfile)
            return
        while remaining > 0:
            chunk = source.read(min(64 * 1024, remaining))
            if not chunk:
                break
            outputfile.write(chunk)
            remaining -= len(chunk)

    def list_directory(self, path: Any) -> None:
        self.send_error(HTTPStatus.NOT_FOUND, "File not found")
        return None


@functools.lru_cache(maxsize=256)
def _etag(path: Path, size: int, mtime_ns: int) -> str:
    """A strong ETag: the MD5 of the content (as Google Cloud Storage gives), cached per version."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return f'"{digest.hexdigest()}"'


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """``bytes=a-b`` -> (first, last) inclusive, clipped to the file; None if unsatisfiable."""
    match = _RANGE.match(header.strip())
    if not match or size == 0 or match.group(1) == match.group(2) == "":
        return None
    first, last = match.groups()
    if first == "":
        start, end = max(0, size - int(last)), size - 1
    else:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    return (start, end) if start <= end and start < size else None


def serve_metadata(root: Path, host: str, port: int) -> None:
    """Serve ``root`` over HTTP on host:port until interrupted."""
    if not root.is_dir():
        raise SystemExit(f"metadata root {root} is not a folder (expected mirror/metadata)")
    handler = partial(MetadataHandler, directory=str(root))
    with ThreadingHTTPServer((host, port), handler) as httpd:
        logger.info("serving %s on http://%s:%s", root, host, port)
        httpd.serve_forever()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m stack.mirror_metadata serve-metadata --host H --port P --root DIR``."""
    parser = argparse.ArgumentParser(prog="python -m stack.mirror_metadata")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve-metadata", help="serve the OIDv7 metadata files over HTTP")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, required=True)
    serve.add_argument("--root", type=Path, default=METADATA_ROOT)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    serve_metadata(args.root.resolve(), args.host, args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
