"""What the CLI sets up around flow runs: quiet libraries, no telemetry, no server left behind.

- `quiet_defaults` (before Prefect is imported): Prefect analytics and telemetry off, a patient
  start of Prefect's temporary server; each only when the user has not set it.
- `flow_runtime` (around a flow call): runs the flow against the Prefect server of
  ``prefect.api_url`` when it answers (the local stack: the run shows in its UI), else against
  Prefect's temporary server, which is made to die with this process (``kill -9`` of the command
  included); library INFO chatter (httpx, the Prefect client) is turned down and tracebacks go
  to the console only with ``--verbose`` (the Prefect UI keeps them).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conf.settings import Settings

PREFECT_DEFAULTS = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_CLOUD_ENABLE_ORCHESTRATION_TELEMETRY": "false",
    # The temporary server can take long to boot on a busy 2-core machine (default 20 s).
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}
NOISY_LOGGERS = (
    "httpx",
    "httpcore",
    "urllib3",
    "botocore",
    "alembic",
    "mlflow",
    "prefect.client",
    "prefect._internal",
    "prefect.server",
    # Prefect's background queue services log under their bare class names; at exit the events
    # one warns "Still processing items" after our own one-line error.
    "EventsWorker",
    "APILogWorker",
)


def quiet_defaults(env: dict[str, str] | None = None) -> None:
    """Set the Prefect defaults above in ``env`` (default ``os.environ``) unless already set."""
    target = os.environ if env is None else env
    for key, value in PREFECT_DEFAULTS.items():
        target.setdefault(key, value)


def quiet_logging(verbose: bool) -> None:
    """Library loggers at WARNING (DEBUG with ``--verbose``); console tracebacks only if verbose."""
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.WARNING)
    if verbose:
        return
    for name in ("", "prefect", "prefect.flow_runs", "prefect.task_runs"):
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, logging.StreamHandler) and not isinstance(
                handler.formatter, _NoTraceback
            ):
                handler.setFormatter(_NoTraceback(handler.formatter or logging.Formatter()))


@contextlib.contextmanager
def flow_runtime(settings: Settings, verbose: bool) -> Iterator[None]:
    """Run flows inside this block against the stack's server or a temporary one (see above)."""
    import prefect  # noqa: F401  (configures Prefect's logging before it is turned down)
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from stack.prefect_server import ephemeral_server_dies_with_parent
    from stack.process import http_ok

    quiet_logging(verbose)
    url = settings.prefect.api_url
    if not os.environ.get("PREFECT_API_URL") and url and http_ok(f"{url}/health", timeout=2):
        with temporary_settings(updates={PREFECT_API_URL: url}):
            yield
        return
    ephemeral_server_dies_with_parent()
    yield


class _NoTraceback(logging.Formatter):
    """Formats like the wrapped formatter, without the exception's traceback."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        try:
            return self.inner.format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved
