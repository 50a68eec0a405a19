"""``harmscan serve`` and ``harmscan produce`` never import torch (nor Prefect or pandas) on the
ONNX path: real processes against a real broker and MLflow server, their modules read at exit.

With ``HARMSCAN_TEST_SERVING_PYTHON`` naming the interpreter of an install from
requirements-serving.lock (no torch there at all), the commands run in that install instead
(`./dev test` does). Without it they run in the development install, whose full ``mlflow``
imports pandas on ``import mlflow`` (``mlflow.data``): there only pandas is allowed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.serving_support import RED, register_model, serving_overrides, write_image

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SERVING_PYTHON = os.environ.get("HARMSCAN_TEST_SERVING_PYTHON")
HEAVY = ("torch", "torchvision", "prefect", "sklearn") + (("pandas",) if SERVING_PYTHON else ())
# Runs the console script's main() and reports, at exit, which heavy modules were imported.
WRAPPER = (
    "import atexit, sys\n"
    f"atexit.register(lambda: print('HEAVY', sorted(m for m in {HEAVY!r} if m in sys.modules),"
    " file=sys.stderr))\n"
    "from cli.app import main\n"
    "sys.argv = ['harmscan', *sys.argv[1:]]\n"
    "main()\n"
)


def _command(*args: str) -> list[str]:
    python = SERVING_PYTHON or sys.executable
    return [python, "-c", WRAPPER, *args]


def test_serve_and_produce_import_no_torch(
    mlflow_server: str,
    kafka_bootstrap: str,
    kafka_topics: Callable[..., str],
    tmp_path: Path,
) -> None:
    name = f"notorch-{os.urandom(4).hex()}"
    register_model(mlflow_server, name, tmp_path / "model")
    topics = {k: kafka_topics(k) for k in ("requests", "results", "review", "dead_letter")}
    images = tmp_path / "images"
    write_image(images / "red.jpg", RED)
    sets = [
        f"--set={o}"
        for o in serving_overrides(
            bootstrap=kafka_bootstrap, tracking_uri=mlflow_server, model_name=name,
            topics=topics, group=f"g-{os.urandom(4).hex()}", roots=[images],
        )
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARMSCAN_")}
    serve = subprocess.Popen(
        _command("--profile", "ci", *sets, "serve", "--max-messages", "1"),
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        produced = subprocess.run(
            _command("--profile", "ci", *sets, "produce", "--no-progress", str(images)),
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert produced.returncode == 0, produced.stderr[-3000:]
        _, served_err = serve.communicate(timeout=300)
    finally:
        if serve.poll() is None:
            serve.kill()
    assert serve.returncode == 0, served_err[-3000:]
    for stderr in (produced.stderr, served_err):
        assert "HEAVY []" in stderr, stderr[-3000:]
