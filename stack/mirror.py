"""The offline Open Images mirror: a metadata HTTP server and an S3-compatible server (moto).

Open Images is out of reach here, so the ETL runs against two loopback servers that speak the
same protocols as the real ones:

- metadata: plain HTTP over the files of ``mirror/metadata`` in the exact OIDv7 layout below
  ``openimages.metadata_base_url``, with ``HEAD``, ``Range``, ``Content-Length`` and ``ETag``
  (`stack.mirror_metadata`);
- images: moto's S3 server, seeded from ``mirror/images`` with keys ``{subset}/{ImageID}.jpg``
  (`stack.mirror_s3`).
  Moto does not check signatures, so unsigned (anonymous) boto3 clients read it as they read
  the public Open Images bucket.

Both run as `stack.process.ServiceProcess` processes, so ``harmscan mirror up|down|status`` and
the test fixtures share one mechanism.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harmscan.openimages import MIRROR_DOMAINS_FILE
from stack.process import ServiceProcess, http_ok

if TYPE_CHECKING:
    from conf.settings import Settings

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
MIRROR_DIR = REPO_ROOT / "mirror"


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
                    "stack.mirror_metadata",
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
