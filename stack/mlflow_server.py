"""The local MLflow tracking server (SQLite backend, proxied artifacts), run by `ServiceProcess`.

Used by ``harmscan up`` and by the test fixture ``tests/fixtures/mlflow.py``. The server keeps its
SQLite database and its artifact store under one state folder, listens on loopback only and runs a
single worker (the machine has two shared cores).
"""

from __future__ import annotations

import sys
from pathlib import Path

from stack.process import ServiceProcess, http_ok

NAME = "mlflow"


def mlflow_server(
    state_dir: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 5000,
    workers: int = 1,
    name: str = NAME,
) -> ServiceProcess:
    """Describe (not start) the MLflow server whose state lives in ``state_dir``.

    Args:
        state_dir: Folder for ``mlflow.db``, the ``artifacts/`` store, the pid and the log file.
        host: Interface to bind; keep it on loopback.
        port: TCP port.
        workers: Server worker processes.
        name: Service name (pid and log file names).

    Returns:
        The service; call ``start()``/``stop()``/``is_healthy()`` on it.
    """
    state_dir = Path(state_dir).resolve()
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        f"sqlite:///{state_dir / 'mlflow.db'}",
        "--artifacts-destination",
        str(state_dir / "artifacts"),
        "--serve-artifacts",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    return ServiceProcess(
        name=name,
        command=command,
        state_dir=state_dir,
        host=host,
        port=port,
        healthy=lambda: http_ok(tracking_uri(host, port) + "/health"),
        env={"MLFLOW_LOGGING_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1"},
        cwd=state_dir,
    )


def tracking_uri(host: str, port: int) -> str:
    """The HTTP tracking URI of a server on host:port."""
    return f"http://{host}:{port}"
