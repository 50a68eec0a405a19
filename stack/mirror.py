"""The offline Open Images mirror: a metadata HTTP server and an S3-compatible server (moto).

Open Images is out of reach here, so the ETL runs against two loopback servers that speak the
same protocols as the real ones:

- metadata: plain HTTP over the files of ``mirror/metadata`` in the exact OIDv7 layout below
  ``openimages.metadata_base_url``, with ``HEAD``, ``Range``, ``Content-Length`` and ``ETag``
  (``python -m stack.mirror serve-metadata --port P --root mirror/metadata``);
- images: moto's S3 server, seeded from ``mirror/images`` with keys ``{subset}/{ImageID}.jpg``
  (`stack.mirror_s3`).
  Moto does not check signatures, so unsigned (anonymous) boto3 clients read it as they read
  the public Open Images bucket.

Both run as `stack.process.ServiceProcess` processes, so ``harmscan mirror up|down|status`` and
the test fixtures share one mechanism.
"""

from __future__ import annotations

import argparse
import email.utils
import functools
import hashlib
import logging
import os
import re
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harmscan.openimages import MIRROR_DOMAINS_FILE
from stack.process import ServiceProcess, http_ok

if TYPE_CHECKING:
    from conf.settings import Settings

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
MIRROR_DIR = REPO_ROOT / "mirror"
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


@dataclass
class MirrorServers:
    """The two mirror services on one host, with pid and log files under ``state_dir``."""

    host: str
    s3_port: int
    metadata_port: int
    state_dir: Path
    metadata_root: Path = MIRROR_DIR / "metadata"

    @property
    def metadata_url(self) -> str:
        """Base URL of the metadata server (``openimages.metadata_base_url``)."""
        return f"http://{self.host}:{self.metadata_port}"

    @property
    def s3_endpoint(self) -> str:
        """Endpoint of the S3 server (``openimages.s3_endpoint_url``)."""
        return f"http://{self.host}:{self.s3_port}"

    def services(self) -> list[ServiceProcess]:
        """The metadata and the S3 service, in start order."""
        bin_dir = Path(sys.executable).parent
        moto = bin_dir / "moto_server"
        s3_cmd = [str(moto)] if moto.exists() else [sys.executable, "-m", "moto.server"]
        return [
            ServiceProcess(
                name="mirror-metadata",
                command=[
                    sys.executable,
                    "-m",
                    "stack.mirror",
                    "serve-metadata",
                    "--host",
                    self.host,
                    "--port",
                    str(self.metadata_port),
                    "--root",
                    str(self.metadata_root),
                ],
                state_dir=self.state_dir,
                host=self.host,
                port=self.metadata_port,
                cwd=REPO_ROOT,
                env={"PYTHONPATH": _pythonpath()},
            ),
            ServiceProcess(
                name="mirror-s3",
                command=[*s3_cmd, "-H", self.host, "-p", str(self.s3_port)],
                state_dir=self.state_dir,
                host=self.host,
                port=self.s3_port,
                healthy=lambda: http_ok(f"{self.s3_endpoint}/moto-api/"),
            ),
        ]

    def start(self, timeout: float = 60.0) -> None:
        """Start both (no-op for one of ours already running); raise `ServiceError` on failure."""
        for service in self.services():
            service.start(timeout)

    def stop(self) -> list[str]:
        """Stop both; the names of those that were running."""
        return [s.name for s in reversed(self.services()) if s.stop()]

    def status(self) -> dict[str, dict[str, Any]]:
        """Per service: pid (ours, or None), healthy, url, log file."""
        urls = {"mirror-metadata": self.metadata_url, "mirror-s3": self.s3_endpoint}
        return {
            s.name: {
                "pid": s.pid(),
                "healthy": s.is_healthy(),
                "url": urls[s.name],
                "log": str(s.log_file),
            }
            for s in self.services()
        }


def servers_from_settings(settings: Settings) -> MirrorServers:
    """The mirror servers of the local stack: ``stack.*`` ports, pid and log files in
    ``paths.services`` (shared with the other local services; the names start ``mirror-``)."""
    return MirrorServers(
        host=settings.stack.host,
        s3_port=settings.stack.s3_port,
        metadata_port=settings.stack.metadata_port,
        state_dir=settings.paths.services,
    )


def _pythonpath() -> str:
    parts = [str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]
    return os.pathsep.join(p for p in parts if p)


def mirror_overrides(metadata_url: str, s3_endpoint: str, bucket: str) -> list[str]:
    """The ``--set`` strings that point the ETL at a mirror."""
    return [
        "openimages.source=mirror",
        f"openimages.metadata_base_url={metadata_url}",
        f"openimages.s3_endpoint_url={s3_endpoint}",
        f"openimages.bucket={bucket}",
        f"openimages.domains_file={MIRROR_DOMAINS_FILE}",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m stack.mirror serve-metadata --host H --port P --root DIR``."""
    parser = argparse.ArgumentParser(prog="python -m stack.mirror")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve-metadata", help="serve the OIDv7 metadata files over HTTP")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, required=True)
    serve.add_argument("--root", type=Path, default=MIRROR_DIR / "metadata")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    serve_metadata(args.root.resolve(), args.host, args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
